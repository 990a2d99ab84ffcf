"""Pixel-pair sampling against a hand-computed tree (Zhang & Maire 2020, s = 0.8)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import pixel_pairs as pp
from pipeline.regions import RegionTree, leaf_distance


def _tree() -> RegionTree:
    """Leaves 0 | 1 | 2 as three vertical bands of 10 x 10; 0 and 1 meet at 0.2, then 2
    joins at 0.6: d(0,1) = 0.2, d(0,2) = d(1,2) = 0.6."""
    leaves = np.repeat(np.repeat(np.array([[0, 1, 2]], np.int32), 10, axis=0), 10, axis=1)
    parent = np.array([3, 3, 4, 4, -1], np.int32)
    height = np.array([0, 0, 0, 0.2, 0.6], np.float32)
    return RegionTree(leaves, parent, height)


# by hand: positives of leaf 0 weigh 1, exp(-0.2/0.8) = 0.778801, exp(-0.6/0.8) = 0.472367
# (sum 2.251168); negatives weigh 0, exp(0.25) = 1.284025, exp(0.75) = 2.117000 (sum 3.401025)
POS0 = [0.444214, 0.345954, 0.209832]
NEG0 = [0.0, 0.377541, 0.622459]
# leaf 2: positives 0.472367, 0.472367, 1 (sum 1.944733); negatives 1/2, 1/2
POS2 = [0.242895, 0.242895, 0.514209]
NEG2 = [0.5, 0.5, 0.0]


def test_probabilities_match_the_hand_computed_tree() -> None:
    d = leaf_distance(_tree()).astype(np.float64)
    np.testing.assert_allclose(d, [[0, 0.2, 0.6], [0.2, 0, 0.6], [0.6, 0.6, 0]], atol=1e-7)
    np.testing.assert_allclose(pp.positive_probabilities(d, 0, 0.8), POS0, atol=1e-6)
    np.testing.assert_allclose(pp.negative_probabilities(d, 0, 0.8), NEG0, atol=1e-6)
    np.testing.assert_allclose(pp.positive_probabilities(d, 2, 0.8), POS2, atol=1e-6)
    np.testing.assert_allclose(pp.negative_probabilities(d, 2, 0.8), NEG2, atol=1e-6)


def test_sampled_frequencies_follow_the_probabilities() -> None:
    tree = _tree()
    cfg = pp.PairConfig()
    rng = np.random.default_rng(0)
    pos = {a: np.zeros(3) for a in range(3)}
    neg = {a: np.zeros(3) for a in range(3)}
    for _ in range(1500):
        s = pp.sample_pixel_pairs(tree, cfg, rng)
        assert s.anchors.shape == (7, 2) and s.positives.shape == (7, 10, 2)
        assert s.negatives.shape == (7, 5, 2) and s.neg_valid.all()
        lab = tree.leaves
        a_leaf = lab[s.anchors[:, 0], s.anchors[:, 1]]
        np.testing.assert_array_equal(a_leaf, s.anchor_leaf)
        p_leaf = lab[s.positives[..., 0], s.positives[..., 1]]
        n_leaf = lab[s.negatives[..., 0], s.negatives[..., 1]]
        assert (n_leaf != a_leaf[:, None]).all()  # never a negative in the anchor's leaf
        for a in range(3):
            pos[a] += np.bincount(p_leaf[a_leaf == a].ravel(), minlength=3)
            neg[a] += np.bincount(n_leaf[a_leaf == a].ravel(), minlength=3)
    np.testing.assert_allclose(pos[0] / pos[0].sum(), POS0, atol=0.02)
    np.testing.assert_allclose(neg[0] / neg[0].sum(), NEG0, atol=0.02)
    np.testing.assert_allclose(pos[2] / pos[2].sum(), POS2, atol=0.02)
    np.testing.assert_allclose(neg[2] / neg[2].sum(), NEG2, atol=0.02)


def test_anchor_regions_are_distinct_when_there_are_enough() -> None:
    leaves = np.arange(100, dtype=np.int32).reshape(10, 10) // 10  # 10 leaves (rows)
    parent = np.array([10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 11, 12, 13, 14, 15, 16, 17,
                       18, -1], np.int32)  # fmt: skip
    height = np.concatenate([np.zeros(10), np.linspace(0.1, 0.9, 9)]).astype(np.float32)
    s = pp.sample_pixel_pairs(RegionTree(leaves, parent, height), pp.PairConfig(),
                              np.random.default_rng(1))  # fmt: skip
    assert len(set(s.anchor_leaf.tolist())) == 7


def test_single_leaf_tree_flags_its_negatives() -> None:
    tree = RegionTree(np.zeros((8, 8), np.int32), np.array([-1], np.int32),
                      np.zeros(1, np.float32))  # fmt: skip
    s = pp.sample_pixel_pairs(tree, pp.PairConfig(), np.random.default_rng(0))
    assert not s.neg_valid.any() and s.positives.shape == (7, 10, 2)


def test_same_seed_same_pairs_and_bad_trees_refused() -> None:
    a = pp.sample_pixel_pairs(_tree(), pp.PairConfig(), np.random.default_rng(3))
    b = pp.sample_pixel_pairs(_tree(), pp.PairConfig(), np.random.default_rng(3))
    np.testing.assert_array_equal(a.positives, b.positives)
    t = _tree()
    gap = RegionTree(np.where(t.leaves == 1, 0, t.leaves), t.parent, t.height)
    with pytest.raises(ValueError, match="every label"):
        pp.sample_pixel_pairs(gap, pp.PairConfig(), np.random.default_rng(0))


def test_map_pixels_through_a_flip_and_a_crop() -> None:
    yx = np.array([[[2, 3], [0, 9]]])  # (1, 2, 2)
    flip = np.array([[-1.0, 0, 9], [0, 1, 0]])  # horizontal flip of a 10-wide image
    out, inside = pp.map_pixels(yx, flip, (10, 10))
    np.testing.assert_array_equal(out, [[[2, 6], [0, 0]]])
    assert inside.all()
    crop = np.array([[1.0, 0, -4], [0, 1, -1]])  # crop starting at x = 4, y = 1
    out, inside = pp.map_pixels(yx, crop, (5, 5))
    np.testing.assert_array_equal(out, [[[1, -1], [-1, 5]]])
    assert not inside.any()
