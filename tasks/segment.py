"""SegmentMotion(shard): uNLC motion masks for every video of a shard (DESIGN 4.4).

Reads the shard's ``videos`` table (FetchVideos), streams each usable video shot by shot
through ``pipeline.segmentation`` (memory bounded by one shot of <= 110 frames) and writes:

- ``masks.parquet``: one row per segmented frame (frame JPEG, soft mask PNG, fg / border
  shares, kept flag and reason; schema in ``data_manifests/tables/masks.py``);
- ``mask_shots.parquet``: one row per shot (segmented / rejected / skipped with the reason)
  and one per video that failed (shot -1, status ``failed``, the traceback);
- ``overlay.png``: a sheet of (frame, soft mask, overlay) rows like Fig. 6 of Pathak et al.
  2017, kept frames first.

Every uNLC, shot and pruning default comes from its dataclass (`stage_params`); override
them in ``luigi.cfg`` under ``[SegmentMotion]``. ``--preset videoseg`` runs the authors'
algorithm instead of ours (``pipeline.segmentation.PRESETS``; explicit overrides still win).
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.pruning import PruneConfig, soft_to_png8
from pipeline.segmentation import (
    MAX_SIDE,
    PRESETS,
    ShotOutcome,
    apply_preset,
    mask_overlay,
    segment_video,
)
from pipeline.shots import ShotConfig
from pipeline.unlc import UnlcConfig
from tasks.common import ShardTask, StageOutput, config_from_params, read_stage_table, stage_params

log = logging.getLogger(__name__)


def mask_rows(video_id: str, oc: ShotOutcome, jpeg_quality: int) -> list[dict[str, Any]]:
    """`masks` rows of one segmented shot (empty for rejected or skipped shots)."""
    rows = []
    for fm in oc.frames:
        h, w = fm.soft.shape
        rows.append(
            {
                "video_id": video_id,
                "shot": oc.shot.index,
                "frame": fm.index,
                "width": w,
                "height": h,
                "frame_jpeg": imaging.encode_jpeg(fm.frame, jpeg_quality),
                "mask_png": imaging.encode_png(soft_to_png8(fm.soft)),
                "fg_share": fm.verdict.fg_share,
                "border_share": fm.verdict.border_share,
                "kept": fm.verdict.kept,
                "reason": fm.verdict.reason,
            }
        )
    return rows


def shot_row(video_id: str, oc: ShotOutcome) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "shot": oc.shot.index,
        "start": oc.shot.start,
        "stop": oc.shot.stop,
        "n_segmented": len(oc.frames),
        "n_kept": oc.n_kept,
        "status": oc.status,
        "reason": oc.reason,
        "detail": oc.detail,
        "stats_json": json.dumps({k: round(v, 4) for k, v in oc.stats.items()}, sort_keys=True),
    }


def failure_row(video_id: str, err: BaseException) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "shot": -1,
        "start": 0,
        "stop": 0,
        "n_segmented": 0,
        "n_kept": 0,
        "status": "failed",
        "reason": type(err).__name__,
        "detail": "".join(traceback.format_exception(err))[-4000:],
        "stats_json": "{}",
    }


class OverlaySheet:
    """Collects at most `max_rows` small (frame, mask, overlay) rows, kept frames first."""

    def __init__(self, prune_cfg: PruneConfig, max_rows: int, tile: int = 160) -> None:
        self.prune_cfg, self.max_rows, self.tile = prune_cfg, max_rows, tile
        self.kept: list[tuple[list[NDArray[np.uint8]], str]] = []
        self.pruned: list[tuple[list[NDArray[np.uint8]], str]] = []

    def add(self, video_id: str, oc: ShotOutcome) -> None:
        """Take the middle kept frame of a shot (else its middle frame), downscaled."""
        if not oc.frames:
            return
        kept = [f for f in oc.frames if f.verdict.kept]
        pool, bucket = (kept, self.kept) if kept else (oc.frames, self.pruned)
        if len(bucket) >= self.max_rows:
            return
        fm = pool[len(pool) // 2]
        mask = soft_to_png8(fm.soft)
        over = mask_overlay(fm.frame, fm.soft, self.prune_cfg)
        s = self.tile / max(fm.frame.shape[:2])
        small = [_shrink(x, s) for x in (fm.frame, mask, over)]
        label = f"{video_id[:12]} f{fm.index}" + (
            "" if fm.verdict.kept else f" {fm.verdict.reason}"
        )
        bucket.append((small, label))

    def save(self, path: Path) -> bool:
        rows = (self.kept + self.pruned)[: self.max_rows]
        if not rows:
            return False
        sheet = imaging.montage([r for r, _ in rows], tile=self.tile, labels=[lb for _, lb in rows])
        imaging.save_png(path, sheet)
        return True


def _shrink(img: NDArray[np.uint8], s: float) -> NDArray[np.uint8]:
    import cv2

    if s >= 1:
        return img
    h, w = img.shape[:2]
    return np.asarray(
        cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    )


@stage_params(ShotConfig, UnlcConfig, PruneConfig)
class SegmentMotion(ShardTask):
    """uNLC motion masks of one shard's videos -> ``masks`` + ``mask_shots`` tables."""

    max_side = luigi.IntParameter(default=MAX_SIDE, description="frames' longer side (px)")
    jpeg_quality = luigi.IntParameter(default=90, description="JPEG quality of stored frames")
    overlay_rows = luigi.IntParameter(
        default=8, significant=False, description="rows of the overlay sheet"
    )
    preset = luigi.ChoiceParameter(
        default="ours", choices=sorted(PRESETS), description="uNLC preset (videoseg: authors')"
    )
    # a shard of static clips yields no mask; one without a usable video has no shot row
    may_be_empty = ("masks", "mask_shots")

    def requires(self) -> luigi.Task:
        from tasks.fetch import FetchVideos  # lazy: importing `tasks` must not need it

        return FetchVideos(shard=self.shard)

    def produce(self, out: StageOutput) -> None:
        shot_cfg = config_from_params(self, ShotConfig)
        unlc_cfg, prune_cfg = apply_preset(
            self.preset, config_from_params(self, UnlcConfig), config_from_params(self, PruneConfig)
        )
        unlc_cfg.validate()
        prune_cfg.validate()
        from tasks.fetch import recorded_backend, usable_videos, video_path  # fetch's reader

        videos = usable_videos(read_stage_table(self.requires(), "videos"))
        masks_w = out.writer("masks")
        shots_w = out.writer("mask_shots")
        sheet = OverlaySheet(prune_cfg, self.overlay_rows)
        failed = 0
        for k, row in enumerate(videos):
            video_id = row["video_id"]
            self.progress(k, len(videos), f"segmenting {video_id}")
            try:
                path, backend = video_path(row), recorded_backend(row)
                for oc in segment_video(
                    path, shot_cfg, unlc_cfg, prune_cfg, self.max_side, backend=backend
                ):
                    masks_w.write(mask_rows(video_id, oc, self.jpeg_quality))
                    shots_w.write([shot_row(video_id, oc)])
                    sheet.add(video_id, oc)
                    out.count(f"shots_{oc.status}")
                    out.count("frames_segmented", len(oc.frames))
                    out.count("frames_kept", oc.n_kept)
            except Exception as e:  # per-video failure: a row with the traceback
                log.warning("%s: segmentation failed: %s", video_id, e)
                failed += 1
                shots_w.write([failure_row(video_id, e)])
                out.count("videos_failed")
        self.progress(len(videos), len(videos), "done")
        self.check_failure_rate(failed, len(videos))
        if sheet.save(out.path / "overlay.png"):
            out.note("overlay", "overlay.png")
