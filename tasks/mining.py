"""DetectMotion(shard) and TrackObjects(shard): mining moving-object pairs (DESIGN 4.2, 4.3).

- ``DetectMotion``: streams each usable video of the shard at ``frame_height`` through
  ``pipeline.seeding`` (SURF + IDT-style camera-motion compensation + the 25%..75% moving
  rule + best 227 box) and writes ``seeds`` (one row per seed, boxes in original pixels)
  and ``seed_videos`` (one row per video: ok / failed with the traceback, frame counts).
- ``TrackObjects``: tracks every seed with KCF (``pipeline.tracking``) for ``track_length``
  frames (the moving points' own box inside the seed box, ``seeds.target_*``, moving the
  seed box with it; ``--track-target box``: the seed box itself) and writes ``tracks`` (every track, kept or dropped with its reason and
  evidence), ``patches`` (A and A' JPEGs of kept tracks), ``track_videos`` and
  ``pairs.png``: a contact sheet of mined pairs (A beside A', as Fig. 3 of Wang & Gupta
  2015), kept tracks first, then a few dropped ones labelled with their reason.

Every numeric default lives in ``MotionConfig`` / ``TrackingConfig``; override them in
``luigi.cfg`` under ``[DetectMotion]`` / ``[TrackObjects]``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.decoded import Decoded, RGBFrame
from pipeline.motion import MotionConfig
from pipeline.seeding import scan, select_seeds
from pipeline.tracking import TrackingConfig, TrackResult, target_box, track
from pipeline.video_io import Backend, VideoReader, scan_reader
from tasks.common import ShardTask, StageOutput, config_from_params, read_stage_table, stage_params

log = logging.getLogger(__name__)


def _failure(video_id: str, err: BaseException, t0: float, **zeros: int) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "status": "failed",
        **zeros,
        "wall_time_s": round(time.time() - t0, 3),
        "error": f"{type(err).__name__}: {err}"[:500],
        "traceback": "".join(traceback.format_exception(err))[-4000:],
    }


def seed_id(video_id: str, frame: int) -> str:
    return f"{video_id}:f{frame:07d}"


@stage_params(MotionConfig)
class DetectMotion(ShardTask):
    """Motion seeds of one shard's videos -> ``seeds`` + ``seed_videos``."""

    # A shard of static or all-moving clips has no seed; a shard without a usable video
    # (every line failed or a duplicate) has no seed_videos row. Neither is "empty output":
    # only a run with no kept track at all is (ClusterParents refuses it).
    may_be_empty = ("seeds", "seed_videos")
    # not `workers`: a root task's parameters become bare flags, and Luigi owns --workers
    threads = luigi.IntParameter(
        default=1,
        significant=False,
        description="pair analyses run at once in threads (same rows; 1 = single core)",
    )

    def requires(self) -> luigi.Task:
        from tasks.fetch import FetchVideos  # lazy: importing `tasks` must not need it

        return FetchVideos(shard=self.shard)

    def produce(self, out: StageOutput) -> None:
        from tasks.fetch import recorded_backend, usable_videos, video_path  # fetch's reader

        cfg: MotionConfig = config_from_params(self, MotionConfig)
        videos = usable_videos(read_stage_table(self.requires(), "videos"))
        seeds_w = out.writer("seeds")
        status_rows = []
        for i, v in enumerate(videos):
            self.progress(i, len(videos), f"motion {v['video_id']}")
            t0 = time.time()
            try:
                rows, stat = detect_video(v["video_id"], video_path(v), cfg, int(self.threads),
                                          backend=recorded_backend(v))  # fmt: skip
            except Exception as e:  # per-video failure is a row; the shard goes on
                log.warning("DetectMotion %s failed: %s", v["video_id"], e)
                zeros = dict.fromkeys(
                    (
                        "n_frames",
                        "n_shots",
                        "n_analysed",
                        "n_prefiltered",
                        "n_near_end",
                        "n_kept_frames",
                        "n_seeds",
                    ),
                    0,
                )
                status_rows.append(_failure(v["video_id"], e, t0, **zeros))
                out.count("videos_failed")
                continue
            seeds_w.write(rows)
            status_rows.append({**stat, "wall_time_s": round(time.time() - t0, 3)})
            out.count("seeds", len(rows))
            out.count("frames", stat["n_frames"])
            out.count("frames_analysed", stat["n_analysed"])
            out.count("frames_prefiltered", stat["n_prefiltered"])
            out.count("frames_near_end", stat["n_near_end"])
            out.count("frames_kept", stat["n_kept_frames"])
        out.write("seed_videos", status_rows)
        self.progress(len(videos), len(videos), "done")
        self.check_failure_rate(sum(r["status"] == "failed" for r in status_rows), len(videos))


