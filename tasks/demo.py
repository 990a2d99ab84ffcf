"""``make demo``: the whole DAG on the bundled (generated) input, then a summary.

    python -m tasks.demo [--out demo_output] [--workers 2]

Writes the demo clips and their list into ``<out>/input/``, runs every stage with the
local scheduler into ``<out>/run/`` (a rerun skips what is complete), publishes the
mined dataset into ``<out>/registry/`` and prints the funnel and where each output is.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import luigi
import luigi.configuration

from tasks.demo_input import write_demo_input

log = logging.getLogger("videomine.demo")

DEMO_SHARD = 3  # 9 list entries -> 3 shards: shows sharding and one task per shard


def configure(out: Path, list_path: Path) -> None:
    cfg = luigi.configuration.get_config()
    values = {
        "root": str(out / "run"),
        "video_list": str(list_path),
        "videos_per_shard": str(DEMO_SHARD),
        "registry": str(out / "registry"),
    }
    if not cfg.has_section("videomine"):
        cfg.add_section("videomine")
    for k, v in values.items():
        cfg.set("videomine", k, v)


def demo_tasks(out: Path) -> dict[str, luigi.Task]:
    import tasks as T

    n = T.common.shard_count()
    return {
        "fetch": T.FetchAllVideos(),
        "segment": [T.SegmentMotion(shard=s) for s in range(n)],
        "graph": T.BuildGraph(),
        "publish": T.PublishDataset(
            name="demo-pairs",
            version="1",
            tables=["videos", "seeds", "tracks", "patches", "nodes", "edges", "pairs", "masks"],
            description="Pairs and masks mined from the generated demo clips of videomine.",
        ),
    }


def _meta(task: luigi.Task) -> dict[str, Any]:
    return dict(task.output().meta())


def summary(out: Path, t: dict[str, luigi.Task]) -> str:
    import tasks as T

    lines = ["", "videomine demo: done", ""]
    funnel = _meta(t["graph"])["notes"]["funnel"]
    up = funnel["upstream"]
    fetch, det, trk = (
        up.get("FetchVideos", {}),
        up.get("DetectMotion", {}),
        up.get("TrackObjects", {}),
    )
    pair_kinds = {k[len("pairs_") :]: v for k, v in funnel.items() if k.startswith("pairs_")}
    lines.append("funnel:")
    lines.append(
        f"  videos {fetch.get('ok', 0)} ok of {sum(fetch.get(k, 0) for k in ('ok', 'failed', 'duplicate'))}"
        f" (failed {fetch.get('failed', 0)}, duplicate {fetch.get('duplicate', 0)})"
        f" -> kept frames {det.get('frames_kept', '?')} of {det.get('frames', '?')}"
        f" -> seeds {det.get('seeds', 0)} -> kept tracks {trk.get('kept', 0)} of {trk.get('tracks', 0)}"
        f" -> patches {funnel['patches']} -> parents kept {funnel['parents_kept']} (K={funnel['k']})"
        f" -> children {funnel['children']} -> pairs {funnel.get('pairs', 0)} {pair_kinds}"
    )
    seg = {}
    for s in t["segment"]:
        for k, v in _meta(s)["counts"].items():
            seg[k] = seg.get(k, 0) + v
    lines.append(f"  masks: {json.dumps(seg, sort_keys=True)}")
    lines.append("")
    lines.append("outputs:")
    root = Path(T.common.videomine().root)
    for png in sorted(root.glob("*/*/*.png")):
        lines.append(f"  {png}")
    lines.append(f"  graph manifests: {t['graph'].output().path}")
    lines.append(f"  published dataset: demo-pairs@1 in {out / 'registry'}")
    reports = sorted(root.glob("Report/*/index.html"))
    if reports:
        lines.append(f"  run report: {reports[-1]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tasks.demo", description=__doc__)
    ap.add_argument("--out", default="demo_output", help="where input and outputs go")
    ap.add_argument("--workers", type=int, default=2, help="luigi workers (2 cores here)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out).resolve()
    list_path = write_demo_input(out / "input")
    print(f"demo input: {list_path}")
    configure(out, list_path)
    t = demo_tasks(out)
    import tasks as T
    from tasks.train_eval import demo_retrieval

    main_tasks = [t["fetch"], *t["segment"], t["graph"]]
    ok = luigi.build(main_tasks, local_scheduler=True, workers=args.workers, log_level="WARNING")
    if ok:
        ok = luigi.build([t["publish"]], local_scheduler=True, workers=1, log_level="WARNING")
    retrieval = ""
    if ok:
        # A short CPU training run on the published demo dataset (read by name, as another
        # team would), then retrieval of the trained network against random init and HOG.
        print("training a small Triplet-Siamese network on demo-pairs@1 (CPU, ~1-2 min)...")
        retrieval = demo_retrieval("demo-pairs@1", out / "train", workers=1)
        ok = luigi.build([T.Report()], local_scheduler=True, workers=1, log_level="WARNING")
    frames_training = ""
    if ok:
        from tasks.train_frames import demo_frames_training

        print("training counting and Jigsaw++ for a few steps on sampled frames (CPU)...")
        ok, frames_training = demo_frames_training()
    if not ok:
        print(
            "demo: a task failed; see the log above. Rerun `make demo` to retry what is missing.",
            file=sys.stderr,
        )
        return 1
    print(summary(out, t))
    print(f"\n{retrieval}")
    print(f"\n{frames_training}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
