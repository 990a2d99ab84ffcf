"""DAVIS region similarity J and boundary accuracy F (Perazzi et al. 2016, davis2017 code).

- J: IoU of a predicted and a true binary mask; both empty counts 1.
- F: boundary F-measure. Boundaries are the DAVIS ``seg2bmap`` one-pixel maps (a pixel is
  on the boundary when it differs from its right, lower or lower-right neighbour); a
  predicted boundary pixel is correct if a true one lies within ``ceil(tol_frac x diagonal)``
  px (a disk, as ``skimage.morphology.disk``), and the reverse for recall. Empty cases as the
  benchmark: no predicted and no true boundary -> P = R = 1; none predicted -> P = 1, R = 0;
  none true -> P = 0, R = 1; F = 0 when P + R = 0.
- Sequence scores (:func:`score_sequence`): per object, the mean over frames *excluding the
  first and the last* (the benchmark drops the given first frame and the last one), and the
  recall, the share of those frames scoring above 0.5. Objects are label values 1..K of the
  first ground-truth frame; the sequence score is the mean over its objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage.morphology import disk

Mask = NDArray[np.bool_]


def _check(pred: NDArray[np.generic], gt: NDArray[np.generic]) -> None:
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and truth {gt.shape} must be equal (H, W)")


def region_j(pred: NDArray[np.generic], gt: NDArray[np.generic]) -> float:
    """IoU of two (H, W) masks (non-zero = object); 1 when both are empty."""
    _check(pred, gt)
    p, g = pred.astype(bool), gt.astype(bool)
    union = int(np.count_nonzero(p | g))
    return 1.0 if union == 0 else int(np.count_nonzero(p & g)) / union


def seg2bmap(mask: NDArray[np.generic]) -> Mask:
    """(H, W) one-pixel-wide boundary map of a binary mask (DAVIS ``seg2bmap``)."""
    seg = mask.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def tolerance_px(shape: tuple[int, ...], tol_frac: float = 0.008) -> int:
    """The DAVIS match radius: ceil(tol_frac x image diagonal) px (8 px at 480 x 854)."""
    return int(math.ceil(tol_frac * math.hypot(shape[0], shape[1])))


def _dilate(b: Mask, radius: int) -> Mask:
    k = disk(radius).astype(np.uint8)  # type: ignore[no-untyped-call]
    return np.asarray(cv2.dilate(b.astype(np.uint8), k) > 0)


def boundary_pr(pred_b: Mask, gt_b: Mask, radius: int) -> tuple[float, float]:
    """(precision, recall) of boundary maps matched within ``radius`` px (DAVIS rules)."""
    _check(pred_b, gt_b)
    n_p, n_g = int(np.count_nonzero(pred_b)), int(np.count_nonzero(gt_b))
    if n_p == 0 and n_g == 0:
        return 1.0, 1.0
    if n_p == 0:
        return 1.0, 0.0
    if n_g == 0:
        return 0.0, 1.0
    prec = int(np.count_nonzero(pred_b & _dilate(gt_b, radius))) / n_p
    rec = int(np.count_nonzero(gt_b & _dilate(pred_b, radius))) / n_g
    return prec, rec


def f_measure(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def boundary_f(
    pred: NDArray[np.generic], gt: NDArray[np.generic], tol_frac: float = 0.008
) -> float:
    """Boundary F-measure of two (H, W) masks at a tolerance of tol_frac x diagonal."""
    _check(pred, gt)
    p, r = boundary_pr(seg2bmap(pred), seg2bmap(gt), tolerance_px(gt.shape, tol_frac))
    return f_measure(p, r)


@dataclass(frozen=True)
class SequenceScore:
    """J and F means and recalls (mean over objects), and per object (K,) arrays."""

    j_mean: float
    j_recall: float
    f_mean: float
    f_recall: float
    n_frames_scored: int
    j_per_object: NDArray[np.float64]
    f_per_object: NDArray[np.float64]

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


def score_sequence(
    pred: NDArray[np.integer], gt: NDArray[np.integer], tol_frac: float = 0.008,
    recall_threshold: float = 0.5,
) -> SequenceScore:  # fmt: skip
    """Score (T, H, W) label maps against (T, H, W) ground truth, frames 1..T-2 only."""
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"prediction {pred.shape} and truth {gt.shape} must be equal (T, H, W)")
    if len(gt) < 3:
        raise ValueError(f"a sequence needs >= 3 frames to score (first and last excluded), "
                         f"got {len(gt)}")  # fmt: skip
    objects = [int(v) for v in np.unique(gt[0]) if v != 0]
    if not objects:
        raise ValueError("the first ground-truth frame has no object (all zeros)")
    frames = range(1, len(gt) - 1)
    j = np.array([[region_j(pred[t] == o, gt[t] == o) for t in frames] for o in objects])
    f = np.array(
        [[boundary_f(pred[t] == o, gt[t] == o, tol_frac) for t in frames] for o in objects]
    )
    return SequenceScore(
        j_mean=float(j.mean(axis=1).mean()),
        j_recall=float((j > recall_threshold).mean(axis=1).mean()),
        f_mean=float(f.mean(axis=1).mean()),
        f_recall=float((f > recall_threshold).mean(axis=1).mean()),
        n_frames_scored=len(frames),
        j_per_object=j.mean(axis=1),
        f_per_object=f.mean(axis=1),
    )


def edge_boundary_pr(
    strength: NDArray[np.floating], gt: NDArray[np.generic], thresholds: NDArray[np.floating],
    tol_frac: float = 0.008,
) -> NDArray[np.float64]:  # fmt: skip
    """(len(thresholds), 2) boundary precision and recall of an edge map thresholded at each
    value, against the object boundary of a (H, W) mask (same rules and tolerance as F)."""
    if strength.shape != gt.shape:
        raise ValueError(f"edge map {strength.shape} and mask {gt.shape} differ in shape")
    gt_b = seg2bmap(gt)
    r = tolerance_px(gt.shape, tol_frac)
    return np.array([boundary_pr(strength > t, gt_b, r) for t in thresholds], np.float64)
