"""Exact k-nearest neighbours inside groups, mutual-kNN graphs and their small cliques.

The second clustering stage of Wang, He & Gupta (ICCV 2017) looks, inside each parent
cluster, for *child clusters*: sets of samples that are all in each other's top-k
neighbour lists. Those are cliques of the mutual-kNN graph. Because every node has at most
k mutual neighbours, the cliques containing a node are bounded by its neighbour list, so
they are enumerated here with array operations over padded neighbour lists (no Python loop
over pairs or nodes), in chunks of root nodes to bound memory.

Conventions: points are rows of an (N, d) float32 array of L2-normalised vectors; cosine
similarity is the inner product. Neighbour arrays are (N, k) int64 of global row indices,
padded with -1 (kNN lists) or with the sentinel N (mutual lists, so padding sorts last).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
_SMALL_GROUP = 4096  # points: below this a group's search is one thread's job


def knn_within_groups(
    x: FloatArray, groups: npt.NDArray[np.integer], k: int
) -> tuple[IntArray, FloatArray]:
    """Exact top-k cosine neighbours of every point among the points of its own group.

    x: (N, d) float32, L2-normalised. groups: (N,) int, group id per point; points with a
    negative group id get no neighbours (and are nobody's neighbour). Returns
    (neighbours (N, k) int64 global indices, -1 padded; similarities (N, k) float32, -inf
    padded), each row sorted by decreasing similarity. A point is never its own neighbour,
    even when duplicates tie with it. One exact faiss IndexFlatIP search per group (groups
    are parent clusters: a few hundred points each).
    """
    if x.ndim != 2:
        raise ValueError(f"x must be (N, d), got shape {x.shape}")
    if groups.shape != (x.shape[0],):
        raise ValueError(f"groups must be ({x.shape[0]},), got {groups.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n, d = x.shape
    nbr = np.full((n, k), -1, dtype=np.int64)
    sim = np.full((n, k), -np.inf, dtype=np.float32)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    ends = np.r_[starts[1:], n]
    spans = [
        (s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        if e - s >= 2 and sorted_groups[s] >= 0
    ]  # fmt: skip
    xf = np.ascontiguousarray(x, dtype=np.float32)

    def search(span: tuple[int, int]) -> None:
        s, e = span
        idx = order[s:e]
        xg = np.ascontiguousarray(xf[idx])
        index = faiss.IndexFlatIP(d)
        index.add(xg)
        dist, local = index.search(xg, min(k + 1, e - s))
        local_nbr, local_sim = _drop_self(local.astype(np.int64), dist)
        kept = local_nbr.shape[1]
        nbr[idx, :kept] = np.where(local_nbr >= 0, idx[np.maximum(local_nbr, 0)], -1)
        sim[idx, :kept] = np.where(local_nbr >= 0, local_sim, -np.inf)

    # Small groups (parents: a few hundred points) cost more in OpenMP start-up than in
    # arithmetic, so they run one per thread (faiss releases the GIL; each worker sets its
    # own OpenMP team to 1); large groups use every thread in this one. Rows written by
    # different groups are disjoint, and each group's result is independent of scheduling.
    workers = max(1, faiss.omp_get_max_threads())
    small = [sp for sp in spans if sp[1] - sp[0] <= _SMALL_GROUP]
    for sp in spans:
        if sp[1] - sp[0] > _SMALL_GROUP:
            search(sp)

    def run_slice(part: list[tuple[int, int]]) -> None:
        faiss.omp_set_num_threads(1)
        for sp in part:
            search(sp)

    if workers == 1 or len(small) < 2:
        for sp in small:
            search(sp)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run_slice, [small[i::workers] for i in range(workers)]))
    return nbr, sim


def _drop_self(local: IntArray, dist: npt.NDArray[np.float32]) -> tuple[IntArray, FloatArray]:
    """Remove each row's own index from a (m, k+1) self-inclusive search result.

    If a row does not contain itself (exact duplicates can push it out), its last column
    goes instead, so every row keeps exactly k entries.
    """
    m, kk = local.shape
    drop = local == np.arange(m)[:, None]
    no_self = ~drop.any(axis=1)
    drop[no_self, kk - 1] = True
    keep = ~drop
    return local[keep].reshape(m, kk - 1), dist[keep].reshape(m, kk - 1).astype(np.float32)


def mutual_neighbors(nbr: IntArray) -> IntArray:
    """Mutual-kNN lists: j is kept in row i iff j is in i's list and i is in j's list.

    nbr: (N, k) int64, -1 padded. Returns (N, k) int64 with each row sorted ascending and
    padded with the sentinel N. Vectorised: directed edges are encoded as i*N + j, and each
    reverse edge is looked up with one searchsorted over the sorted codes.
    """
    n, k = nbr.shape
    valid = nbr >= 0
    rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], (n, k))
    codes = np.where(valid, rows * n + nbr, -1)
    flat = np.sort(codes[valid])
    reverse = np.where(valid, np.maximum(nbr, 0) * n + rows, -1)
    if flat.size == 0:
        return np.full((n, k), n, dtype=np.int64)
    pos = np.minimum(np.searchsorted(flat, reverse), flat.size - 1)
    mutual = valid & (flat[pos] == reverse)
    out = np.where(mutual, nbr, n)
    out.sort(axis=1)
    return out


def cliques(mutual: IntArray, size: int, chunk: int = 65536) -> IntArray:
    """Every clique of `size` nodes in the mutual-kNN graph, each listed once.

    mutual: (N, k) int64 from `mutual_neighbors` (rows sorted, sentinel N). Returns (C, size)
    int64, each row ascending, rows in lexicographic order. A clique {v0 < v1 < ... } is
    grown from its smallest node v0 by appending, in increasing order, nodes of v0's list
    that are mutual with every member so far; candidates come only from v0's (<= k) list, so
    the work per node is bounded by C(k, size-1) and the total is linear in N.
    """
    if size < 2:
        raise ValueError(f"clique size must be >= 2, got {size}")
    n, k = mutual.shape
    parts: list[IntArray] = []
    for start in range(0, n, chunk):
        roots = np.arange(start, min(start + chunk, n), dtype=np.int64)
        parts.append(_cliques_from_roots(mutual, roots, size))
    if not parts:
        return np.zeros((0, size), dtype=np.int64)
    return np.concatenate(parts, axis=0)


def _cliques_from_roots(mutual: IntArray, roots: IntArray, size: int) -> IntArray:
    n, k = mutual.shape
    lists = mutual[roots]  # (R, k)
    # Seed with edges (root, j), j > root; remember j's position in the root's list.
    r_idx, pos = np.nonzero((lists > roots[:, None]) & (lists < n))
    members = np.stack([roots[r_idx], lists[r_idx, pos]], axis=1)
    cols = np.arange(k)
    for _ in range(size - 2):
        if members.shape[0] == 0:
            break
        # Candidates: later entries of the root's list (so they exceed the last member).
        cand_mask = (cols[None, :] > pos[:, None]) & (lists[r_idx] < n)
        t_idx, c_pos = np.nonzero(cand_mask)
        cand = lists[r_idx[t_idx], c_pos]
        ok = np.ones(cand.shape[0], dtype=bool)
        for m in range(1, members.shape[1]):
            ok &= (mutual[members[t_idx, m]] == cand[:, None]).any(axis=1)
        t_idx, c_pos, cand = t_idx[ok], c_pos[ok], cand[ok]
        members = np.concatenate([members[t_idx], cand[:, None]], axis=1)
        r_idx, pos = r_idx[t_idx], c_pos
    if members.shape[1] != size:
        return np.zeros((0, size), dtype=np.int64)
    order = np.lexsort(members.T[::-1])
    return members[order]


def mean_pairwise_similarity(x: FloatArray, groups: IntArray, chunk: int = 65536) -> FloatArray:
    """Mean cosine over the distinct pairs of each row of `groups` ((C, s) indices into x)."""
    c, s = groups.shape
    out = np.zeros(c, dtype=np.float32)
    iu = np.triu_indices(s, k=1)
    for start in range(0, c, chunk):
        g = x[groups[start : start + chunk]].astype(np.float32)  # (B, s, d)
        gram = np.einsum("bsd,btd->bst", g, g)
        out[start : start + chunk] = gram[:, iu[0], iu[1]].mean(axis=1)
    return out


def greedy_disjoint(groups: IntArray, scores: FloatArray, n: int) -> IntArray:
    """Indices of a disjoint subset of `groups`, chosen greedily by decreasing score.

    Equivalent to: walk the groups from best to worst (ties: lower index first) and keep a
    group when none of its members is already taken. Computed in rounds without a Python
    loop over groups: in each round every node points at the best live group containing it,
    and a group that is best for all its members is accepted (no better live group overlaps
    it, so sequential greedy accepts it too); groups touching accepted nodes then die.
    Returns the accepted indices in ascending order.
    """
    c, s = groups.shape
    order = np.lexsort((np.arange(c), -scores))
    rank = np.empty(c, dtype=np.int64)
    rank[order] = np.arange(c)
    alive = np.arange(c)
    taken = np.zeros(n, dtype=bool)
    accepted: list[IntArray] = []
    rounds = 0
    while alive.size:
        rounds += 1
        g = groups[alive]
        best = np.full(n, c, dtype=np.int64)
        np.minimum.at(best, g.ravel(), np.repeat(rank[alive], s))
        win = (best[g] == rank[alive][:, None]).all(axis=1)
        accepted.append(alive[win])
        taken[g[win].ravel()] = True
        alive = alive[~win & ~taken[g].any(axis=1)]
    log.debug("greedy_disjoint: %d groups -> %d rounds", c, rounds)
    if not accepted:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(accepted))
