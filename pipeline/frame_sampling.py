"""Frames to learn from: every n-th frame of a video's moving shots, capped per video.

The single-frame methods (counting, Jigsaw++, knowledge transfer; DESIGN 4.7) learn from
still frames, so a frames table should hold varied, object-bearing views rather than
title cards, still images or frozen shots. ``sample_frames`` streams a video once, in
order, and reuses DetectMotion's own tests (:mod:`pipeline.motion`):

1. shots: thumbnails of consecutive frames whose correlation collapses are a cut
   (:func:`pipeline.motion.is_cut`); shots under ``min_shot`` frames are skipped;
2. motion: every ``score_step``-th pair of a shot gets the motion pre-filter's score, the
   share of thumbnail pixels moving beyond the global (camera) motion
   (:func:`pipeline.motion.prefilter_score`) between frames t and t + ``score_gap``. A shot whose median score is under
   ``static_fraction`` (the pre-filter's own "static" bound) is *static*: nothing in it
   moves but, at most, the camera. Its frames are not sampled;
3. sampling: frames ``shot start + k * step`` of the other shots, resized so the shorter
   side is ``frame_size``, at most ``max_per_video`` per video, spread evenly over the
   video when there are more.

Memory is bounded by about ``2 * max_per_video`` frames at ``frame_size``: whenever more
candidates are held, the stride doubles and every other candidate is dropped.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.motion import DenseFlow, MotionConfig, is_cut, prefilter_score, thumbnail, to_grey
from pipeline.shots import ShotConfig

__all__ = ["FrameSampleConfig", "SampledFrame", "ShotSample", "sample_frames", "resize_short"]

_MOTION = MotionConfig()


@dataclass(frozen=True)
class FrameSampleConfig:
    step: int = 30  # one frame a second at 30 fps: neighbours within a shot differ
    max_per_video: int = 50  # caps one long video's share of the frames table
    frame_size: int = 256  # shorter side stored: Jigsaw++ crops 255, counting 2 x 114
    min_shot: int = ShotConfig.min_shot  # uNLC's minShot: shorter shots are skipped
    score_step: int = _MOTION.frame_step  # DetectMotion's analysis stride for the score
    # frames between the two thumbnails scored: uNLC's flow to the +-3 neighbours. Measured on
    # the dev set: a slow dancer (TLP-Mohiniyattam) scores a median 0.0 on consecutive frames
    # (called static) and 0.07 over 3 frames; DAVIS and the other tracking clips pass either way
    score_gap: int = 3
    # DetectMotion's pre-filter bound: under it nothing moves besides the camera
    static_fraction: float = _MOTION.prefilter_min_fraction
    prefilter_height: int = _MOTION.prefilter_height  # thumbnail height of both tests
    prefilter_motion_px: float = _MOTION.prefilter_motion_px  # residual px that "moves"
    cut_ncc: float = _MOTION.cut_ncc  # thumbnail correlation under which a cut is called

    def validate(self) -> None:
        if self.step < 1 or self.score_step < 1 or self.score_gap < 1:
            raise ValueError(
                f"step and score_step must be >= 1, got {self.step}, {self.score_step}"
            )
        if self.max_per_video < 1:
            raise ValueError(f"max_per_video must be >= 1, got {self.max_per_video}")
        if self.frame_size < 16:
            raise ValueError(f"frame_size must be >= 16 px, got {self.frame_size}")
        if self.min_shot < 2:
            raise ValueError(f"min_shot must be >= 2 frames, got {self.min_shot}")
        if not 0 <= self.static_fraction < 1:
            raise ValueError(f"static_fraction must be in [0, 1), got {self.static_fraction}")

    def motion(self) -> MotionConfig:
        """The MotionConfig whose pre-filter and cut test this sampling reuses."""
        return dataclasses.replace(
            _MOTION,
            prefilter_height=self.prefilter_height,
            prefilter_motion_px=self.prefilter_motion_px,
            prefilter_min_fraction=self.static_fraction,
            cut_ncc=self.cut_ncc,
        )


@dataclass(frozen=True)
class SampledFrame:
    index: int  # frame index in the video (0-based, decoded order)
    shot: int  # shot index within the video, from 0
    image: NDArray[np.uint8] = field(repr=False)  # (h, w, 3) RGB, shorter side frame_size


@dataclass(frozen=True)
class ShotSample:
    index: int
    start: int
    stop: int  # one past the last frame
    status: str  # "sampled" | "static" | "too_short"
    motion_score: float  # median pre-filter score of its scored pairs (NaN: none)
    n_sampled: int  # frames of this shot in the final sample


@dataclass
class _Candidate:
    index: int
    shot: int
    offset: int  # frames since the shot's start
    image: NDArray[np.uint8]


def resize_short(frame: NDArray[np.uint8], size: int) -> NDArray[np.uint8]:
    """(H, W, 3) -> shorter side ``size``, aspect kept (area when shrinking, else cubic)."""
    h, w = frame.shape[:2]
    s = size / min(h, w)
    if s == 1:
        return frame
    hw = (max(size, int(round(w * s))), max(size, int(round(h * s))))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(frame, hw, interpolation=interp))


def _spread(n: int, k: int) -> NDArray[np.intp]:
    """k indices out of range(n), evenly spread, first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.intp))


