"""Region trees: structure, the ultrametric, and a known merge order."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import edges, regions
from pipeline.synthetic import SyntheticConfig, generate


def _check_structure(tree: regions.RegionTree, max_leaves: int) -> None:
    n = tree.n_leaves
    assert 1 <= n <= max_leaves
    assert tree.parent.shape == tree.height.shape == (2 * n - 1,)
    assert set(np.unique(tree.leaves).tolist()) == set(range(n))  # every leaf label used
    assert (tree.parent == -1).sum() == 1 and tree.parent[-1] == -1  # one root, last
    kids = np.bincount(tree.parent[tree.parent >= 0], minlength=2 * n - 1)
    assert (kids[:n] == 0).all() and (kids[n:] == 2).all()  # binary tree over the leaves
    assert (tree.parent[:-1] > np.arange(2 * n - 2)).all()  # parents come after children
    assert (tree.height[:n] == 0).all()
    inner = tree.parent[:-1]
    assert (tree.height[inner] >= tree.height[:-1]).all()  # heights grow toward the root


@pytest.fixture(scope="module")
def tree() -> regions.RegionTree:
    v = generate(SyntheticConfig(height=180, width=240, n_frames=1, n_objects=3, seed=5))
    e = edges.gradient_edges(v.frames[0], edges.EdgeConfig())
    return regions.build_tree(e, regions.RegionConfig())


def test_tree_structure_on_a_textured_frame(tree: regions.RegionTree) -> None:
    assert tree.leaves.shape == (180, 240) and tree.leaves.dtype == np.int32
    _check_structure(tree, 40)
    assert tree.n_leaves == 40  # a textured frame has far more basins than 40


def test_leaf_distance_is_an_ultrametric(tree: regions.RegionTree) -> None:
    d = regions.leaf_distance(tree).astype(np.float64)
    n = tree.n_leaves
    assert d.shape == (n, n)
    np.testing.assert_array_equal(d, d.T)
    assert (np.diag(d) == 0).all() and (d[~np.eye(n, dtype=bool)] > 0).all()
    # strong triangle inequality for every triple: d(a, c) <= max(d(a, b), d(b, c))
    bound = np.maximum(d[:, :, None], d[None, :, :])  # [a, b, c] = max(d(a,b), d(b,c))
    assert (d[:, None, :] <= bound + 1e-7).all()
    # and two leaves meet exactly at the height of their lowest common ancestor
    root = 2 * n - 2
    assert d.max() == pytest.approx(float(tree.height[root]))


def _blocks() -> np.ndarray:
    """Three flat regions: A (left) and B (middle) differ a little, C (right) a lot."""
    img = np.zeros((60, 90, 3), np.uint8)
    img[:, :30] = (120, 120, 120)
    img[:, 30:60] = (135, 120, 120)
    img[:, 60:] = (20, 200, 40)
    return img


def test_weakest_boundary_merges_first() -> None:
    e = edges.gradient_edges(_blocks(), edges.EdgeConfig())
    tree = regions.build_tree(e, regions.RegionConfig(max_leaves=3, min_leaf_area=0.0))
    _check_structure(tree, 3)
    assert tree.n_leaves == 3
    a, b, c = (int(tree.leaves[30, x]) for x in (10, 45, 80))
    assert len({a, b, c}) == 3
    for x0, x1, leaf in ((0, 28, a), (32, 58, b), (62, 90, c)):  # leaves follow the blocks
        assert (tree.leaves[:, x0:x1] == leaf).all()
    d = regions.leaf_distance(tree)
    assert d[a, b] < d[a, c] and d[a, c] == d[b, c]
    seg = regions.cut_tree(tree, float(d[a, b]))  # cut between the two merges: A+B | C
    assert len(np.unique(seg)) == 2 and seg[30, 10] == seg[30, 45] != seg[30, 80]
    ucm = regions.ucm_image(tree)
    assert ucm[30, 29] == pytest.approx(d[a, b]) and ucm[30, 59] == pytest.approx(d[b, c])
    assert ucm[:, 5:25].max() == 0 and ucm[:, 65:85].max() == 0  # nothing inside regions


def test_flat_image_gives_a_single_leaf() -> None:
    e = edges.gradient_edges(np.full((40, 50, 3), 90, np.uint8), edges.EdgeConfig())
    tree = regions.build_tree(e, regions.RegionConfig())
    assert tree.n_leaves == 1 and tree.parent.tolist() == [-1]
    assert regions.leaf_distance(tree).shape == (1, 1)


def test_large_frames_are_built_at_work_size_and_returned_full_size() -> None:
    img = np.repeat(np.repeat(_blocks(), 4, axis=0), 4, axis=1)  # 240 x 360
    e = edges.gradient_edges(img, edges.EdgeConfig())
    tree = regions.build_tree(e, regions.RegionConfig(max_leaves=3, work_side=120))
    assert tree.leaves.shape == (240, 360) and tree.n_leaves == 3


def test_mismatched_edge_maps_are_refused() -> None:
    bad = edges.EdgeMap(np.zeros((10, 10), np.float32), np.zeros((10, 11), np.float32))
    with pytest.raises(ValueError, match="equal"):
        regions.build_tree(bad, regions.RegionConfig())


def test_oracle_iou_takes_the_best_union_of_leaves() -> None:
    leaves = np.repeat(np.arange(4, dtype=np.int32)[None], 10, axis=0).repeat(10, axis=1)
    mask = np.zeros((10, 40), bool)
    mask[:, 0:10] = True  # leaf 0 entirely
    mask[:, 10:17] = True  # 70% of leaf 1
    mask[:, 20:22] = True  # 20% of leaf 2
    # leaf 0 alone: 100 / 190 = 0.526; leaves 0 + 1: 170 / (190 + 30) = 0.773; + leaf 2:
    # 190 / (190 + 110) = 0.633
    assert regions.oracle_iou(leaves, mask) == pytest.approx(170 / 220)
    assert regions.oracle_iou(leaves, leaves < 2) == 1.0


def test_frame_tree_works_at_work_size_and_returns_frame_size_leaves() -> None:
    img = np.repeat(np.repeat(_blocks(), 4, axis=0), 4, axis=1)  # 240 x 360
    cfg = regions.RegionConfig(max_leaves=3, work_side=90, min_leaf_area=0.0)
    tree, edge = regions.frame_tree(img, lambda f: edges.gradient_edges(f, edges.EdgeConfig()), cfg)
    assert edge.strength.shape == (60, 90)  # edges computed on the shrunk frame
    assert tree.leaves.shape == (240, 360) and tree.n_leaves == 3
    a, b, c = (int(tree.leaves[120, x]) for x in (40, 180, 320))
    d = regions.leaf_distance(tree)
    assert d[a, b] < d[a, c] == d[b, c]
