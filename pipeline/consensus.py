"""Non-local consensus voting over superpixels (Faktor & Irani, as in videoseg's `nlc.py`).

- `knn_graph`: the sparse row-normalised transition matrix of exact k-NN (faiss
  `IndexFlatL2`) among the superpixels of frames within +-radius, weights
  exp(-d^2 / sigma2), self weight 1 (`compute_nn` + `normalize_nn`);
- `normalise_per_frame`: votes divided by their frame's maximum (`consensus_vote`);
- blobs: connected regions of superpixels above a threshold, found on the superpixel
  adjacency graph (4-connectivity, like `scipy.ndimage.label` on the pixels; votes are
  constant per superpixel so the result is the same), vectorised over the whole shot:
  `clear_low_energy_blobs` and `demote_minor_blobs` are `remove_low_energy_blobs` with
  `relEnergy` and `relSize`.
"""

from __future__ import annotations

import faiss
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components


def knn_graph(
    desc: NDArray[np.float32],
    offsets: NDArray[np.int64],
    *,
    k: int,
    radius: int,
    sigma2: float,
) -> sp.csr_matrix:
    """Row-normalised sparse (N, N) transition matrix of exact k-NN within +-radius frames.

    desc: (N, D) float32 descriptors, frame i owning rows offsets[i]:offsets[i + 1]. Each
    row holds the k nearest rows among frames i-radius..i+radius (itself included, as the
    original KD-tree query returns it) weighted exp(-d^2 / sigma2), and self weight 1.
    """
    n = len(offsets) - 1
    d = desc.shape[1]
    rows, cols, vals = [], [], []
    x = np.ascontiguousarray(desc, np.float32)
    for i in range(n):  # one exact search per frame window, as the original KD-trees
        lo, hi = int(offsets[max(0, i - radius)]), int(offsets[min(n, i + radius + 1)])
        q0, q1 = int(offsets[i]), int(offsets[i + 1])
        if q1 == q0:
            continue
        index = faiss.IndexFlatL2(d)
        index.add(x[lo:hi])
        kk = min(k, hi - lo)
        dist2, idx = index.search(x[q0:q1], kk)
        r = np.repeat(np.arange(q0, q1), kk)
        c = idx.ravel().astype(np.int64) + lo
        w = np.exp(-np.maximum(dist2.ravel(), 0.0) / sigma2)
        w[c == r] = 1.0
        rows.append(r)
        cols.append(c)
        vals.append(w)
    total = int(offsets[-1])
    r_all = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c_all = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    v_all = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    # Rows whose own entry the search missed (> k exact duplicates) get it added.
    has_self = np.zeros(total, bool)
    has_self[r_all[r_all == c_all]] = True
    miss = np.flatnonzero(~has_self)
    r_all = np.concatenate([r_all, miss])
    c_all = np.concatenate([c_all, miss])
    v_all = np.concatenate([v_all, np.ones(len(miss), v_all.dtype)])
    w_mat = sp.csr_matrix(
        (v_all.astype(np.float32), (r_all, c_all)), shape=(total, total), dtype=np.float32
    )
    w_mat.sum_duplicates()
    row_sum = np.asarray(w_mat.sum(axis=1)).ravel()
    inv = (1.0 / np.maximum(row_sum, 1e-12)).astype(np.float32)
    w_mat.data *= np.repeat(inv, np.diff(w_mat.indptr))
    return w_mat


def normalise_per_frame(votes: NDArray[np.float32], offsets: NDArray[np.int64]) -> None:
    """In place: divide each frame's votes by their maximum (left alone when <= 0)."""
    m = np.maximum.reduceat(votes, offsets[:-1])
    m = np.where(m <= 0, 1.0, m).astype(votes.dtype)
    votes /= np.repeat(m, np.diff(offsets))


def blob_components(
    votes: NDArray[np.float32], threshold: float, adjacency: NDArray[np.int64]
) -> NDArray[np.int64]:
    """(N,) blob id per superpixel (0..B-1) for superpixels above `threshold`, -1 elsewhere.

    adjacency: (E, 2) global superpixel pairs that touch (within a frame)."""
    n = len(votes)
    active = votes > threshold
    keep = active[adjacency[:, 0]] & active[adjacency[:, 1]]
    e = adjacency[keep]
    g = sp.coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    out = np.full(n, -1, np.int64)
    ids = comp[active]
    _, dense = np.unique(ids, return_inverse=True)
    out[active] = dense
    return out


def clear_low_energy_blobs(
    votes: NDArray[np.float32],
    areas: NDArray[np.int64],
    adjacency: NDArray[np.int64],
    *,
    threshold: float,
    min_energy: float,
    target: float,
) -> int:
    """In place: blobs above `threshold` whose pixel-weighted mean is under `min_energy`
    go to `target` (videoseg `remove_low_energy_blobs(relEnergy=...)`). Returns the number
    of blobs cleared. A no-op whenever min_energy <= threshold (a blob's mean exceeds it)."""
    if min_energy <= threshold:
        return 0
    comp = blob_components(votes, threshold, adjacency)
    act = comp >= 0
    if not act.any():
        return 0
    a = areas[act].astype(np.float64)
    size = np.bincount(comp[act], weights=a)
    energy = np.bincount(comp[act], weights=a * votes[act])
    kill = energy < min_energy * size
    votes[act & kill[np.maximum(comp, 0)]] = target
    return int(kill.sum())


def demote_minor_blobs(
    votes: NDArray[np.float32],
    areas: NDArray[np.int64],
    adjacency: NDArray[np.int64],
    offsets: NDArray[np.int64],
    *,
    threshold: float,
    rel_size: float,
    value: float,
) -> int:
    """In place: per frame, blobs above `threshold` smaller than `rel_size` x the largest go
    to `value` (videoseg `remove_low_energy_blobs(relSize=0.6)`). Returns blobs demoted."""
    comp = blob_components(votes, threshold, adjacency)
    act = comp >= 0
    if not act.any():
        return 0
    size = np.bincount(comp[act], weights=areas[act].astype(np.float64))
    frame_of_sp = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    blob_frame = np.zeros(len(size), np.int64)
    blob_frame[comp[act]] = frame_of_sp[act]
    largest = np.zeros(len(offsets) - 1)
    np.maximum.at(largest, blob_frame, size)
    minor = size < rel_size * largest[blob_frame]
    votes[act & minor[np.maximum(comp, 0)]] = value
    return int(minor.sum())
