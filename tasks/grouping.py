"""DetectEdges(shard) and ComputeRegions(shard): motion edges and region trees of mined frames.

Frames come through one helper, :func:`frames_task` / :func:`shot_frames`, so their source
can be switched in one place: today the frames of SegmentMotion's segmented shots (the
``masks`` table stores each as JPEG); SampleFrames' ``frames`` table when it lands (add an
entry to :data:`FRAME_SOURCES`).

- ``DetectEdges``: motion edges (``pipeline.edges.motion_edges_verdict``) of each mined frame
  with the next mined frame of its shot (at most ``max_frame_gap`` frames later) ->
  ``edges`` table + ``edges.png`` (frame, motion edges, gradient edges) for the run report.
- ``ComputeRegions(edge_source=...)``: a region tree per mined frame from the named edge
  source (:data:`EDGE_SOURCES`: ``gradient`` here; the trained edge network registers
  itself with :func:`register_edge_source`) -> ``regions`` table + ``ucm.png`` (frame,
  edges, UCM, leaves).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.edges import EdgeConfig, EdgeMap, gradient_edges, motion_edges_verdict
from pipeline.regions import RegionConfig, RegionTree, frame_tree, ucm_image
from tasks.common import ShardTask, StageOutput, config_from_params, read_stage_table, stage_params

log = logging.getLogger(__name__)
U8 = NDArray[np.uint8]

# source name -> (task class path, table); the first entry is the default.
FRAME_SOURCES: dict[str, tuple[str, str]] = {"masks": ("tasks.segment.SegmentMotion", "masks")}


def frames_task(shard: int, source: str = "masks") -> luigi.Task:
    """The task whose table holds the shard's mined frames."""
    if source not in FRAME_SOURCES:
        raise KeyError(f"frame source {source!r}; valid: {sorted(FRAME_SOURCES)}")
    import importlib

    path, _ = FRAME_SOURCES[source]
    mod, cls = path.rsplit(".", 1)
    return getattr(importlib.import_module(mod), cls)(shard=shard)


@dataclass(frozen=True)
class MinedFrame:
    video_id: str
    shot: int
    frame: int
    jpeg: bytes

    def rgb(self) -> U8:
        return imaging.decode_jpeg(self.jpeg)


def shot_frames(task: luigi.Task, source: str = "masks") -> Iterator[list[MinedFrame]]:
    """The frames of each shot of a completed frames task, in frame order, shot by shot."""
    table = read_stage_table(task, FRAME_SOURCES[source][1])
    cols = table.select(["video_id", "shot", "frame", "frame_jpeg"]).to_pydict()
    order = sorted(range(table.num_rows), key=lambda i: (cols["video_id"][i], cols["shot"][i],
                                                         cols["frame"][i]))  # fmt: skip
    group: list[MinedFrame] = []
    for i in order:
        f = MinedFrame(
            cols["video_id"][i], cols["shot"][i], cols["frame"][i], cols["frame_jpeg"][i]
        )
        if group and (group[-1].video_id, group[-1].shot) != (f.video_id, f.shot):
            yield group
            group = []
        group.append(f)
    if group:
        yield group


def _png8(strength: NDArray[np.floating]) -> bytes:
    return imaging.encode_png(np.round(np.clip(strength, 0, 1) * 255).astype(np.uint8))


def _degrees(orientation: NDArray[np.floating]) -> bytes:
    return imaging.encode_png((np.round(np.degrees(orientation)) % 180).astype(np.uint8))


def _grey(a: NDArray[np.floating]) -> U8:
    top = float(a.max()) or 1.0
    return np.asarray(np.round(a / top * 255), np.uint8)


def _leaf_colours(leaves: NDArray[np.int32]) -> U8:
    rng = np.random.default_rng(0)
    lut = rng.integers(40, 256, size=(int(leaves.max()) + 1, 3), dtype=np.uint8)
    return lut[leaves]


