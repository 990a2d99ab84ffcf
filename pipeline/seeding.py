"""Scan a video for motion seeds: the streaming driver around :mod:`pipeline.motion`.

``scan(frames, cfg, workers)`` consumes ``(index, frame)`` frames in order (at the working
scale, ``cfg.frame_height`` high), detects shot cuts on luma thumbnails of every frame, runs the
pre-filter and then the full motion analysis on pairs (t, t+1) for t = 0, frame_step, ...
(only once frame t + track_length has arrived in the same shot: a pair nearer a cut or the
end cannot be a seed, so it costs no analysis), and ``select_seeds`` picks the seeds: kept
frames ranked by the moving points inside their box, at least ``min_seed_gap`` frames
apart, at most ``max_seeds_per_video``, and each with ``track_length`` more frames in its shot.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.decoded import Decoded, RGBFrame
from pipeline.motion import (
    DenseFlow,
    FrameMotion,
    MotionConfig,
    analyse_pair,
    is_cut,
    prefilter_pass,
    prefilter_score,
    thumbnail,
    to_grey,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameRecord:
    """One analysed frame t (pair t, t+1). ``motion`` is None when the pre-filter (or a cut
    between t and t+1) skipped the full analysis."""

    frame: int
    shot: int
    prefilter_score: float  # share of thumbnail pixels moving beyond the global motion
    # "", "prefilter_static", "prefilter_all_moving", "cut", or "near_end": fewer than
    # track_length frames follow t in its shot, so it cannot be a seed and is not analysed.
    skipped: str
    motion: FrameMotion | None

    @property
    def kept(self) -> bool:
        return self.motion is not None and self.motion.kept


@dataclass(frozen=True)
class ScanResult:
    records: list[FrameRecord]
    shot_starts: NDArray[np.int64]  # (S,) first frame of each shot; shot_starts[0] == 0
    n_frames: int  # frames actually seen
    size: tuple[int, int]  # (width, height) of the working-scale frames


@dataclass(frozen=True)
class Seed:
    frame: int
    shot: int
    box: tuple[float, float, float, float]  # working-scale (x, y, w, h)
    record: FrameRecord


def scan(
    frames: Iterable[tuple[int, NDArray[np.uint8] | Decoded]], cfg: MotionConfig, workers: int = 1
) -> ScanResult:
    """Analyse a stream of consecutive (index, frame) frames: (H, W, 3) uint8 RGB arrays or
    :class:`pipeline.decoded.Decoded` frames, whose RGB is then converted only for the
    pairs screened (t = 0, frame_step, ...; the cut test reads every frame's luma thumbnail).

    ``workers`` > 1 runs the full pair analyses in that many threads (OpenCV and numpy release
    the GIL) while the stream goes on; the records are the same as with 1."""
    local = threading.local()  # one DIS instance per thread: OpenCV's are not thread-safe

    def fine() -> DenseFlow:
        flow: DenseFlow | None = getattr(local, "flow", None)
        if flow is None:
            flow = local.flow = DenseFlow(cfg.flow_method, cfg.dis_preset)
        return flow

    def full(g0: NDArray[np.uint8], g1: NDArray[np.uint8]) -> FrameMotion:
        return analyse_pair(g0, g1, fine(), cfg)

    coarse = DenseFlow("dis", "ultrafast")  # thumbnails: 0.4 ms, accuracy is not the point
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    records: list[FrameRecord] = []
    pending: deque[tuple[int, FrameRecord, Future[FrameMotion]]] = deque()

    def resolve(limit: int) -> None:  # at most `limit` analyses in flight
        while len(pending) > limit:
            i, rec, fut = pending.popleft()
            records[i] = dataclasses.replace(rec, motion=fut.result())

    cuts: list[int] = []
    # Pairs that passed the pre-filter wait (as two grey frames) until frame t + track_length
    # arrives in the same shot: a pair closer to a cut or to the end of the video can never
    # be a seed (select_seeds' rule), so it is not analysed at all ("near_end").
    waiting: deque[tuple[int, int, NDArray[np.uint8], NDArray[np.uint8]]] = deque()

    def analyse(i: int, g0: NDArray[np.uint8], g1: NDArray[np.uint8]) -> None:
        if pool is None:
            records[i] = dataclasses.replace(records[i], motion=full(g0, g1))
        else:
            pending.append((i, records[i], pool.submit(full, g0, g1)))
            resolve(2 * workers)

    def drop_waiting() -> None:
        while waiting:
            i = waiting.popleft()[0]
            records[i] = dataclasses.replace(records[i], skipped="near_end")

    prev: Decoded | None = None
    prev_thumb: NDArray[np.uint8] | None = None
    prev_idx = -1
    size = (0, 0)
    seen = 0
    try:
        for idx, item in frames:
            if prev_idx >= 0 and idx != prev_idx + 1:
                raise ValueError(f"frames must be consecutive: {prev_idx} then {idx}")
            frame = RGBFrame(item) if isinstance(item, np.ndarray) else item
            size = frame.size
            thumb = frame.luma_thumbnail(cfg.prefilter_height)
            seen = idx + 1
            if prev is not None and prev_thumb is not None:
                cut = is_cut(prev_thumb, thumb, cfg)
                if cut:
                    cuts.append(idx)
                    drop_waiting()  # their shot ends before their track would
                t = prev_idx
                if t % cfg.frame_step == 0:
                    rec = _screen(t, len(cuts), cut, prev, frame, coarse, cfg)
                    records.append(rec)
                    if not rec.skipped:
                        g0, g1 = to_grey(prev.rgb()), to_grey(frame.rgb())
                        waiting.append((len(records) - 1, t, g0, g1))
                while waiting and waiting[0][1] + cfg.track_length <= idx:
                    i, _, g0, g1 = waiting.popleft()
                    analyse(i, g0, g1)
            prev, prev_thumb, prev_idx = frame, thumb, idx
        drop_waiting()  # the video ends within their track
        resolve(0)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return ScanResult(records, np.array([0, *cuts], np.int64), seen, size)


def _thumb(rgb: NDArray[np.uint8], height: int) -> NDArray[np.uint8]:
    """The pre-filter's thumbnail: a strided view of the green channel (about twice the
    thumbnail's size; green stands in for luminance, its weight is 0.59), area-resized."""
    s = max(1, rgb.shape[0] // (2 * height))
    return thumbnail(np.ascontiguousarray(rgb[::s, ::s, 1]), height)


def _screen(
    t: int,
    shot: int,
    cut: bool,
    f0: Decoded,
    f1: Decoded,
    coarse: DenseFlow,
    cfg: MotionConfig,
) -> FrameRecord:
    """The record of pair (t, t+1) before the full analysis: skipped (a cut, or the
    pre-filter), or to be analysed (``skipped == ""``, ``motion`` still None)."""
    shot_of_t = shot - 1 if cut else shot
    if cut:
        return FrameRecord(t, shot_of_t, float("nan"), "cut", None)
    h = cfg.prefilter_height
    score = prefilter_score(_thumb(f0.rgb(), h), _thumb(f1.rgb(), h), coarse, cfg)
    if cfg.prefilter and not prefilter_pass(score, cfg):
        why = "prefilter_static" if score < cfg.prefilter_min_fraction else "prefilter_all_moving"
        return FrameRecord(t, shot_of_t, score, why, None)
    return FrameRecord(t, shot_of_t, score, "", None)


def shot_end(frame: int, shot_starts: NDArray[np.int64], n_frames: int) -> int:
    """Exclusive end frame of the shot containing ``frame``."""
    later = shot_starts[shot_starts > frame]
    return int(later[0]) if len(later) else n_frames


def select_seeds(result: ScanResult, cfg: MotionConfig) -> list[Seed]:
    """Greedy seed choice: most moving points in the box first (ties: earlier frame)."""
    cands = []
    for r in result.records:
        if not r.kept or r.motion is None:
            continue
        # The track needs frames t .. t + track_length inside the same shot.
        if r.frame + cfg.track_length >= shot_end(r.frame, result.shot_starts, result.n_frames):
            continue
        cands.append(r)
    cands.sort(key=lambda r: (-(r.motion.n_in_box if r.motion else 0), r.frame))
    chosen: list[Seed] = []
    for r in cands:
        if len(chosen) >= cfg.max_seeds_per_video:
            break
        if any(abs(r.frame - s.frame) < cfg.min_seed_gap for s in chosen):
            continue
        assert r.motion is not None
        chosen.append(Seed(r.frame, r.shot, r.motion.box, r))
    chosen.sort(key=lambda s: s.frame)
    return chosen