class _Sampler:
    """The streaming state of :func:`sample_frames` (one video)."""

    def __init__(self, cfg: FrameSampleConfig) -> None:
        self.cfg, self.mcfg = cfg, cfg.motion()
        self.flow = DenseFlow("dis", "ultrafast")  # DetectMotion's pre-filter flow
        self.stride = cfg.step  # doubles when too many candidates are held
        self.kept: list[_Candidate] = []
        self.pending: list[_Candidate] = []
        self.scores: list[float] = []
        self.shots: list[ShotSample] = []
        self.shot, self.start = 0, 0

    def thin(self) -> None:
        while len(self.kept) + len(self.pending) > 2 * self.cfg.max_per_video:
            self.stride *= 2
            self.kept = [c for c in self.kept if c.offset % self.stride == 0]
            self.pending = [c for c in self.pending if c.offset % self.stride == 0]

    def end_shot(self, stop: int) -> None:
        length = stop - self.start
        score = float(np.median(self.scores)) if self.scores else float("nan")
        if length < self.cfg.min_shot:
            status = "too_short"
        elif not score >= self.cfg.static_fraction:  # NaN (no scored pair) is static too
            status = "static"
        else:
            status = "sampled"
            self.kept.extend(self.pending)
        self.shots.append(ShotSample(self.shot, self.start, stop, status, score, 0))
        self.pending, self.scores = [], []
        self.shot, self.start = self.shot + 1, stop


def sample_frames(
    frames: Iterable[tuple[int, NDArray[np.uint8]]], cfg: FrameSampleConfig
) -> tuple[list[SampledFrame], list[ShotSample]]:
    """Sample a stream of consecutive (index, (H, W, 3) uint8 RGB) frames.

    Returns the sampled frames in video order, and one :class:`ShotSample` per shot
    (``n_sampled`` counts that shot's frames in the final sample).
    """
    cfg.validate()
    st = _Sampler(cfg)
    recent: deque[NDArray[np.uint8]] = deque(
        maxlen=cfg.score_gap + 1
    )  # its last gap + 1 thumbnails
    prev_idx = -1
    for idx, rgb in frames:
        if idx != prev_idx + 1:
            raise ValueError(f"frames must be consecutive from 0: {prev_idx} then {idx}")
        thumb = thumbnail(to_grey(rgb), cfg.prefilter_height)
        if recent and is_cut(recent[-1], thumb, st.mcfg):
            st.end_shot(idx)
            recent.clear()
        recent.append(thumb)
        t = idx - cfg.score_gap  # scored pair (t, idx), both in this shot
        if t >= st.start and (t - st.start) % cfg.score_step == 0:
            st.scores.append(prefilter_score(recent[0], thumb, st.flow, st.mcfg))
        offset = idx - st.start
        if offset % st.stride == 0:
            st.pending.append(_Candidate(idx, st.shot, offset, resize_short(rgb, cfg.frame_size)))
            st.thin()
        prev_idx = idx
    if prev_idx >= 0:
        st.end_shot(prev_idx + 1)
    chosen = [st.kept[i] for i in _spread(len(st.kept), cfg.max_per_video)]
    per_shot = np.bincount([c.shot for c in chosen], minlength=len(st.shots))
    shots = [dataclasses.replace(s, n_sampled=int(per_shot[s.index])) for s in st.shots]
    return [SampledFrame(c.index, c.shot, c.image) for c in chosen], shots
