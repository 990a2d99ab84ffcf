"""`python -m benchmarks [stage ...] [--quick]`: run the stage benchmarks, one process.

Each ``benchmarks/bench_<stage>.py`` has ``main(quick: bool) -> str`` returning a Markdown
table of figures measured in that run. Tables are printed and saved to
``bench_output/<stage>.md``; ``bench_output/README_table.md`` concatenates them for the
README.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path

import benchmarks


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
    ap.add_argument("--out", default="bench_output", help="where tables are written")
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
        f"{' (quick)' if args.quick else ''}."
    )
    sections, failed = [header], []
    for stage in stages:
        print(f"\n=== bench {stage} ===", flush=True)
        t0 = time.time()
        try:
            table = importlib.import_module(f"benchmarks.bench_{stage}").main(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(stage)
            continue
        (out / f"{stage}.md").write_text(table + "\n")
        sections.append(f"### {stage}\n\n{table}\n\n_({time.time() - t0:.0f} s)_")
    (out / "README_table.md").write_text("\n\n".join(sections) + "\n")
    print(f"\ntables written to {out}/")
    if failed:
        print(f"benchmarks that failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
