"""Pixel pairs sampled by distance in a region tree (Zhang & Maire 2020, Sec. 3.2).

For an anchor pixel in leaf a, with d the tree's leaf distance (merge height, an ultrametric)
and s the scale (0.8 in the paper):

- a **positive** comes from leaf b with probability
  ``exp(-d(a, b) / s) / (sum_{m != a} exp(-d(a, m) / s) + 1)``; the anchor's own leaf has
  d(a, a) = 0 and so weighs exp(0) = 1 (the "+ 1");
- a **negative** comes from leaf b != a with probability proportional to ``exp(+d(a, b) / s)``;

then a pixel uniformly inside that leaf. Per image, ``n_regions`` (7) anchor leaves, one
anchor pixel in each, ``n_positives`` (10) positives and ``n_negatives`` (5) negatives per
anchor. Anchor leaves are drawn without replacement (uniformly over leaves, so small regions
count as much as large ones) while there are enough leaves, with replacement otherwise.
A one-leaf tree has no negative: those slots are flagged invalid (``neg_valid``); the
training side draws its negatives from other images then (the paper's 5 cross-image ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.regions import RegionTree, leaf_distance

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class PairConfig:
    scale: float = 0.8  # Zhang & Maire: s = 0.8
    n_regions: int = 7  # anchor regions per image (paper)
    n_positives: int = 10  # positives per anchor (paper)
    n_negatives: int = 5  # negatives per anchor within the image (paper)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        if min(self.n_regions, self.n_positives) < 1 or self.n_negatives < 0:
            raise ValueError("need n_regions >= 1, n_positives >= 1, n_negatives >= 0")


@dataclass(frozen=True)
class PixelPairs:
    """anchors (N, 2) int64 (y, x); positives (N, P, 2); negatives (N, Q, 2); neg_valid (N, Q)
    False where the tree had no other leaf to draw a negative from (coordinates then repeat
    the anchor's and must be ignored); anchor_leaf (N,) the anchors' leaves."""

    anchors: NDArray[np.int64]
    positives: NDArray[np.int64]
    negatives: NDArray[np.int64]
    neg_valid: NDArray[np.bool_]
    anchor_leaf: NDArray[np.int64]


def positive_probabilities(dist: F64, a: int, scale: float) -> F64:
    """(L,) probability that a positive of an anchor in leaf ``a`` comes from each leaf,
    given the (L, L) leaf distance."""
    w = np.exp(-np.asarray(dist[a], np.float64) / scale)
    w[a] = 1.0  # d(a, a) = 0
    return np.asarray(w / w.sum())


def negative_probabilities(dist: F64, a: int, scale: float) -> F64:
    """(L,) probability that a negative of an anchor in leaf ``a`` comes from each leaf
    (0 for ``a``); all zeros when the tree has a single leaf."""
    d = np.asarray(dist[a], np.float64)
    w = np.exp((d - d.max()) / scale)  # shifted for stability; the ratios are unchanged
    w[a] = 0.0
    total = w.sum()
    return np.asarray(w / total) if total > 0 else np.zeros_like(w)


def _pixels_in(
    leaf_ids: NDArray[np.int64], order: NDArray[np.int64], starts: NDArray[np.int64],
    counts: NDArray[np.int64], width: int, rng: np.random.Generator,
) -> NDArray[np.int64]:  # fmt: skip
    """A uniform pixel (y, x) inside each given leaf (any shape of ids)."""
    pick = starts[leaf_ids] + (rng.random(leaf_ids.shape) * counts[leaf_ids]).astype(np.int64)
    flat = order[pick]
    return np.stack([flat // width, flat % width], axis=-1)


def sample_pixel_pairs(tree: RegionTree, cfg: PairConfig, rng: np.random.Generator) -> PixelPairs:
    """Anchors, positives and negatives of one image's tree (coordinates at leaves' size)."""
    lab = tree.leaves
    n_leaves = tree.n_leaves
    if lab.ndim != 2 or lab.size == 0:
        raise ValueError(f"tree leaves must be a non-empty (H, W) map, got {lab.shape}")
    counts = np.bincount(lab.ravel(), minlength=n_leaves).astype(np.int64)
    if len(counts) != n_leaves or (counts == 0).any():
        raise ValueError(f"tree leaves must use every label 0..{n_leaves - 1} exactly")
    order = np.argsort(lab.ravel(), kind="stable").astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    dist = leaf_distance(tree).astype(np.float64)
    replace = n_leaves < cfg.n_regions
    leaves = rng.choice(n_leaves, size=cfg.n_regions, replace=replace).astype(np.int64)
    pos_leaf = np.empty((cfg.n_regions, cfg.n_positives), np.int64)
    neg_leaf = np.empty((cfg.n_regions, cfg.n_negatives), np.int64)
    neg_valid = np.ones((cfg.n_regions, cfg.n_negatives), bool)
    for i, a in enumerate(leaves.tolist()):
        pos_leaf[i] = rng.choice(
            n_leaves, size=cfg.n_positives, p=positive_probabilities(dist, a, cfg.scale)
        )
        pn = negative_probabilities(dist, a, cfg.scale)
        if pn.sum() > 0:
            neg_leaf[i] = rng.choice(n_leaves, size=cfg.n_negatives, p=pn)
        else:
            neg_leaf[i] = a
            neg_valid[i] = False
    w = lab.shape[1]
    return PixelPairs(
        anchors=_pixels_in(leaves, order, starts, counts, w, rng),
        positives=_pixels_in(pos_leaf, order, starts, counts, w, rng),
        negatives=_pixels_in(neg_leaf, order, starts, counts, w, rng),
        neg_valid=neg_valid,
        anchor_leaf=leaves,
    )


def map_pixels(
    coords: NDArray[np.integer], affine: NDArray[np.floating], shape: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """The same pixels in an augmented view: (..., 2) (y, x) through a (2, 3) affine in
    OpenCV's convention (``cv2.warpAffine``: [x', y'] = A [x, y, 1]), rounded; and whether
    each lands inside the (H', W') view. Pairs whose pixels stay inside give more pairs."""
    a = np.asarray(affine, np.float64)
    if a.shape != (2, 3):
        raise ValueError(f"affine must be (2, 3), got {a.shape}")
    c = np.asarray(coords)
    if c.shape[-1:] != (2,):
        raise ValueError(f"coords must be (..., 2) (y, x), got {c.shape}")
    x = a[0, 0] * c[..., 1] + a[0, 1] * c[..., 0] + a[0, 2]
    y = a[1, 0] * c[..., 1] + a[1, 1] * c[..., 0] + a[1, 2]
    out = np.stack([np.rint(y), np.rint(x)], axis=-1).astype(np.int64)
    inside = (out[..., 0] >= 0) & (out[..., 0] < shape[0]) & (out[..., 1] >= 0)
    inside &= out[..., 1] < shape[1]
    return out, inside
