"""`python -m benchmarks [stage ...] [--quick]`: run the stage benchmarks, one process.

Each ``benchmarks/bench_<stage>.py`` has ``main(quick: bool) -> str`` returning a Markdown
table of figures measured in that run. Tables are printed and saved to
``bench_output/<stage>.md``; ``bench_output/README_table.md`` concatenates them for the
README.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path

import benchmarks

BEGIN, END = "<!-- BENCH:BEGIN -->", "<!-- BENCH:END -->"


def available() -> list[str]:
    return sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("stages", nargs="*", help=f"subset of {available()}")
    ap.add_argument("--quick", action="store_true", help="small sizes only (minutes, not hours)")
    ap.add_argument(
        "--real-only",
        action="store_true",
        help="stages that take it (mining): only the rows on real dev footage",
    )
    ap.add_argument("--out", default="bench_output", help="where tables are written")
    ap.add_argument(
        "--update-readme",
        action="store_true",
        help="replace the table block of README.md with every stage's latest table",
    )
    args = ap.parse_args(argv)
    stages = args.stages or available()
    unknown = [s for s in stages if s not in available()]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
        f"{' (quick)' if args.quick else ''}"
    )
    failed = []
    for stage in stages:
        print(f"\n=== bench {stage} ===", flush=True)
        t0 = time.time()
        try:
            bench_main = importlib.import_module(f"benchmarks.bench_{stage}").main
            if args.real_only and "real_only" not in inspect.signature(bench_main).parameters:
                print(f"bench {stage} has no --real-only rows: skipped")
                continue
            extra = {"real_only": True} if args.real_only else {}
            table = bench_main(quick=args.quick, **extra)
        except Exception:
            traceback.print_exc()
            failed.append(stage)
            continue
        took = f"_{header}; the run took {time.time() - t0:.0f} s._"
        name = f"{stage}_real" if args.real_only else stage  # never the full table's file
        (out / f"{name}.md").write_text(f"{table}\n\n{took}\n")
    # The README block holds the latest table of every stage, each measured in one run.
    sections = [
        f"### {s}\n\n{(out / f'{s}.md').read_text().strip()}"
        for s in available()
        if (out / f"{s}.md").exists()
    ]
    block = "\n\n".join(sections) + "\n"
    (out / "README_table.md").write_text(block)
    if args.update_readme:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        text = readme.read_text()
        a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
        readme.write_text(text[:a] + "\n" + block + text[b:])
        print(f"updated {readme}")
    print(f"\ntables written to {out}/")
    if failed:
        print(f"benchmarks that failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
