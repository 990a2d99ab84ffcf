"""OpenCV KCF, run with Median-Flow evidence beside it (for ``pipeline.tracking``).

:func:`run` follows a box through frames with KCF (Henriques et al. 2015, the tracker
Wang & Gupta 2015 use) and, when asked, measures at each step the Median-Flow of the box
(``pipeline.median_flow``): how far KCF's box slid against the points inside it
(``drift``) and, with ``scale_mode`` "flow", the box's size from the points' scale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.median_flow import FlowConfig, flow_step

Box = tuple[float, float, float, float]
SCALE_MODES = ("none", "flow")
MAX_SCALE = 2.0  # the flow scale of a whole run is clamped to [1/2, 2] of the seed box


@contextlib.contextmanager
def no_ipp() -> Iterator[None]:
    """Run OpenCV with Intel IPP off, restoring the previous setting.

    Measured with opencv-contrib-python-headless 4.12: ``cv2.dft`` of a 64x64 float64 array
    takes ~1 ms through IPP and ~0.04 ms without, and KCF runs 6-8 DFTs per update, so a
    32-px KCF update drops from ~8 ms to ~1.5 ms. (Prime sizes go the other way: 227 is
    slower without IPP, one more reason to track at ``track_box``.) The setting is
    process-wide, hence the restore."""
    previous = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(False)
    try:
        yield
    finally:
        cv2.ipp.setUseIPP(previous)


def _kcf(detect_thresh: float) -> cv2.Tracker:
    # Default features (grey + colour names): the only combination OpenCV 4.12's Python
    # binding runs without an assertion; only the peak threshold is changed.
    params = cv2.TrackerKCF_Params()  # type: ignore[attr-defined]
    params.detect_thresh = detect_thresh
    return cv2.TrackerKCF_create(params)  # type: ignore[attr-defined]


def _has_area(b: Sequence[float]) -> bool:
    return bool(np.isfinite(np.asarray(b, np.float64)).all() and b[2] >= 1 and b[3] >= 1)


class Kcf:
    """One OpenCV KCF run: ``update`` gives (box, KCF's success flag). A box that collapses
    (under 1 px wide or high, as OpenCV's KCF returns when its window slides off a small
    target) ends the run: KCF cannot go on from it, so the last box is held, every later
    update counts as failed and ``collapsed`` is set."""

    def __init__(self, frame: NDArray[np.uint8], box: Box, detect_thresh: float) -> None:
        self.box = box
        self.collapsed = False
        self._tr = _kcf(detect_thresh)
        with no_ipp():
            x, y, w, h = (int(round(v)) for v in box)
            self._tr.init(frame, (x, y, max(w, 1), max(h, 1)))

    def update(self, frame: NDArray[np.uint8]) -> tuple[Box, bool]:
        if self.collapsed:
            return self.box, False
        with no_ipp():
            ok, b = self._tr.update(frame)
        if not ok:  # OpenCV does not move its box on failure; keep the last one
            return self.box, False
        if not _has_area(b):
            self.collapsed = True
            return self.box, False
        self.box = tuple(float(v) for v in b)  # type: ignore[assignment]
        return self.box, True


@dataclass(frozen=True)
class KcfRun:
    boxes: list[Box]  # frames[0]'s box first; (x, y, w, h) in the frames' pixels
    flags: list[bool]  # KCF's success flag per update
    collapsed: bool
    # max over the run of |sum of (points' median displacement - KCF's)| / the seed box's
    # longer side; NaN without flow
    drift: float
    scale: float  # cumulative Median-Flow scale (1 without flow or with too few points)


def _centre(b: Sequence[float]) -> tuple[float, float]:
    return float(b[0]) + float(b[2]) / 2, float(b[1]) + float(b[3]) / 2


def run(
    frames: Sequence[NDArray[np.uint8]],
    box: Box,
    detect_thresh: float,
    flow: FlowConfig | None = None,
    scale_mode: str = "none",
) -> KcfRun:
    """Track ``box`` through ``frames`` ((H, W, 3) BGR uint8, frames[0] holding it).

    ``flow``: also measure Median-Flow at each step (``drift``, ``scale``); ``scale_mode``
    "flow" (needs ``flow``) sizes the box by the points' cumulative scale about KCF's
    centre, KCF itself keeping its fixed-size template ("none": KCF's box as it is)."""
    if scale_mode not in SCALE_MODES:
        raise KeyError(f"scale_mode {scale_mode!r}: expected one of {SCALE_MODES}")
    if scale_mode == "flow" and flow is None:
        raise ValueError("scale_mode 'flow' needs a FlowConfig")
    kcf = Kcf(frames[0], box, detect_thresh)
    out: list[Box] = [box]
    flags: list[bool] = []
    side = max(box[2], box[3])
    cum = np.zeros(2)
    drift = 0.0 if flow is not None else float("nan")
    scale = 1.0
    prev_k = box
    for t in range(1, len(frames)):
        step = flow_step(frames[t - 1], frames[t], out[-1], flow) if flow is not None else None
        b, ok = kcf.update(frames[t])
        flags.append(ok)
        (kx0, ky0), (kx1, ky1) = _centre(prev_k), _centre(b)
        prev_k = b
        if step is not None and np.isfinite(step.dx):
            cum += (step.dx - (kx1 - kx0), step.dy - (ky1 - ky0))
            drift = max(drift, float(np.hypot(*cum)) / side)
            scale = float(np.clip(scale * step.scale, 1 / MAX_SCALE, MAX_SCALE))
        if scale_mode == "flow":
            w, h = box[2] * scale, box[3] * scale
            b = (kx1 - w / 2, ky1 - h / 2, w, h)
        out.append(b)
    return KcfRun(out, flags, kcf.collapsed, drift, scale)
