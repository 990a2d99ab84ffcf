"""Two-stage clustering of patch features (Wang, He & Gupta, ICCV 2017, section 3.2).

Stage 1 (`cluster_parents`): spherical K-means with faiss over L2-normalised features;
parents with too few members are dropped. Stage 2 (`cluster_children`): inside each kept
parent, exact top-k cosine neighbours; a child cluster is a set of `child_size` samples that
are all in each other's top-k lists (a clique of the mutual-kNN graph, see
`pipeline.mutual_knn`).

Everything here takes arrays and a frozen config and returns arrays plus a stats dict; the
K-means centroids are returned so that new points can be assigned later (`assign`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from pipeline import mutual_knn

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

_INIT_METHODS = {
    "greedy_kmeans++": "",  # ours, below; the others are faiss's
    "random": "ClusteringInitMethod_RANDOM",
    "kmeans++": "ClusteringInitMethod_KMEANS_PLUS_PLUS",
    "afk_mc2": "ClusteringInitMethod_AFK_MC2",
}


@dataclass(frozen=True)
class ParentConfig:
    """Stage 1: spherical K-means over all seed patches."""

    k: int = 5000  # paper: 5000 parent clusters (upper bound; see points_per_parent)
    points_per_parent: int = 200  # K <= N/200 keeps the paper's ~N/K ratio on small runs
    min_parent_size: int = 100  # paper: parents under 100 members are dropped
    niter: int = 20  # Lloyd iterations; the objective has flattened by ~15 on patch features
    max_points_per_centroid: int = 64  # faiss subsamples to k*64 points (default 256): at
    # K=5000 this trains on 320k points, so 1M x 256 clusters in minutes on 2 cores
    early_stop_threshold: float = 0.0  # faiss default: stop only when the objective is unchanged
    init: str = "greedy_kmeans++"  # greedy k-means++ seeding (below); faiss's random /
    # k-means++ / AFK-MC2 split one planted blob and merge two in 30-90% of runs (measured)
    init_points_per_centroid: int = 8  # seeding sample K*8 (40k points at K=5000); 4 failed
    # 2/30 planted runs, 8 failed 0/30 (measured)
    init_trials: int = 16  # D^2 draws per pick; sklearn's 2+ln K failed 1-3/30 planted runs,
    # 16 failed 0/30 (measured); seeding costs ~2 K * sample * d * trials flops
    init_dim: int = 256  # seeding distances in a random 256-d projection when d > 256:
    # seeding streams its sample once per pick, so 4608-d features seed ~18x cheaper; planted
    # 1024-d blobs failed 2/20 projected vs 3/20 full (64-d: 6/20); 0 = full dimension
    nredo: int = 1  # one run: reruns multiply cost for little gain (faiss inits only:
    # greedy seeding would give every redo the same start)
    seed: int = 1234  # faiss's own default seed, made explicit
    use_gpu: bool = True  # use faiss GPUs when faiss sees any at run time


@dataclass(frozen=True)
class ChildConfig:
    """Stage 2: child clusters of mutual nearest neighbours inside each parent."""

    n_neighbors: int = 10  # paper: members must be in each other's top-10
    child_size: int = 4  # paper: child clusters of 4 samples
    allow_overlap: bool = True  # paper keeps overlapping children; False keeps a greedy
    # disjoint subset (best mean cosine first)
    chunk: int = 65536  # root nodes per vectorised clique-enumeration step (memory bound)


@dataclass(frozen=True)
class ParentResult:
    """labels: (N,) int32 parent id, -1 when the point's cluster was dropped.
    assigned: (N,) int32 nearest centroid (before dropping). similarity: (N,) float32 cosine
    to that centroid. centroids: (K, d) float32 unit rows. sizes: (K,) int64. kept: (K,) bool.
    """

    labels: npt.NDArray[np.int32]
    assigned: npt.NDArray[np.int32]
    similarity: FloatArray
    centroids: FloatArray
    sizes: IntArray
    kept: npt.NDArray[np.bool_]
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildResult:
    """members: (C, child_size) int64 row indices into x, each row ascending, rows in
    lexicographic order. parent: (C,) int32. score: (C,) float32 mean pairwise cosine."""

    members: IntArray
    parent: npt.NDArray[np.int32]
    score: FloatArray
    stats: dict[str, Any] = field(default_factory=dict)


def check_unit_rows(x: npt.NDArray[Any], name: str = "x", tol: float = 1e-2) -> FloatArray:
    """Validate (N, d) finite, L2-normalised rows (float16 storage allowed); return float32
    rows renormalised exactly."""
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"{name} must be a (N, d) array, got shape {x.shape}")
    xf = np.asarray(x, dtype=np.float32)
    if not np.isfinite(xf).all():
        raise ValueError(f"{name} contains NaN or inf")
    norms = np.linalg.norm(xf, axis=1)
    if xf.shape[0] and np.abs(norms - 1.0).max() > tol:
        raise ValueError(
            f"{name} rows must be L2-normalised (norms in {norms.min():.3g}..{norms.max():.3g})"
        )
    return np.ascontiguousarray(xf / norms[:, None], dtype=np.float32)


def effective_k(n: int, cfg: ParentConfig) -> int:
    """K actually used: min(k, N / points_per_parent), at least 1 and at most N."""
    if n < 1:
        raise ValueError("cannot cluster 0 points")
    return max(1, min(cfg.k, n // max(cfg.points_per_parent, 1), n))


def effective_min_size(n: int, k: int, cfg: ParentConfig) -> int:
    """Drop threshold scaled like K: min_parent_size relative to points_per_parent, applied
    to the actual mean cluster size N/K (so 100 of a mean 200 stays 'half the mean')."""
    mean_size = n / k
    scaled = math.floor(cfg.min_parent_size * mean_size / max(cfg.points_per_parent, 1))
    return max(1, min(cfg.min_parent_size, scaled))


def _gpu_count(cfg: ParentConfig) -> int:
    return int(faiss.get_num_gpus()) if cfg.use_gpu else 0


def assign(
    centroids: FloatArray, x: FloatArray, batch: int = 262144
) -> tuple[npt.NDArray[np.int32], FloatArray]:
    """Nearest centroid (max cosine) for each row of x. centroids: (K, d), x: (N, d), both
    L2-normalised. Returns (labels (N,) int32, similarity (N,) float32). Exact (IndexFlatIP,
    on GPU when faiss has one)."""
    c = check_unit_rows(centroids, "centroids")
    xf = check_unit_rows(x, "x")
    if c.shape[1] != xf.shape[1]:
        raise ValueError(f"x has d={xf.shape[1]}, centroids have d={c.shape[1]}")
    return _nearest(c, xf, batch)


def _nearest(
    c: FloatArray, xf: FloatArray, batch: int = 262144
) -> tuple[npt.NDArray[np.int32], FloatArray]:
    """`assign` on rows already checked and renormalised (no second full-size copy)."""
    index: Any = faiss.IndexFlatIP(c.shape[1])
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(c)
    labels = np.empty(xf.shape[0], dtype=np.int32)
    sims = np.empty(xf.shape[0], dtype=np.float32)
    for s in range(0, xf.shape[0], batch):
        d, i = index.search(xf[s : s + batch], 1)
        labels[s : s + batch] = i[:, 0]
        sims[s : s + batch] = d[:, 0]
    return labels, sims


def greedy_kmeanspp(x: FloatArray, k: int, rng: np.random.Generator, n_trials: int = 0) -> IntArray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; scikit-learn's variant): each
    new centre is the best, by resulting potential, of n_trials (default 2 + ln k) points
    drawn with probability proportional to D^2. x: (n, d) unit rows. Returns the (k,) row
    indices of the centres. One (trials, d) x (d, n) product per pick streams all of x from
    memory, so the cost is ~k * n * d memory traffic: callers seed on a sample, projected."""
    n = x.shape[0]
    trials = n_trials or 2 + int(np.log(k))
    picks = np.empty(k, dtype=np.int64)
    picks[0] = int(rng.integers(n))
    d2 = np.maximum(2.0 - 2.0 * (x @ x[picks[0]]), 0.0)  # squared chord distance (sphere)
    for c in range(1, k):
        cum = np.cumsum(d2, dtype=np.float64)
        if cum[-1] <= 0:  # fewer distinct points than k: any point will do
            cand = rng.integers(n, size=trials)
        else:
            cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
        # (n, d) @ (d, trials): measured 2x faster than (trials, d) @ (d, n) with OpenBLAS
        dc = x @ np.ascontiguousarray(x[cand].T)  # (n, trials) cosines
        np.multiply(dc, -2.0, out=dc)
        np.add(dc, 2.0, out=dc)
        np.maximum(dc, 0.0, out=dc)
        np.minimum(dc, d2[:, None], out=dc)
        best = int(np.argmin(dc.sum(axis=0)))
        d2 = dc[:, best].copy()
        picks[c] = cand[best]
    return picks