class _Sheet:
    def __init__(self, max_rows: int) -> None:
        self.rows: list[list[U8]] = []
        self.labels: list[str] = []
        self.max_rows = max_rows

    def want(self) -> bool:
        return len(self.rows) < self.max_rows

    def add(self, images: list[U8], label: str) -> None:
        if self.want():
            self.rows.append(images)
            self.labels.append(label)

    def save(self, out: StageOutput, name: str) -> None:
        if self.rows:
            imaging.save_png(out.path / name, imaging.montage(self.rows, 200, labels=self.labels))
            out.note("sheet", name)


@stage_params(EdgeConfig)
class DetectEdges(ShardTask):
    """Motion edges of one shard's mined frames -> ``motion_edges`` (+ ``edges.png``)."""

    max_frame_gap = luigi.IntParameter(
        default=4, description="pair a frame with the next mined one at most this many later"
    )
    sheet_rows = luigi.IntParameter(default=8, significant=False, description="rows of edges.png")
    may_be_empty = ("motion_edges",)  # a shard without segmented shots has no mined frames

    def requires(self) -> luigi.Task:
        return frames_task(self.shard)

    def produce(self, out: StageOutput) -> None:
        cfg = config_from_params(self, EdgeConfig)
        writer = out.writer("motion_edges")
        sheet = _Sheet(self.sheet_rows)
        for shot in shot_frames(self.requires()):
            self.set_status_message(f"{shot[0].video_id} shot {shot[0].shot}")
            for a, b in zip(shot[:-1], shot[1:], strict=True):
                writer.write([self._row(a, b, cfg, sheet)])
                out.count("pairs")
            out.count("shots")
        sheet.save(out, "edges.png")

    def _row(self, a: MinedFrame, b: MinedFrame, cfg: EdgeConfig, sheet: _Sheet) -> dict[str, Any]:
        f0 = a.rgb()
        h, w = f0.shape[:2]
        row: dict[str, Any] = {
            "video_id": a.video_id, "shot": a.shot, "frame": a.frame, "width": w, "height": h,
            "next_frame": b.frame, "kept": False, "reason": "gap", "residual_p99": 0.0,
            "flow_p99": 0.0, "moving_share": 0.0, "homography_inliers": 0, "edge_png": None,
            "orientation_png": None, "detail": "",
        }  # fmt: skip
        if b.frame - a.frame > self.max_frame_gap:
            return row
        try:
            edges, v = motion_edges_verdict(f0, b.rgb(), cfg)
        except Exception as e:  # a bad frame is a row; the shard goes on
            log.warning("%s frame %d: motion edges failed: %s", a.video_id, a.frame, e)
            row.update(reason="error", detail="".join(traceback.format_exception(e))[-2000:])
            return row
        row.update(kept=v.kept, reason=v.reason, residual_p99=v.residual_p99,
                   flow_p99=v.flow_p99, moving_share=v.moving_share,
                   homography_inliers=v.homography_inliers)  # fmt: skip
        if edges is not None:
            row.update(edge_png=_png8(edges.strength), orientation_png=_degrees(edges.orientation))
            if sheet.want():
                g = gradient_edges(f0, cfg)
                sheet.add([f0, _png_view(edges.strength), _png_view(g.strength)],
                          f"{a.video_id[:10]} f{a.frame}")  # fmt: skip
        return row


def _png_view(strength: NDArray[np.floating]) -> U8:
    return np.asarray(np.round(np.clip(strength, 0, 1) * 255), np.uint8)


# ----------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class EdgeSource:
    """How ComputeRegions gets edges: extra requirements, and a factory that turns the task
    and those requirements into a frame -> EdgeMap function."""

    requires: Callable[[luigi.Task], list[luigi.Task]]
    make: Callable[[luigi.Task, list[luigi.Task]], Callable[[U8], EdgeMap]]


def _gradient_source(task: luigi.Task, deps: list[luigi.Task]) -> Callable[[U8], EdgeMap]:
    cfg = config_from_params(task, EdgeConfig)
    return lambda frame: gradient_edges(frame, cfg)


