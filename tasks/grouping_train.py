"""TrainEdges and TrainGrouping (Zhang & Maire 2020 on mined video; DESIGN 4.8).

- ``TrainEdges``: the edge network of Li, Paluri, Rehg & Dollar 2016, from scratch. Round 0
  trains on DetectEdges' motion edges; after each round the network is applied to *every*
  mined frame and its thinned, thresholded edges (``pipeline.learned_edges``) are the next
  round's targets; ``rounds`` = 4 as Li et al. Each round is one ``models.train`` run (task
  ``edges``: DDP, resume, NaN guard as for the other networks) in
  ``<output>.work/round<k>/``, so a killed run resumes inside the round it was in.
- ``TrainGrouping``: the pixel-embedding network (task ``grouping``) on ComputeRegions' trees
  joined with their frames.

Frames come from one helper, :func:`frame_table` / :func:`frame_sources`: the frame source
of DetectEdges / ComputeRegions (``tasks.grouping.FRAME_SOURCES``: SegmentMotion's ``masks``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import luigi
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_manifests import schema as schemas
from models.data_grouping import FrameColumns, decode_labels, load_frame_table
from models.edge_net import EdgeTargetConfig, edge_target, predict_edges
from models.images import decode_rgb
from models.manifests import has_table, read_table
from pipeline import imaging
from pipeline.learned_edges import edge_map_from_probability
from tasks.common import StageOutput, shard_count
from tasks.grouping import EdgeSource, register_edge_source
from tasks.train import OUTPUT_FILES, TrainBase

_T = EdgeTargetConfig()
MOTION_TABLE = (
    "motion_edges"  # DetectEdges: one row per frame with motion edges ("edges" is the graph)
)
MOTION_COLUMN = "edge_png"  # 8-bit strength, round(255 x strength)


def frame_table() -> str:
    """The table the mined frames are read from: the one DetectEdges and ComputeRegions read
    (``tasks.grouping.FRAME_SOURCES``' default, SegmentMotion's ``masks``), so motion edges
    and region trees join their frames on (video_id, frame). SampleFrames' ``frames`` (its
    every n-th frame, column ``jpeg``) is a different frame set: switching to it means adding
    it to ``FRAME_SOURCES`` and changing both sides together."""
    from tasks.grouping import FRAME_SOURCES

    return next(iter(FRAME_SOURCES.values()))[1]


def frame_sources() -> list[luigi.Task]:
    """The shard tasks whose outputs hold :func:`frame_table`."""
    from tasks.grouping import frames_task

    return [frames_task(i) for i in range(shard_count())]


class TrainEdges(TrainBase):
    """Edge network from motion edges, re-trained on its own edges for ``rounds`` rounds."""

    kind = "edges"
    rounds = luigi.IntParameter(default=4, description="training rounds (Li et al. 2016: 4)")
    edge_threshold = luigi.FloatParameter(default=_T.threshold, description="edge if > this")
    ignore_radius = luigi.IntParameter(default=_T.ignore_radius, description="px ignored by edges")
    edge_share_match = luigi.BoolParameter(
        default=True,
        parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="rounds > 0 keep at most round 0's mean edge share per frame (true|false)",
    )
    predict_height = luigi.IntParameter(default=0, description="frames resized to this height "
                                        "to predict the next round's edges; 0 = as stored")  # fmt: skip

    def upstream(self) -> list[luigi.Task]:
        from tasks.grouping import DetectEdges

        return [*[DetectEdges(shard=i) for i in range(shard_count())], *frame_sources()]

    def target_config(self) -> EdgeTargetConfig:
        return EdgeTargetConfig(float(self.edge_threshold), int(self.ignore_radius))

    def round_zero(self) -> pa.Table:
        """Motion edges joined with their frames -> edge_targets rows (round 0)."""
        src = self.sources()
        frames = load_frame_table(src, FrameColumns(table=frame_table()))
        motion = read_table([s for s in src if has_table([s], MOTION_TABLE)], MOTION_TABLE)
        # pairs DetectEdges skipped (flow too small, too large, too uniform) have no edges
        motion = motion.filter(pc.and_(pc.fill_null(motion.column("kept"), False),
                                       pc.is_valid(motion.column(MOTION_COLUMN))))  # fmt: skip
        motion = motion.select(["video_id", "frame", MOTION_COLUMN])
        joined = motion.join(frames, keys=["video_id", "frame"], join_type="inner")
        rows = []
        for r in joined.to_pylist():
            strength = decode_labels(r[MOTION_COLUMN]).astype(np.float32) / 255.0
            rows.append(_target_row(r, edge_target(strength, self.target_config()), 0))
        if not rows:
            raise ValueError(f"{self.task_id}: no motion-edge frame has a frame to train on")
        return schemas.table_from_rows(rows, schemas.get("edge_targets"))

    def next_round(self, net_path: Path, frames: pa.Table, k: int, share: float) -> pa.Table:
        """Round ``k`` targets: the round k-1 network's thinned edges on every frame, at most
        ``share`` of each frame's pixels (the strongest; ``edge_share_match``)."""
        from models.edge_net import load_edge_net

        net = load_edge_net(net_path)
        rows = []
        for i, r in enumerate(frames.to_pylist()):
            img = decode_rgb(r["frame_jpeg"])
            h, w = img.shape[:2]
            small = _resize_height(img, int(self.predict_height))
            prob = predict_edges(net, small[None])[0]
            if prob.shape != (h, w):
                import cv2

                prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
            thin = edge_map_from_probability(prob).strength
            cfg = self.target_config()
            if self.edge_share_match and share > 0:
                q = float(np.quantile(thin, 1.0 - share))
                cfg = dataclasses.replace(cfg, threshold=max(cfg.threshold, q))
            rows.append(_target_row(r, edge_target(thin, cfg), k))
            if i % 50 == 0:
                self.set_status_message(f"round {k} targets: {i}/{frames.num_rows} frames")
        return schemas.table_from_rows(rows, schemas.get("edge_targets"))

    def produce(self, out: StageOutput) -> None:
        work = self.work_dir()
        work.mkdir(parents=True, exist_ok=True)
        frames = load_frame_table(self.sources(), FrameColumns(table=frame_table()))
        rounds: list[dict[str, Any]] = []
        for k in range(int(self.rounds)):
            rdir = work / f"round{k}"
            data = rdir / "edge_targets.parquet"
            if not data.is_file():
                rdir.mkdir(parents=True, exist_ok=True)
                prev = work / f"round{k - 1}" / "checkpoint.pt"
                share = rounds[0]["edge_share"] if rounds else 0.0
                table = self.round_zero() if k == 0 else self.next_round(prev, frames, k, share)
                tmp = rdir / ".edge_targets.parquet.tmp"
                schemas.write_parquet(table, tmp, schemas.get("edge_targets"), {"round": k})
                tmp.replace(data)
            cfg = dataclasses.replace(self.train_config(), data=[str(data)], out_dir=str(rdir))
            summary = self.train_round(cfg, rdir)
            share = pa.compute.mean(read_table(data, "edge_targets").column("edge_share"))
            rounds.append({"round": k, "frames": read_table(data, "edge_targets").num_rows,
                           "edge_share": round(float(share.as_py()), 5), "val": summary["val"]})  # fmt: skip
        last = work / f"round{int(self.rounds) - 1}"
        for name in OUTPUT_FILES:
            shutil.copy2(last / name, out.path / name)
        for k in range(int(self.rounds)):  # every round's network, for EvaluateEdges
            shutil.copy2(work / f"round{k}" / "checkpoint.pt", out.path / f"round{k}.pt")
        shutil.copy2(last / "edge_targets.parquet", out.path / "edge_targets.parquet")
        (out.path / "rounds.json").write_text(json.dumps(rounds, indent=1))
        out.note("rounds", rounds)
        out.count("rounds", len(rounds))

    def train_round(self, cfg: Any, rdir: Path) -> dict[str, Any]:
        config_file = rdir / "config.json"
        config_file.write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
        self.set_status_message(f"training edges in {rdir}")
        with open(rdir / "train.log", "a") as log:
            proc = subprocess.run(self.command(config_file), stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            tail = (rdir / "train.log").read_text()[-3000:]
            raise RuntimeError(f"{self.task_id}: models.train exited {proc.returncode}:\n{tail}")
        return self.check_outputs(rdir, cfg)


class TrainGrouping(TrainBase):
    """Zhang & Maire 2020: pixel embeddings from region-tree pixel pairs on mined frames."""

    kind = "grouping"
    edge_source = luigi.Parameter(
        default="network", description="ComputeRegions' edges: network (TrainEdges) | gradient"
    )

    def upstream(self) -> list[luigi.Task]:
        from tasks.grouping import ComputeRegions

        regions = [
            ComputeRegions(shard=i, edge_source=self.edge_source) for i in range(shard_count())
        ]
        return [*regions, *frame_sources()]

    pca_frames = luigi.IntParameter(
        default=4, significant=False, description="frames in the run report's embedding sheet"
    )

    def train_config(self) -> Any:
        cfg = super().train_config()
        cfg.columns = {**cfg.columns, "frames_table": frame_table()}
        return cfg

    def produce(self, out: StageOutput) -> None:
        super().produce(out)
        sheet = self.embedding_sheet(out.path / "checkpoint.pt")
        if sheet is not None:
            out.path.joinpath("embedding_pca.png").write_bytes(imaging.encode_png(sheet))
            out.note("embedding_sheet", "embedding_pca.png")

    def embedding_sheet(self, checkpoint: Path) -> Any:
        """A few of the training frames beside the first three principal components of their
        learned embedding as colours (issue 14.7: the run report shows every stage's PNGs),
        one row per frame, spread evenly over the frame table."""
        import cv2

        from models import dense_features as dfeat

        cfg = self.train_config()
        table = load_frame_table(cfg.data, FrameColumns(table=frame_table()), cfg.registry)
        if table.num_rows == 0:
            return None
        idx = np.linspace(0, table.num_rows - 1, min(int(self.pca_frames), table.num_rows))
        jpegs = table.column("frame_jpeg")
        net = dfeat.load_grouping_net(checkpoint)
        rows = []
        for i in idx:
            small = _resize_height(decode_rgb(jpegs[int(round(i))].as_py()), 160)
            emb = dfeat.grouping_features(net, small[None])[0]
            pca = cv2.resize(dfeat.pca_colours(emb), (small.shape[1], small.shape[0]),
                             interpolation=cv2.INTER_NEAREST)  # fmt: skip
            rows.append(np.concatenate([small, pca], axis=1))
        width = max(r.shape[1] for r in rows)
        return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])


def _resize_height(img: Any, height: int) -> Any:
    if height <= 0 or img.shape[0] == height:
        return img
    import cv2

    w = max(int(round(img.shape[1] * height / img.shape[0])), 16)
    return cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)


def _target_row(r: dict[str, Any], target: Any, k: int) -> dict[str, Any]:
    decided = target != 255
    share = float((target == 1).sum()) / max(float(decided.sum()), 1.0)
    return {"video_id": r["video_id"], "frame": int(r["frame"]), "frame_jpeg": r["frame_jpeg"],
            "target_png": imaging.encode_png(target), "round": k, "edge_share": share}  # fmt: skip


def _network_edges(task: luigi.Task, deps: list[luigi.Task]) -> Any:
    """ComputeRegions' ``network`` edge source: TrainEdges' network, thinned."""
    from models.edge_net import load_edge_net

    net = load_edge_net(deps[0].checkpoint_path())
    return lambda frame: edge_map_from_probability(predict_edges(net, frame[None])[0])


register_edge_source("network", EdgeSource(lambda t: [TrainEdges()], _network_edges))