def _seed(xf: FloatArray, k: int, cfg: ParentConfig) -> tuple[FloatArray, int]:
    """Greedy k-means++ centres picked on a seeded sample, with distances measured in a
    seeded Gaussian random projection to init_dim dimensions (Johnson-Lindenstrauss: the
    picks need distances only roughly, and seeding is memory-bound in d). Returns (centres
    (k, d) in the full space, sample size)."""
    n, d = xf.shape
    rng = np.random.default_rng(cfg.seed)
    m = min(n, k * cfg.init_points_per_centroid)
    sample = np.sort(rng.choice(n, m, replace=False)) if m < n else np.arange(n)
    xs = xf[sample]
    xp = xs
    if 0 < cfg.init_dim < d:
        proj = rng.standard_normal((d, cfg.init_dim), dtype=np.float32)
        xp = xs @ proj
        xp /= np.maximum(np.linalg.norm(xp, axis=1, keepdims=True), 1e-12)
    picks = greedy_kmeanspp(np.ascontiguousarray(xp), k, rng, cfg.init_trials)
    return np.ascontiguousarray(xs[picks]), m


def cluster_parents(x: npt.NDArray[Any], cfg: ParentConfig = ParentConfig()) -> ParentResult:
    """Stage 1: spherical K-means of x ((N, d), L2-normalised, float16/32) into parents.

    K and the drop threshold follow N (see `effective_k`, `effective_min_size`). faiss
    trains on a seeded subsample of at most K * max_points_per_centroid points; then every
    point is assigned to its nearest centroid. stats records the requested and effective K
    and threshold, the seed, the training sample size, the iterations actually run, the
    objective per iteration, parents kept and points covered.
    """
    if cfg.init not in _INIT_METHODS:
        raise KeyError(f"unknown init {cfg.init!r}; valid: {sorted(_INIT_METHODS)}")
    xf = check_unit_rows(x)
    n, d = xf.shape
    k = effective_k(n, cfg)
    min_size = effective_min_size(n, k, cfg)
    ngpu = _gpu_count(cfg)
    train_size = min(n, k * cfg.max_points_per_centroid)
    t0 = time.perf_counter()
    init_centroids = None
    faiss_init = _INIT_METHODS[cfg.init]
    init_size = 0
    if cfg.init == "greedy_kmeans++":
        init_centroids, init_size = _seed(xf, k, cfg)
        faiss_init = "ClusteringInitMethod_RANDOM"  # unused: centroids are given
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    km = faiss.Kmeans(
        d,
        k,
        niter=cfg.niter,
        nredo=cfg.nredo,
        spherical=True,
        seed=cfg.seed,
        max_points_per_centroid=cfg.max_points_per_centroid,
        min_points_per_centroid=1,  # the scaling above already sizes K; no faiss warnings
        early_stop_threshold=cfg.early_stop_threshold,
        init_method=getattr(faiss, faiss_init),
        gpu=ngpu if ngpu else False,
        verbose=False,
    )
    km.train(xf, init_centroids=init_centroids)
    t_train = time.perf_counter() - t0
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids = centroids / np.maximum(norms, 1e-12)
    t1 = time.perf_counter()
    assigned, sims = _nearest(centroids, xf)  # xf checked above: no second 4 B*N*d copy
    t_assign = time.perf_counter() - t1
    sizes = np.bincount(assigned, minlength=k).astype(np.int64)
    kept = sizes >= min_size
    labels = np.where(kept[assigned], assigned, -1).astype(np.int32)
    iter_stats: list[dict[str, Any]] = list(km.iteration_stats or [])
    iters = len(iter_stats) // max(cfg.nredo, 1)
    stats: dict[str, Any] = {
        "n_points": n,
        "dim": d,
        "k_requested": cfg.k,
        "k": k,
        "min_parent_size_requested": cfg.min_parent_size,
        "min_parent_size": min_size,
        "seed": cfg.seed,
        "niter": cfg.niter,
        "iterations_run": iters,
        "train_size": train_size,
        "max_points_per_centroid": cfg.max_points_per_centroid,
        "early_stop_threshold": cfg.early_stop_threshold,
        "init": cfg.init,
        "init_sample": init_size,
        "init_dim": min(cfg.init_dim, d) if cfg.init_dim > 0 else d,
        "gpus": ngpu,
        "objective_per_iter": [float(s["obj"]) for s in iter_stats],
        "mean_similarity": float(sims.mean()),
        "parents_nonempty": int((sizes > 0).sum()),
        "parents_kept": int(kept.sum()),
        "parent_size_min": int(sizes[kept].min()) if kept.any() else 0,
        "parent_size_median": float(np.median(sizes[kept])) if kept.any() else 0.0,
        "parent_size_max": int(sizes.max()),
        "points_kept": int((labels >= 0).sum()),
        "init_seconds": t_init,
        "train_seconds": t_train,
        "assign_seconds": t_assign,
    }
    log.info(
        "parents: N=%d K=%d (asked %d) kept %d with >= %d members, %d iterations on %d points",
        n, k, cfg.k, stats["parents_kept"], min_size, iters, train_size,
    )  # fmt: skip
    return ParentResult(labels, assigned, sims, centroids, sizes, kept, stats)


