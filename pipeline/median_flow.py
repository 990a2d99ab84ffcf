"""Median-Flow evidence alongside KCF (Kalal, Mikolajczyk & Matas 2010), for ``tracking``.

KCF gives a translation of a fixed-size box and no sign of drift that its
forward-backward box IoU or colours can see (docs/mining.md: boxes that lag, slide or stay
small on a growing object agree forward and backward). Points tracked with pyramidal
Lucas-Kanade inside the box give what KCF lacks:

* **scale**: the median ratio of the points' pairwise distances between two frames
  (Median-Flow's scale), applied to KCF's box about its centre;
* **drift**: the points' median displacement against KCF's; their difference, summed over
  the window and divided by the box side, is how far KCF's box slid off what is inside it;
* **forward-backward point error**: each point tracked to the next frame and back; its
  distance to where it started (Kalal's FB error). Points on the target come back; points
  on an occluder, on a look-alike swap or on a region that changed do not.

Work is on a grey region of interest around the box (``roi_margin`` box sides each way),
not the whole frame: a handful of pyramid levels over ~5x5 box sides costs well under a
millisecond per step at the tracking scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class FlowConfig:
    grid: int = 10  # Kalal 2010: a 10x10 grid of points in the box
    win: int = 11  # LK window (px at tracking scale: a 64 px box holds ~6 windows a side)
    levels: int = 3  # pyramid levels above the base (a step of up to ~8 windows)
    roi_margin: float = 1.5  # ROI = box grown by this many box sides on each side
    max_step_scale: float = 1.1  # clamp one frame's scale change to [1/x, x]


@dataclass(frozen=True)
class FlowStep:
    """Median-Flow between two frames for one box (tracking-scale pixels)."""

    dx: float  # median displacement of the reliable points (NaN: too few points)
    dy: float
    scale: float  # median pairwise-distance ratio (1 with too few points)
    fb_error: float  # median forward-backward error of all tracked points, px (inf: none)
    n_points: int  # points tracked both ways


def _roi(box: Sequence[float], shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    x, y, w, h = (float(v) for v in box)
    m = margin * max(w, h)
    x0, y0 = max(int(x - m), 0), max(int(y - m), 0)
    x1, y1 = min(int(np.ceil(x + w + m)), shape[1]), min(int(np.ceil(y + h + m)), shape[0])
    return x0, y0, x1, y1


def flow_step(
    prev: NDArray[np.uint8], nxt: NDArray[np.uint8], box: Sequence[float], cfg: FlowConfig
) -> FlowStep:
    """Median-Flow of ``box`` from frame ``prev`` to frame ``nxt`` ((H, W) grey or (H, W, 3)
    BGR uint8, same shape; only the region of interest is converted to grey). Points: a
    ``grid`` x ``grid`` lattice inside the box; the reliable half are those with a
    forward-backward error at most the median (Kalal 2010)."""
    x, y, w, h = (float(v) for v in box)
    x0, y0, x1, y1 = _roi(box, prev.shape, cfg.roi_margin)
    none = FlowStep(float("nan"), float("nan"), 1.0, float("inf"), 0)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return none
    a, b = prev[y0:y1, x0:x1], nxt[y0:y1, x0:x1]
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)
        b = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY)
    g = (np.arange(cfg.grid) + 0.5) / cfg.grid
    px, py = np.meshgrid(x - x0 + g * w, y - y0 + g * h)
    p0 = np.stack([px.ravel(), py.ravel()], 1).astype(np.float32).reshape(-1, 1, 2)
    lk = {"winSize": (cfg.win, cfg.win), "maxLevel": cfg.levels}
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, **lk)  # type: ignore[call-overload]
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, None, **lk)  # type: ignore[call-overload]
    ok = (st1.ravel() == 1) & (st2.ravel() == 1)
    if ok.sum() < 4:
        return none
    q0, q1 = p0.reshape(-1, 2)[ok], p1.reshape(-1, 2)[ok]
    fb = np.linalg.norm(q0 - p0b.reshape(-1, 2)[ok], axis=1)
    med = float(np.median(fb))
    good = fb <= med
    q0, q1 = q0[good], q1[good]
    d = q1 - q0
    scale = 1.0
    if len(q0) >= 4:
        i, j = np.triu_indices(len(q0), 1)
        d0 = np.linalg.norm(q0[i] - q0[j], axis=1)
        d1 = np.linalg.norm(q1[i] - q1[j], axis=1)
        use = d0 > 1e-3
        if use.any():
            scale = float(np.median(d1[use] / d0[use]))
    s_max = cfg.max_step_scale
    scale = float(np.clip(scale, 1.0 / s_max, s_max))
    return FlowStep(float(np.median(d[:, 0])), float(np.median(d[:, 1])), scale, med, int(ok.sum()))
