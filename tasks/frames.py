"""SampleFrames(shard): frames to learn from, for the single-frame methods (DESIGN 4.7).

Reads the shard's ``videos`` table (FetchVideos), streams each ok video once through
``pipeline.frame_sampling`` (every ``step``-th frame of the shots that are not static, at
most ``max_per_video``, shorter side ``frame_size``) and writes:

- ``frames.parquet``: one row per sampled frame (JPEG bytes, sha256; schema in
  ``data_manifests/tables/frames.py``);
- ``frame_shots.parquet``: one row per shot (sampled / static / too_short, with its
  motion score) and one per video that failed (shot -1, status ``failed``, traceback);
- ``frames.png``: a contact sheet of the first sampled frames.

Every default comes from :class:`~pipeline.frame_sampling.FrameSampleConfig`; override
them in ``luigi.cfg`` under ``[SampleFrames]``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import traceback
from typing import Any

import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.frame_sampling import (
    FrameSampleConfig,
    SampledFrame,
    ShotSample,
    resize_short,
    sample_frames,
)
from pipeline.video_io import VideoReader
from tasks.common import ShardTask, StageOutput, config_from_params, read_stage_table, stage_params

log = logging.getLogger(__name__)

SHEET_FRAMES = 24  # frames shown in frames.png


def frame_rows(video_id: str, frames: list[SampledFrame], quality: int) -> list[dict[str, Any]]:
    """``frames`` rows of one video's sample."""
    rows = []
    for f in frames:
        jpeg = imaging.encode_jpeg(f.image, quality)
        h, w = f.image.shape[:2]
        rows.append(
            {
                "video_id": video_id,
                "shot": f.shot,
                "frame": f.index,
                "width": w,
                "height": h,
                "jpeg": jpeg,
                "sha256": hashlib.sha256(jpeg).hexdigest(),
            }
        )
    return rows


def shot_rows(video_id: str, shots: list[ShotSample]) -> list[dict[str, Any]]:
    return [
        {
            "video_id": video_id,
            "shot": s.index,
            "start": s.start,
            "stop": s.stop,
            "status": s.status,
            "motion_score": None if math.isnan(s.motion_score) else s.motion_score,
            "n_sampled": s.n_sampled,
            "detail": "",
        }
        for s in shots
    ]


def failure_row(video_id: str, err: BaseException) -> dict[str, Any]:
    detail = "".join(traceback.format_exception(err))[-4000:]
    return {
        "video_id": video_id,
        "shot": -1,
        "start": 0,
        "stop": 0,
        "status": "failed",
        "motion_score": None,
        "n_sampled": 0,
        "detail": f"{type(err).__name__}: {detail}",
    }


@stage_params(FrameSampleConfig)
class SampleFrames(ShardTask):
    """Every n-th frame of the moving shots of one shard's videos -> ``frames``."""

    jpeg_quality = luigi.IntParameter(default=90, description="JPEG quality of stored frames")

    def requires(self) -> luigi.Task:
        from tasks.fetch import FetchVideos  # lazy: importing `tasks` must not need it

        return FetchVideos(shard=self.shard)

    def produce(self, out: StageOutput) -> None:
        cfg = config_from_params(self, FrameSampleConfig)
        cfg.validate()
        from tasks.fetch import recorded_backend, usable_videos, video_path  # fetch's reader

        videos = usable_videos(read_stage_table(self.requires(), "videos"))
        frames_w = out.writer("frames")
        shots_w = out.writer("frame_shots")
        sheet: list[NDArray[np.uint8]] = []
        failed = 0
        for k, v in enumerate(videos):
            video_id = v["video_id"]
            self.progress(k, len(videos), f"sampling {video_id}")
            try:
                with VideoReader(video_path(v), backend=recorded_backend(v)) as reader:
                    frames, shots = sample_frames(reader.iter_frames(), cfg)
            except Exception as e:  # per-video failure: a row with the traceback
                log.warning("%s: frame sampling failed: %s", video_id, e)
                failed += 1
                shots_w.write([failure_row(video_id, e)])
                out.count("videos_failed")
                continue
            frames_w.write(frame_rows(video_id, frames, self.jpeg_quality))
            shots_w.write(shot_rows(video_id, shots))
            sheet.extend(
                resize_short(f.image, 96) for f in frames[: max(0, SHEET_FRAMES - len(sheet))]
            )
            out.count("frames", len(frames))
            for s in shots:
                out.count(f"shots_{s.status}")
        self.progress(len(videos), len(videos), "done")
        self.check_failure_rate(failed, len(videos))
        if sheet:
            rows = [sheet[i : i + 8] for i in range(0, len(sheet), 8)]
            imaging.save_png(out.path / "frames.png", imaging.montage(rows, tile=128))
            out.note("sheet", "frames.png")


def frame_tasks() -> list[luigi.Task]:
    """SampleFrames of every shard of the configured list (the frames table of a run)."""
    from tasks.common import shard_count

    return [SampleFrames(shard=i) for i in range(shard_count())]
