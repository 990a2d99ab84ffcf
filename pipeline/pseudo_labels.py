"""Pseudo-labels by clustering a teacher's features (Noroozi, Vinjimoor, Favaro & Pirsiavash,
CVPR 2018, "Boosting self-supervised learning via knowledge transfer", section 4).

Features of a teacher (a trained network's layer, or HOG) on N images are PCA-reduced to
``pca_dim`` = 256 components and whitened, L2-normalised, and clustered by K-means into k
clusters (k = 2000 in the paper, on the 1.28M ImageNet images: ~640 images per cluster). The
cluster index of an image is its pseudo-label; a student network trained from scratch to
predict it is the transferred representation.

K follows N like ``ClusterParents``: k_used = min(k, N / points_per_cluster), so a small run
keeps the paper's images-per-cluster ratio instead of a few images per class. Clustering is
the project's faiss spherical K-means (``pipeline.clustering.cluster_parents``, greedy
k-means++ seeding), with no cluster dropped: every image gets a label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.clustering import ParentConfig, cluster_parents
from pipeline.features import Pca, apply_pca, fit_pca, l2_normalize


@dataclass(frozen=True)
class PseudoLabelConfig:
    k: int = 2000  # Noroozi et al. 2018: 2000 clusters (upper bound; see points_per_cluster)
    points_per_cluster: int = 640  # the paper's ratio, 1.28M ImageNet images / 2000
    pca_dim: int = 256  # Noroozi et al. 2018: PCA to 256-d, whitened, then L2-normalised
    whiten: bool = True  # Noroozi et al. 2018 (their code: faiss PCAMatrix eigen_power -0.5)
    # Whitened components <= N / points_per_dim: whitening gives every kept component unit
    # variance, so with components ~ N the noise ones swamp the clusters (measured: dev
    # labelled crops, HOG, N=1375: 256-d whitened purity 0.77 vs 0.96 at 64-d; 160 synthetic
    # frames: 159-d 0.37 vs 0.93 at 8-d). 256-d needs N >= 5120: the paper's 1.28M unaffected
    points_per_dim: int = 20
    niter: int = 20  # Lloyd iterations (pipeline.clustering.ParentConfig's measured choice)
    max_points_per_centroid: int = 256  # faiss's default training sample per centroid
    seed: int = 1234  # PCA sample and K-means seeding


@dataclass(frozen=True)
class PseudoLabels:
    """labels: (N,) int32 in [0, k). distance: (N,) float32, 1 - cosine to the centroid in
    the whitened space. cluster_size: (N,) int64, members of the row's cluster. sizes: (k,)
    int64. centroids: (k, pca_dim) float32 unit rows. pca: the projection applied."""

    labels: npt.NDArray[np.int32]
    distance: npt.NDArray[np.float32]
    cluster_size: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float32]
    pca: Pca | None
    stats: dict[str, Any] = field(default_factory=dict)


def cluster_pseudo_labels(
    features: npt.NDArray[Any], cfg: PseudoLabelConfig = PseudoLabelConfig()
) -> PseudoLabels:
    """(N, D) finite teacher features (any scale) -> pseudo-labels of the N rows.

    The PCA keeps min(pca_dim, D, N - 1) components, and when whitening at most
    N / points_per_dim; ``pca_dim`` 0 (or >= D without whitening) skips the projection
    (features only L2-normalised).
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"features must be (N >= 2, D) finite numbers, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    if cfg.k < 1 or cfg.points_per_cluster < 1:
        raise ValueError(
            f"k and points_per_cluster must be >= 1, got {cfg.k}, {cfg.points_per_cluster}"
        )
    n, d = x.shape
    dim = min(cfg.pca_dim, d, n - 1)
    if cfg.whiten:
        dim = min(dim, max(1, n // max(cfg.points_per_dim, 1)))
    pca: Pca | None = None
    if cfg.pca_dim > 0 and dim >= 1 and (dim < d or cfg.whiten):
        pca = fit_pca(x, dim, seed=cfg.seed)
        y = apply_pca(pca, x, whiten=cfg.whiten)
    else:
        y = l2_normalize(x)
    zero = np.linalg.norm(y, axis=1) < 0.5  # an all-zero row (e.g. HOG of a flat image)
    if zero.any():  # has no direction: give it a fixed one so it still gets a label
        y[zero] = 0.0
        y[zero, 0] = 1.0
    pcfg = ParentConfig(
        k=cfg.k, points_per_parent=cfg.points_per_cluster, min_parent_size=1, niter=cfg.niter,
        max_points_per_centroid=cfg.max_points_per_centroid, seed=cfg.seed,
    )  # fmt: skip
    res = cluster_parents(y, pcfg)
    labels = res.assigned.astype(np.int32)
    sizes = np.bincount(labels, minlength=res.centroids.shape[0]).astype(np.int64)
    stats = {
        "n": n,
        "input_dim": d,
        "pca_dim": int(pca.matrix.shape[0]) if pca is not None else 0,
        "whiten": bool(cfg.whiten and pca is not None),
        "k_requested": cfg.k,
        "k": int(res.centroids.shape[0]),
        "empty_clusters": int((sizes == 0).sum()),
        "largest_cluster": int(sizes.max()),
        "zero_features": int(zero.sum()),
        "kmeans": {k: v for k, v in res.stats.items() if not isinstance(v, np.ndarray)},
    }
    return PseudoLabels(
        labels=labels,
        distance=(1.0 - res.similarity).astype(np.float32),
        cluster_size=sizes[labels],
        sizes=sizes,
        centroids=res.centroids,
        pca=pca,
        stats=stats,
    )
