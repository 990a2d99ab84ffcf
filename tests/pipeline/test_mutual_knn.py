"""Mutual-kNN cliques against brute force on small random graphs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline import mutual_knn


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_knn(x: np.ndarray, groups: np.ndarray, k: int) -> list[set[int]]:
    sims = x @ x.T
    out = []
    for i in range(len(x)):
        same = np.flatnonzero((groups == groups[i]) & (np.arange(len(x)) != i))
        if groups[i] < 0:
            out.append(set())
            continue
        same = same[groups[same] >= 0]
        order = same[np.argsort(-sims[i, same], kind="stable")]
        out.append(set(order[:k].tolist()))
    return out


def test_knn_within_groups_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng, 120, 8)
    groups = rng.integers(-1, 4, size=120)
    nbr, sim = mutual_knn.knn_within_groups(x, groups, 5)
    ref = _brute_knn(x, groups, 5)
    for i in range(120):
        got = set(nbr[i][nbr[i] >= 0].tolist())
        assert got == ref[i]
        assert i not in got
        valid = sim[i][nbr[i] >= 0]
        assert np.all(np.diff(valid) <= 1e-6)
        np.testing.assert_allclose(valid, x[nbr[i][nbr[i] >= 0]] @ x[i], atol=1e-5)


def test_duplicates_never_list_themselves() -> None:
    x = np.tile(np.eye(4, dtype=np.float32)[:1], (6, 1))  # six identical points
    nbr, _ = mutual_knn.knn_within_groups(x, np.zeros(6, np.int64), 3)
    assert (nbr != np.arange(6)[:, None]).all()
    assert (nbr >= 0).all()


def test_small_group_pads_with_minus_one() -> None:
    x = _unit(np.random.default_rng(1), 3, 4)
    nbr, sim = mutual_knn.knn_within_groups(x, np.zeros(3, np.int64), 10)
    assert ((nbr >= 0).sum(axis=1) == 2).all()
    assert np.isneginf(sim[:, 2:]).all()


def _brute_cliques(nbr: np.ndarray, size: int) -> set[tuple[int, ...]]:
    lists = [set(r[r >= 0].tolist()) for r in nbr]
    n = len(lists)
    mutual = [{j for j in lists[i] if i in lists[j]} for i in range(n)]
    found = set()
    for i in range(n):
        cands = sorted(j for j in mutual[i] if j > i)
        for rest in itertools.combinations(cands, size - 1):
            if all(b in mutual[a] for a, b in itertools.combinations(rest, 2)):
                found.add((i, *rest))
    return found


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_cliques_match_brute_force(size: int) -> None:
    rng = np.random.default_rng(size)
    x = _unit(rng, 300, 3)  # low dimension: many mutual neighbours, many cliques
    groups = rng.integers(0, 3, size=300)
    nbr, _ = mutual_knn.knn_within_groups(x, groups, 10)
    mutual = mutual_knn.mutual_neighbors(nbr)
    got = mutual_knn.cliques(mutual, size, chunk=37)  # odd chunk: crosses boundaries
    ref = _brute_cliques(nbr, size)
    assert len(ref) > 10
    assert {tuple(r) for r in got.tolist()} == ref
    assert len(got) == len(ref)  # each clique once
    assert (np.diff(got, axis=1) > 0).all()
    assert (groups[got] == groups[got[:, :1]]).all()  # never across groups


def test_greedy_disjoint_equals_sequential_greedy() -> None:
    rng = np.random.default_rng(3)
    groups = np.sort(rng.choice(40, size=(200, 4), replace=True), axis=1)
    groups = groups[(np.diff(groups, axis=1) > 0).all(axis=1)]
    scores = rng.integers(0, 5, size=len(groups)).astype(np.float32)  # many ties
    got = mutual_knn.greedy_disjoint(groups, scores, 40)
    taken: set[int] = set()
    ref = []
    for i in sorted(range(len(groups)), key=lambda i: (-scores[i], i)):
        if not taken & set(groups[i].tolist()):
            ref.append(i)
            taken |= set(groups[i].tolist())
    assert got.tolist() == sorted(ref)


def test_large_group_path_matches_small_group_path() -> None:
    rng = np.random.default_rng(5)
    x = _unit(rng, 4200, 6)  # one group above the one-thread-per-group size
    groups = np.zeros(4200, np.int64)
    groups[:40] = 1  # and one small group
    nbr, _ = mutual_knn.knn_within_groups(x, groups, 4)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    for i in (0, 39, 40, 1000, 4199):
        same = np.flatnonzero(groups == groups[i])
        ref = same[np.argsort(-sims[i, same], kind="stable")[:4]]
        assert set(nbr[i].tolist()) == set(ref.tolist())