def detect_video(
    video_id: str,
    path: str,
    cfg: MotionConfig,
    workers: int = 1,
    backend: Backend = "auto",
    on_demand: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``seeds`` rows and the ``seed_videos`` row (without wall time) of one video.

    ``workers`` > 1: pair analyses in that many threads (same rows). ``backend``: the
    reader FetchVideos recorded for the file. ``on_demand``: frames convert to RGB only for
    the pairs screened (``video_io.scan_reader``; the same rows); False: every frame is
    decoded to RGB (the reading before issue 11, kept for ``bench mining``)."""
    if on_demand:
        reader = scan_reader(path, cfg.frame_height, backend)
    else:
        reader = VideoReader(path, height=cfg.frame_height, backend=backend)
    with reader:
        fps = reader.fps
        src_h, src_w = reader.source_size
        frames = reader.iter_decoded() if on_demand else reader.iter_frames()
        result = scan(frames, cfg, workers)
    work_w, work_h = result.size
    sx, sy = src_w / max(work_w, 1), src_h / max(work_h, 1)
    seeds = select_seeds(result, cfg)
    rows = []
    for s in seeds:
        m = s.record.motion
        assert m is not None
        x, y, w, h = s.box
        # the moving points' own box inside the seed box: what TrackObjects tracks
        tx, ty, tw, th = target_box(m.points[m.moving], s.box)
        rows.append(
            {
                "seed_id": seed_id(video_id, s.frame),
                "video_id": video_id,
                "frame": s.frame,
                "time": s.frame / fps if fps > 0 else 0.0,
                "shot": s.shot,
                "x": x * sx,
                "y": y * sy,
                "w": w * sx,
                "h": h * sy,
                "video_width": src_w,
                "video_height": src_h,
                "n_points": m.n_points,
                "n_moving": m.n_moving,
                "moving_fraction": m.moving_fraction,
                "n_in_box": m.n_in_box,
                "n_matches": m.n_matches,
                "n_inliers": m.n_inliers,
                "prefilter_score": s.record.prefilter_score,
                "target_x": tx * sx,
                "target_y": ty * sy,
                "target_w": tw * sx,
                "target_h": th * sy,
            }
        )
    stat = {
        "video_id": video_id,
        "status": "ok",
        "n_frames": result.n_frames,
        "n_shots": len(result.shot_starts),
        "n_analysed": len(result.records),
        "n_prefiltered": sum(r.skipped not in ("", "near_end") for r in result.records),
        "n_near_end": sum(r.skipped == "near_end" for r in result.records),
        "n_kept_frames": sum(r.kept for r in result.records),
        "n_seeds": len(rows),
        "error": None,
        "traceback": None,
    }
    return rows, stat


@stage_params(TrackingConfig)
class TrackObjects(ShardTask):
    """KCF tracks of one shard's seeds -> ``tracks`` + ``patches`` + ``pairs.png``."""

    frame_height = luigi.IntParameter(
        default=MotionConfig.frame_height,
        description="decode height for tracking and crops (DetectMotion's working scale)",
    )
    sheet_rows = luigi.IntParameter(
        default=16, significant=False, description="rows of the pairs contact sheet"
    )
    threads = luigi.IntParameter(  # not `workers`: Luigi owns --workers
        default=1,
        significant=False,
        description="seeds tracked at once in threads (same rows; 1 = single core)",
    )
    # no seeds, no tracks: allowed like DetectMotion; track_videos has a row per usable video
    may_be_empty = ("tracks", "patches", "track_videos")

    def requires(self) -> dict[str, luigi.Task]:
        from tasks.fetch import FetchVideos

        return {"videos": FetchVideos(shard=self.shard), "seeds": DetectMotion(shard=self.shard)}

    def produce(self, out: StageOutput) -> None:
        from tasks.fetch import recorded_backend, usable_videos, video_path  # fetch's reader

        cfg: TrackingConfig = config_from_params(self, TrackingConfig)
        req = self.requires()
        videos = {
            v["video_id"]: v for v in usable_videos(read_stage_table(req["videos"], "videos"))
        }
        seeds = read_stage_table(req["seeds"], "seeds").to_pylist()
        by_video: dict[str, list[dict[str, Any]]] = {}
        for s in seeds:
            by_video.setdefault(s["video_id"], []).append(s)
        tracks_w, patches_w = out.writer("tracks"), out.writer("patches")
        sheet = PairSheet(int(self.sheet_rows))
        status_rows = []
        for vid in sorted(set(videos) - set(by_video)):  # processed, no seed: still a row
            status_rows.append(
                {"video_id": vid, "status": "ok", "n_seeds": 0, "n_kept": 0,
                 "wall_time_s": 0.0, "error": None, "traceback": None}
            )  # fmt: skip
        for i, (vid, vseeds) in enumerate(sorted(by_video.items())):
            self.progress(i, len(by_video), f"tracking {vid}")
            t0 = time.time()
            try:
                if vid not in videos:
                    raise FileNotFoundError(f"video {vid} has seeds but no usable file")
                tracks, patches = track_video(vid, video_path(videos[vid]), vseeds, cfg,
                                              int(self.frame_height), sheet, int(self.threads),
                                              backend=recorded_backend(videos[vid]))  # fmt: skip
            except Exception as e:
                log.warning("TrackObjects %s failed: %s", vid, e)
                status_rows.append(_failure(vid, e, t0, n_seeds=len(vseeds), n_kept=0))
                continue
            tracks_w.write(tracks)
            patches_w.write(patches)
            n_kept = sum(t["kept"] for t in tracks)
            out.count("tracks", len(tracks))
            out.count("kept", n_kept)
            for t in tracks:
                out.count(f"reason_{t['reason']}")
            status_rows.append(
                {"video_id": vid, "status": "ok", "n_seeds": len(vseeds), "n_kept": n_kept,
                 "wall_time_s": round(time.time() - t0, 3), "error": None, "traceback": None}
            )  # fmt: skip
        out.write("track_videos", status_rows, None)
        if sheet.save(out.path / "pairs.png"):
            out.note("contact_sheet", "pairs.png")
        self.progress(len(by_video), len(by_video), "done")
        self.check_failure_rate(sum(r["status"] == "failed" for r in status_rows), len(status_rows))


class PairSheet:
    """Collects (A, A') crops for the contact sheet: kept tracks first, a few dropped."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.kept: list[tuple[list[NDArray[np.uint8]], str]] = []
        self.dropped: list[tuple[list[NDArray[np.uint8]], str]] = []

    def add(self, video_id: str, frame: int, r: TrackResult) -> None:
        bucket = self.kept if r.kept else self.dropped
        if len(bucket) < self.max_rows:
            tag = f"c{r.confidence:.2f}" if r.kept else r.reason
            bucket.append(([r.crop_a, r.crop_b], f"{video_id[:10]} f{frame} {tag}"))

    def save(self, path: Any) -> bool:
        n_drop = min(len(self.dropped), max(self.max_rows // 4, self.max_rows - len(self.kept)))
        rows = self.kept[: self.max_rows - n_drop] + self.dropped[:n_drop]
        if not rows:
            return False
        imaging.save_png(path, imaging.montage([r for r, _ in rows], labels=[lb for _, lb in rows]))
        return True


def _box(row: Mapping[str, Any], s: float) -> tuple[float, float, float, float]:
    return (row["x"] * s, row["y"] * s, row["w"] * s, row["h"] * s)


def _targets(
    row: Mapping[str, Any], s: float, cfg: TrackingConfig
) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float] | None]:
    """(box KCF tracks, box A and A' are cropped from, or None: the same) of a seed row at
    decode scale ``s``: with ``track_target`` "moving" and the row's moving-points box
    (seeds v2), that box and the seed box; else the seed box alone (the paper's)."""
    t = [row.get(f"target_{c}") for c in "xywh"]
    if cfg.track_target == "box" or any(v is None or not np.isfinite(v) for v in t):
        return _box(row, s), None
    return (t[0] * s, t[1] * s, t[2] * s, t[3] * s), _box(row, s)


def track_video(
    video_id: str,
    path: str,
    seeds: list[dict[str, Any]],
    cfg: TrackingConfig,
    frame_height: int,
    sheet: PairSheet | None = None,
    workers: int = 1,
    backend: Backend = "auto",
    on_demand: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``tracks`` and ``patches`` rows of one video's seeds.

    ``workers`` > 1 tracks that many seeds at once in threads (OpenCV releases the GIL in
    KCF's update) while decoding goes on; rows and their order are the same as with 1.
    ``on_demand``: only the windows' frames are converted to RGB (``video_io.scan_reader``;
    the same rows); False: every frame from the first window on (the reading before issue
    11, kept for ``bench mining``)."""
    tracks: list[dict[str, Any]] = []
    patches: list[dict[str, Any]] = []
    L = cfg.track_length
    # Frames between the windows are decoded but never converted to RGB (scan_reader: the
    # same pictures as VideoReader's where it reads with PyAV, else VideoReader's own).
    if on_demand:
        reader = scan_reader(path, frame_height, backend)
    else:
        reader = VideoReader(path, height=frame_height, backend=backend)
    with reader:
        n = len(reader)
        s = reader.size[0] / reader.source_size[0]  # original -> decode scale
        todo = []
        for seed in sorted(seeds, key=lambda r: r["frame"]):
            if int(seed["frame"]) + L >= n:
                tracks.append(_short_row(_base(video_id, seed, cfg), seed, cfg))
            else:
                todo.append(seed)
        if not todo:
            return tracks, patches
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        pending: deque[tuple[dict[str, Any], Future[TrackResult]]] = deque()

        def finish(limit: int) -> None:  # rows in seed order, at most `limit` in flight
            while len(pending) > limit:
                done_seed, fut = pending.popleft()
                _track_rows(video_id, done_seed, fut.result(), s, cfg, tracks, patches, sheet)

        try:
            # One sequential pass over the frames the windows need: seeking to each seed
            # costs a decode from the previous keyframe, often hundreds of frames (measured
            # 3x slower).
            buf: dict[int, NDArray[np.uint8]] = {}
            first, last = int(todo[0]["frame"]), int(todo[-1]["frame"]) + L
            nxt = 0
            need = np.zeros(n, bool)  # the windows' frames
            for t in todo:
                need[int(t["frame"]) : int(t["frame"]) + L + 1] = True
            frames: Iterator[tuple[int, Decoded]] = (
                # frames between the windows: not converted, and not even decoded when no
                # other frame refers to them (about half of them in x264 streams)
                reader.iter_decoded(first, last + 1, wanted=lambda i: bool(need[i]))
                if on_demand
                else ((i, RGBFrame(f)) for i, f in reader.iter_frames(first, last + 1))
            )
            for idx, frame in frames:
                if need[idx]:
                    buf[idx] = frame.rgb()
                while nxt < len(todo) and int(todo[nxt]["frame"]) + L == idx:
                    seed = todo[nxt]
                    f0 = int(seed["frame"])
                    window = [buf[i] for i in range(f0, f0 + L + 1)]  # no stacking copy
                    box, patch = _targets(seed, s, cfg)
                    if pool is None:
                        r = track(window, box, cfg, patch)
                        _track_rows(video_id, seed, r, s, cfg, tracks, patches, sheet)
                    else:
                        pending.append((seed, pool.submit(track, window, box, cfg, patch)))
                        finish(2 * workers)  # bounds the windows held in memory
                    nxt += 1
                    keep_from = int(todo[nxt]["frame"]) if nxt < len(todo) else last + 1
                    for i in [i for i in buf if i < keep_from]:
                        del buf[i]
            finish(0)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    return tracks, patches


def _base(video_id: str, seed: Mapping[str, Any], cfg: TrackingConfig) -> dict[str, Any]:
    f0 = int(seed["frame"])
    return {
        "track_id": f"{seed['seed_id']}:t{cfg.track_length}",
        "seed_id": seed["seed_id"],
        "video_id": video_id,
        "frame_a": f0,
        "frame_b": f0 + cfg.track_length,
    }


def _track_rows(
    video_id: str,
    seed: Mapping[str, Any],
    r: TrackResult,
    s: float,
    cfg: TrackingConfig,
    tracks: list[dict[str, Any]],
    patches: list[dict[str, Any]],
    sheet: PairSheet | None,
) -> None:
    """Append one seed's track (decode scale ``s``) to the rows."""
    base = _base(video_id, seed, cfg)
    tid, f0 = base["track_id"], base["frame_a"]
    boxes = r.patch_boxes / s  # A's box and where the track moved it
    tracks.append(
        {
            **base,
            **{f"a_{c}": float(v) for c, v in zip("xywh", boxes[0], strict=True)},
            **{f"b_{c}": float(v) for c, v in zip("xywh", boxes[-1], strict=True)},
            "kept": r.kept,
            "reason": r.reason,
            "confidence": r.confidence,
            "fb_iou": r.fb_iou,
            "min_inside": r.min_inside,
            "min_step_similarity": r.min_step_similarity,
            "end_similarity": r.end_similarity,
            "copy_ncc": r.copy_ncc,
            "kcf_failures": r.kcf_failures,
            "frozen_tail": r.frozen_tail,
            "boxes": boxes.astype(np.float32).ravel().tolist(),
            "patch_a": f"{tid}:A" if r.kept else None,
            "patch_b": f"{tid}:A'" if r.kept else None,
        }
    )
    if sheet is not None:
        sheet.add(video_id, f0, r)
    if not r.kept:
        return
    views = (("A", f0, boxes[0], r.crop_a), ("A'", f0 + cfg.track_length, boxes[-1], r.crop_b))
    for view, frame, box, crop in views:
        patches.append(
            {
                "node_id": f"{tid}:{view}",
                "track_id": tid,
                "seed_id": seed["seed_id"],
                "video_id": video_id,
                "view": view,
                "frame": frame,
                **{c: float(v) for c, v in zip("xywh", box, strict=True)},
                "size": cfg.patch_size,
                "jpeg": imaging.encode_jpeg(crop, cfg.jpeg_quality),
            }
        )


def _short_row(
    base: dict[str, Any], seed: Mapping[str, Any], cfg: TrackingConfig
) -> dict[str, Any]:
    box = [float(seed[c]) for c in "xywh"]
    return {
        **base,
        **{f"a_{c}": v for c, v in zip("xywh", box, strict=True)},
        **{f"b_{c}": v for c, v in zip("xywh", box, strict=True)},
        "kept": False,
        "reason": "too_short",
        "confidence": 0.0,
        "fb_iou": 0.0,
        "min_inside": 0.0,
        "min_step_similarity": 0.0,
        "end_similarity": 0.0,
        "copy_ncc": 0.0,
        "kcf_failures": 0,
        "frozen_tail": 0,
        "boxes": box,
        "patch_a": None,
        "patch_b": None,
    }