EDGE_SOURCES: dict[str, EdgeSource] = {"gradient": EdgeSource(lambda t: [], _gradient_source)}


def register_edge_source(name: str, source: EdgeSource) -> None:
    """Add an edge source (e.g. the trained edge network of TrainEdges) by name."""
    EDGE_SOURCES[name] = source


def tree_row(
    frame: MinedFrame, shape: tuple[int, int], tree: RegionTree, source: str
) -> dict[str, Any]:
    leaves = tree.leaves.astype(np.uint8 if tree.n_leaves <= 256 else np.uint16)
    return {
        "video_id": frame.video_id, "shot": frame.shot, "frame": frame.frame,
        "width": shape[1], "height": shape[0], "edge_source": source,
        "n_leaves": tree.n_leaves, "leaves_png": imaging.encode_png(leaves),
        "parent": tree.parent.tolist(), "merge_height": tree.height.tolist(),
    }  # fmt: skip


def tree_from_row(row: dict[str, Any]) -> RegionTree:
    """The RegionTree of a ``regions`` row (the reader the training side uses)."""
    leaves = np.asarray(imaging.decode_png(row["leaves_png"]), np.int32)
    return RegionTree(leaves, np.asarray(row["parent"], np.int32),
                      np.asarray(row["merge_height"], np.float32))  # fmt: skip


# motion-edge settings do not change gradient trees: not parameters here (no new output
# path when only they change)
MOTION_ONLY = ("flow_method", "dis_preset", "flow_sigma", "motion_half_strength",
               "min_motion_px", "max_flow_frac", "moving_px", "max_moving_share",
               "min_moving_share", "snap_px", "superpixels")  # fmt: skip


@stage_params(EdgeConfig, RegionConfig, exclude=MOTION_ONLY)
class ComputeRegions(ShardTask):
    """Region trees of one shard's mined frames -> ``regions`` (+ ``ucm.png``)."""

    edge_source = luigi.Parameter(default="gradient", description="edges: gradient | network")
    sheet_rows = luigi.IntParameter(default=8, significant=False, description="rows of ucm.png")
    may_be_empty = ("regions",)

    def _source(self) -> EdgeSource:
        if self.edge_source not in EDGE_SOURCES:
            raise KeyError(f"edge_source {self.edge_source!r}; valid: {sorted(EDGE_SOURCES)}")
        return EDGE_SOURCES[self.edge_source]

    def requires(self) -> list[luigi.Task]:
        return [frames_task(self.shard), *self._source().requires(self)]

    def produce(self, out: StageOutput) -> None:
        rcfg = config_from_params(self, RegionConfig)
        deps = self.requires()
        detect = self._source().make(self, deps[1:])
        writer = out.writer("regions")
        sheet = _Sheet(self.sheet_rows)
        failed = 0
        for shot in shot_frames(deps[0]):
            self.set_status_message(f"{shot[0].video_id} shot {shot[0].shot}")
            for k, fr in enumerate(shot):
                try:
                    rgb = fr.rgb()
                    tree, edges = frame_tree(rgb, detect, rcfg)
                except Exception as e:  # one bad frame does not lose the shard
                    log.warning("%s frame %d: regions failed: %s", fr.video_id, fr.frame, e)
                    failed += 1
                    out.count("frames_failed")
                    continue
                writer.write([tree_row(fr, rgb.shape[:2], tree, self.edge_source)])
                out.count("frames")
                out.count("leaves", tree.n_leaves)
                if k == len(shot) // 2 and sheet.want():
                    sheet.add([rgb, _png_view(edges.strength), _grey(ucm_image(tree)),
                               _leaf_colours(tree.leaves)], f"{fr.video_id[:10]} f{fr.frame}")  # fmt: skip
        sheet.save(out, "ucm.png")
        total = out.counts.get("frames", 0) + failed
        self.check_failure_rate(failed, total, "frames")
