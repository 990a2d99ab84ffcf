"""Box geometry and patch similarity for ``pipeline.tracking``'s validity checks, and the
box mining tracks (:func:`target_box`)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.imaging import crop_resize
from pipeline.kcf import no_ipp

Box = tuple[float, float, float, float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def inside_fraction(box: Sequence[float], width: int, height: int, area: float) -> float:
    """Area of ``box`` inside a width x height frame, over ``area`` (the seed box's)."""
    x, y, w, h = (float(v) for v in box)
    iw = max(0.0, min(x + w, width) - max(x, 0.0))
    ih = max(0.0, min(y + h, height) - max(y, 0.0))
    return iw * ih / area if area > 0 else 0.0


def ncc(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Normalised cross-correlation of two equal-shape arrays (1 for a flat pair)."""
    x = a.astype(np.float64).ravel()
    y = b.astype(np.float64).ravel()
    x -= x.mean()
    y -= y.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 1e-9 else 1.0


def end_match(frame: NDArray[np.uint8], box: Sequence[float], a32: NDArray[np.uint8]) -> float:
    """Best normalised correlation of ``a32`` ((32, 32) grey uint8, A) within ``box`` of
    ``frame`` ((H, W, 3) RGB) grown by 1/8 of its size on each side, resampled to 40 px
    (shifts up to 4 px at 32 px: a few pixels of lag or box offset)."""
    x, y, w, h = (float(v) for v in box)
    m = 0.125
    grown = (x - m * w, y - m * h, w * (1 + 2 * m), h * (1 + 2 * m))
    b40 = cv2.cvtColor(np.asarray(crop_resize(frame, grown, 40)), cv2.COLOR_RGB2GRAY)
    if float(a32.std()) < 1e-6:  # a flat A: nothing to match (1, as ncc of a flat pair)
        return 1.0
    with no_ipp():  # 0.02 ms per match without Intel IPP, 0.7 ms with it
        scores = cv2.matchTemplate(b40, a32, cv2.TM_CCOEFF_NORMED)
    return float(np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0).max())


def colour_hist(bgr: NDArray[np.uint8], bins: int) -> NDArray[np.float64]:
    """Normalised (bins^3,) colour histogram of an image."""
    q = (bgr.reshape(-1, 3).astype(np.intp) * bins) // 256
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = np.bincount(idx, minlength=bins**3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def target_box(
    points: NDArray[np.floating],
    box: Sequence[float],
    pad: float = 0.15,
    quantile: float = 0.1,
    min_side: float = 24.0,
) -> Box:
    """The box of the moving points inside a seed ``box`` (x, y, w, h): what mining tracks.

    points: (N, 2) x, y of the seed frame's moving points, in ``box``'s pixels. The paper's
    227 box at 448 high is mostly background for an object of 2-12% of the frame, and KCF
    follows what fills its box (docs/mining.md: a soapbox track ending beside the cart);
    the moving points' own extent is the object's. Extent: the ``quantile`` and
    1 - ``quantile`` quantiles of the points inside ``box`` (stray points do not stretch it),
    grown by ``pad`` of its size on each side, at least ``min_side`` px a side, clipped to
    ``box``. ``box`` itself when fewer than 5 points lie inside it."""
    x, y, w, h = (float(v) for v in box)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    inside = (p[:, 0] >= x) & (p[:, 0] < x + w) & (p[:, 1] >= y) & (p[:, 1] < y + h)
    q = p[inside]
    if len(q) < 5:
        return (x, y, w, h)
    lo, hi = np.quantile(q, quantile, axis=0), np.quantile(q, 1.0 - quantile, axis=0)
    tw = min(max((hi[0] - lo[0]) * (1 + 2 * pad), min_side), w)
    th = min(max((hi[1] - lo[1]) * (1 + 2 * pad), min_side), h)
    cx = float(np.clip((lo[0] + hi[0]) / 2, x + tw / 2, x + w - tw / 2))
    cy = float(np.clip((lo[1] + hi[1]) / 2, y + th / 2, y + h - th / 2))
    return (cx - tw / 2, cy - th / 2, float(tw), float(th))