def cluster_children(
    x: npt.NDArray[Any], parents: npt.NDArray[np.integer], cfg: ChildConfig = ChildConfig()
) -> ChildResult:
    """Stage 2: child clusters inside each parent.

    x: (N, d) L2-normalised; parents: (N,) parent id, negative = dropped (not clustered).
    Exact top-n_neighbors cosine neighbours within each parent, mutual-kNN graph, all
    cliques of child_size nodes; with allow_overlap=False a greedy disjoint subset by mean
    pairwise cosine. stats: counts, coverage (share of clustered points in >= 1 child),
    overlap (children per covered point), children per parent.
    """
    if cfg.child_size < 2 or cfg.child_size > cfg.n_neighbors + 1:
        raise ValueError(
            f"child_size must be in 2..n_neighbors+1, got {cfg.child_size} / {cfg.n_neighbors}"
        )
    xf = check_unit_rows(x)
    n = xf.shape[0]
    par = np.asarray(parents, dtype=np.int64)
    if par.shape != (n,):
        raise ValueError(f"parents must be ({n},), got {par.shape}")
    t0 = time.perf_counter()
    # Work on points reordered by parent (stable, so ties break as in the input order): the
    # gathers of every step then stay inside one parent's block of memory instead of
    # jumping across an N-row array that no longer fits in cache.
    perm = np.argsort(par, kind="stable")
    xs = np.ascontiguousarray(xf[perm])
    nbr, _ = mutual_knn.knn_within_groups(xs, par[perm], cfg.n_neighbors)
    t_knn = time.perf_counter() - t0
    mutual = mutual_knn.mutual_neighbors(nbr)
    local = mutual_knn.cliques(mutual, cfg.child_size, chunk=cfg.chunk)
    score = mutual_knn.mean_pairwise_similarity(xs, local)
    mean_degree = float((mutual < n).sum(axis=1).mean()) if n else 0.0
    del xs, nbr, mutual
    members = np.sort(perm[local], axis=1)
    order = np.lexsort(members.T[::-1])
    members, score = members[order], score[order]
    n_all = members.shape[0]
    if not cfg.allow_overlap and n_all:
        keep = mutual_knn.greedy_disjoint(members, score, n)
        members, score = members[keep], score[keep]
    t_total = time.perf_counter() - t0
    child_parent = par[members[:, 0]].astype(np.int32) if members.size else np.zeros(0, np.int32)
    stats = child_stats(members, child_parent, par)
    stats.update(
        {
            "n_neighbors": cfg.n_neighbors,
            "child_size": cfg.child_size,
            "allow_overlap": cfg.allow_overlap,
            "cliques_found": int(n_all),
            "mean_mutual_degree": mean_degree,
            "knn_seconds": t_knn,
            "total_seconds": t_total,
        }
    )
    log.info(
        "children: %d (of %d cliques), coverage %.3f",
        members.shape[0], n_all, stats["coverage"],
    )  # fmt: skip
    return ChildResult(members, child_parent, score, stats)


def child_stats(
    members: IntArray, child_parent: npt.NDArray[np.int32], parents: IntArray
) -> dict[str, Any]:
    """Coverage, overlap and per-parent counts of a set of children."""
    n = parents.shape[0]
    clustered = int((parents >= 0).sum())
    memberships = np.bincount(members.ravel(), minlength=n) if members.size else np.zeros(n)
    covered = int((memberships > 0).sum())
    kept_parents = np.unique(parents[parents >= 0])
    per_parent = (
        np.bincount(np.searchsorted(kept_parents, child_parent), minlength=kept_parents.size)
        if kept_parents.size
        else np.zeros(0, dtype=np.int64)
    )
    return {
        "children": int(members.shape[0]),
        "points_clustered": clustered,
        "points_covered": covered,
        "coverage": covered / clustered if clustered else 0.0,
        "memberships_per_covered_point": float(memberships[memberships > 0].mean())
        if covered
        else 0.0,
        "share_covered_in_several": float((memberships > 1).sum() / covered) if covered else 0.0,
        "parents_with_children": int((per_parent > 0).sum()),
        "children_per_parent_max": int(per_parent.max()) if per_parent.size else 0,
        "children_per_parent_median": float(np.median(per_parent)) if per_parent.size else 0.0,
    }
