"""Hand-made graphs with their exact expected edges and pairs."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.graph import PAIR_KINDS, GraphConfig, build_graph


def _pairs(g) -> set[tuple[int, int, str]]:  # type: ignore[no-untyped-def]
    return {
        (int(a), int(b), PAIR_KINDS[k])
        for a, b, k in zip(g.pair_a, g.pair_b, g.pair_kind, strict=True)
    }


def test_one_child_of_two_tracks() -> None:
    # tracks 0 (nodes A=0, A'=1) and 1 (A=2, A'=3) in one child; track 2 alone
    g = build_graph(np.array([[0, 1]]), 3)
    assert _pairs(g) == {
        (0, 1, "intra"), (2, 3, "intra"), (4, 5, "intra"),
        (0, 2, "inter"), (0, 3, "transitive_1"), (1, 2, "transitive_1"),
        (1, 3, "transitive_2"),
    }  # fmt: skip
    assert list(zip(g.edge_a.tolist(), g.edge_b.tolist(), strict=True)) == [
        (0, 1), (0, 2), (2, 3), (4, 5),
    ]  # fmt: skip
    assert g.edge_kind.tolist() == [0, 1, 0, 0]
    # every pair points at the edge it came from
    for a, b, e in zip(g.pair_a, g.pair_b, g.pair_edge, strict=True):
        assert (g.edge_a[e] // 2, g.edge_b[e] // 2) == (a // 2, b // 2)


def test_overlapping_children_one_hop_only() -> None:
    # children {0,1,2,3} and {3,4,5,6} share track 3; 0 and 4 must NOT be paired
    g = build_graph(np.array([[0, 1, 2, 3], [3, 4, 5, 6]]), 8)
    inter = {(a // 2, b // 2) for a, b, k in _pairs(g) if k == "inter"}
    expected = {(i, j) for c in ([0, 1, 2, 3], [3, 4, 5, 6]) for i in c for j in c if i < j}
    assert inter == expected
    assert g.stats["edges_inter"] == 12
    assert g.stats["pairs"] == 8 + 4 * 12
    assert all((a // 2, b // 2) in expected or a // 2 == b // 2 for a, b, _ in _pairs(g))


def test_duplicate_children_deduplicated_and_counted() -> None:
    g = build_graph(np.array([[0, 1, 2, 3], [0, 1, 2, 3], [1, 2, 3, 4]]), 5)
    assert g.stats["edges_inter"] == 6 + 3  # {0..3} pairs + (1,4),(2,4),(3,4)
    counts = {(int(a), int(b)): int(c) for a, b, c, k in zip(
        g.edge_a, g.edge_b, g.edge_children, g.edge_kind, strict=True) if k == 1}  # fmt: skip
    assert counts[(2, 4)] == 3  # tracks 1-2 sit in all three children
    assert counts[(0, 2)] == 2
    assert counts[(2, 8)] == 1
    keys = list(zip(g.pair_a.tolist(), g.pair_b.tolist(), strict=True))
    assert keys == sorted(set(keys))


def test_no_transitive_and_same_video_filter() -> None:
    video = np.array([0, 0, 1])
    g = build_graph(np.array([[0, 1, 2]]), 3, video, GraphConfig(transitive=False))
    assert {k for *_, k in _pairs(g)} == {"intra", "inter"}
    assert g.stats["edges_inter_same_video"] == 1
    g2 = build_graph(np.array([[0, 1, 2]]), 3, video, GraphConfig(same_video_inter=False))
    inter = {(a // 2, b // 2) for a, b, k in _pairs(g2) if k == "inter"}
    assert inter == {(0, 2), (1, 2)}
    with pytest.raises(ValueError, match="video code"):
        build_graph(np.array([[0, 1]]), 3, None, GraphConfig(same_video_inter=False))


def test_no_children_gives_intra_only_and_bad_index_raises() -> None:
    g = build_graph(np.zeros((0, 4), np.int64), 2)
    assert _pairs(g) == {(0, 1, "intra"), (2, 3, "intra")}
    with pytest.raises(ValueError, match="track indices"):
        build_graph(np.array([[0, 5]]), 2)
