"""Shot boundaries from colour change, and which frames of each shot uNLC sees.

Detector: PySceneDetect's `ContentDetector` (scenedetect 0.6.7.1), fed frames we already
decoded through its `process_frame` API. Why not kernel temporal segmentation (KTS), which
the authors' `vid2shots.py` used on RGB+LAB histograms:

- KTS is global: it needs the n x n Gram matrix of the whole video's histograms (a one-hour
  30 fps video is 108k frames, a 93 GB matrix) and a `maxShots` cap (5 in `run_full.py`)
  that forces long videos into a few shots. The content detector is streaming: O(1) memory,
  one pass, any length, which our memory bound (never hold the whole video) requires.
- it is a maintained, widely used detector; its score is the mean change of hue,
  saturation and value between consecutive frames (a colour-change measure, like the
  histogram distance), threshold 27 by default. Frames are shrunk to `detect_width` px
  first, as scenedetect itself does, which costs little and changes almost nothing.

Cuts closer than `min_shot` frames to the previous one are suppressed (the detector's
`min_scene_len`, SUPPRESS mode), so a shot is never split into slivers.

`plan_shots` then follows `run_full.py`: shots under `min_shot` (10) frames are skipped;
a longer shot of L > `max_shot` (110) frames is read every (L // 110 + 1)-th frame, which
leaves between 55 and 110 frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scenedetect.detectors import ContentDetector
from scenedetect.scene_detector import FlashFilter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotConfig:
    shot_threshold: float = 27.0  # ContentDetector default HSV change threshold
    detect_width: int = 256  # scenedetect's own downscale target for detection
    min_shot: int = 10  # run_full.py minShot: shorter shots are skipped
    max_shot: int = 110  # run_full.py maxShot: longer shots are subsampled
    detect_shots: bool = True  # False: the whole video is one shot

    def validate(self) -> None:
        if self.min_shot < 2 or self.max_shot < self.min_shot:
            raise ValueError(
                f"need 2 <= min_shot <= max_shot, got {self.min_shot}, {self.max_shot}"
            )
        if self.detect_width < 16 or self.shot_threshold <= 0:
            raise ValueError("detect_width >= 16 and shot_threshold > 0 needed")


@dataclass(frozen=True)
class Shot:
    """Frames [start, stop) of a video; `indices` are the frames uNLC reads (empty when
    skipped, with `reason`)."""

    index: int
    start: int
    stop: int
    indices: NDArray[np.int64]
    reason: str = ""

    @property
    def length(self) -> int:
        return self.stop - self.start

    @property
    def skipped(self) -> bool:
        return len(self.indices) == 0


class ShotDetector:
    """Streaming cut detector: `push(frame)` in order, then `cuts` (frame numbers that
    start a new shot). Holds one small frame at a time."""

    def __init__(self, cfg: ShotConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self._det = ContentDetector(
            threshold=cfg.shot_threshold,
            min_scene_len=cfg.min_shot,
            filter_mode=FlashFilter.Mode.SUPPRESS,
        )
        self._n = 0
        self.cuts: list[int] = []

    @property
    def n_frames(self) -> int:
        return self._n

    def push(self, frame: NDArray[np.uint8]) -> None:
        """Feed the next frame, (H, W, 3) uint8 RGB, any size."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if w > self.cfg.detect_width:
            nh = max(1, int(round(h * self.cfg.detect_width / w)))
            frame = cv2.resize(frame, (self.cfg.detect_width, nh), interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)  # the detector converts BGR -> HSV
        for cut in self._det.process_frame(self._n, bgr):
            if 0 < cut < self._n + 1:
                self.cuts.append(int(cut))
        self._n += 1


def detect_cuts(frames: Iterable[NDArray[np.uint8]], cfg: ShotConfig) -> tuple[list[int], int]:
    """Cuts of a frame stream (consumed once, never stored) and the number of frames."""
    det = ShotDetector(cfg)
    for f in frames:
        det.push(f)
    return det.cuts, det.n_frames


def subsample(start: int, stop: int, max_shot: int) -> NDArray[np.int64]:
    """Frames of [start, stop) read by uNLC: every (L // max_shot + 1)-th when the shot is
    longer than max_shot (run_full.py's frameGap), else all."""
    length = stop - start
    step = length // max_shot + 1 if length > max_shot else 1
    return np.arange(start, stop, step, dtype=np.int64)


def plan_shots(cuts: Iterable[int], n_frames: int, cfg: ShotConfig) -> list[Shot]:
    """Shots of a video of n_frames given its cuts (frames starting a new shot)."""
    cfg.validate()
    bounds = sorted({c for c in cuts if 0 < c < n_frames}) if cfg.detect_shots else []
    starts = [0, *bounds]
    stops = [*bounds, n_frames]
    shots = []
    for k, (a, b) in enumerate(zip(starts, stops, strict=True)):
        if b - a < cfg.min_shot:
            shots.append(
                Shot(k, a, b, np.zeros(0, np.int64), f"too_short: {b - a} < {cfg.min_shot} frames")
            )
        else:
            shots.append(Shot(k, a, b, subsample(a, b, cfg.max_shot)))
    return shots
