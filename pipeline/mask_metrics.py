"""IoU, precision and recall of binary masks against ground truth, per frame and averaged.

Conventions (DAVIS-like): a frame where prediction and truth are both empty has IoU,
precision and recall 1; an empty prediction on a non-empty truth has precision 0 (nothing
right was found) and recall 0; a non-empty prediction on an empty truth has precision 0 and
recall 1. Sequence scores are means over frames, the overall score the mean over sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class MaskScore:
    iou: float
    precision: float
    recall: float


def score(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> MaskScore:
    """Scores of one binary prediction (H, W) against the truth (H, W)."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    tp = int(np.count_nonzero(pred & truth))
    n_pred = int(np.count_nonzero(pred))
    n_true = int(np.count_nonzero(truth))
    union = n_pred + n_true - tp
    iou = tp / union if union else 1.0
    if n_pred:
        precision = tp / n_pred
    else:
        precision = 1.0 if n_true == 0 else 0.0
    recall = tp / n_true if n_true else 1.0
    return MaskScore(iou, precision, recall)


def mean_score(scores: list[MaskScore]) -> MaskScore:
    """Mean of per-frame (or per-sequence) scores; NaN when there are none."""
    if not scores:
        return MaskScore(float("nan"), float("nan"), float("nan"))
    a = np.array([[s.iou, s.precision, s.recall] for s in scores], np.float64)
    m = a.mean(axis=0)
    return MaskScore(float(m[0]), float(m[1]), float(m[2]))


@dataclass(frozen=True)
class TrimapCounts:
    """Pixel counts of one soft mask's trimap against the truth, summable over frames.

    positive: pixels scored above the positive threshold; positive_object: those on the
    object. negative: pixels scored below the negative threshold; negative_background:
    those off the object.
    """

    positive: int = 0
    positive_object: int = 0
    negative: int = 0
    negative_background: int = 0

    def __add__(self, other: TrimapCounts) -> TrimapCounts:
        return TrimapCounts(
            self.positive + other.positive,
            self.positive_object + other.positive_object,
            self.negative + other.negative,
            self.negative_background + other.negative_background,
        )

    @property
    def positive_precision(self) -> float:
        """Share of trimap-positive pixels that are object (NaN when there are none)."""
        return self.positive_object / self.positive if self.positive else float("nan")

    @property
    def negative_precision(self) -> float:
        """Share of trimap-negative pixels that are background (NaN when there are none)."""
        return self.negative_background / self.negative if self.negative else float("nan")


def trimap_counts(
    soft: NDArray[np.floating], truth: NDArray[np.bool_], negative: float, positive: float
) -> TrimapCounts:
    """Counts of soft (H, W) in [0, 1] > `positive` and < `negative` against truth (H, W)."""
    if soft.shape != truth.shape:
        raise ValueError(f"soft mask {soft.shape} and truth {truth.shape} differ in shape")
    pos, neg = soft > positive, soft < negative
    return TrimapCounts(
        int(np.count_nonzero(pos)),
        int(np.count_nonzero(pos & truth)),
        int(np.count_nonzero(neg)),
        int(np.count_nonzero(neg & ~truth)),
    )
