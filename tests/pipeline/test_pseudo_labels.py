"""Pseudo-labels by clustering teacher features: planted clusters come back, k follows N,
whitening is the textbook projection."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features import apply_pca, fit_pca
from pipeline.pseudo_labels import PseudoLabelConfig, cluster_pseudo_labels
from pipeline.synthetic import sphere_blobs


def _purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of points whose cluster's majority class is their class."""
    hits = 0
    for c in np.unique(labels):
        hits += np.bincount(truth[labels == c]).max()
    return hits / labels.size


def test_planted_clusters_are_recovered_and_whitening_undoes_anisotropy() -> None:
    # 40 planted blobs spanning 32 dims, then coordinates scaled 10 .. 0.3: a teacher whose
    # large-variance directions are not the informative ones. Whitening restores the blobs.
    x, y = sphere_blobs(n_blobs=40, per=50, d=32, spread=0.8, seed=2)
    x = x * np.geomspace(10, 0.3, 32).astype(np.float32)
    cfg = PseudoLabelConfig(k=2000, points_per_cluster=50)
    res = cluster_pseudo_labels(x, cfg)
    assert res.stats["k"] == 40 and res.stats["pca_dim"] == 32 and res.stats["whiten"]  # 2000/20
    assert res.labels.shape == (2000,) and res.labels.dtype == np.int32
    plain = cluster_pseudo_labels(x, PseudoLabelConfig(k=2000, points_per_cluster=50, whiten=False))
    assert _purity(res.labels, y) > 0.9  # measured 0.948
    assert _purity(res.labels, y) > _purity(plain.labels, y) + 0.1  # measured 0.756 unwhitened
    assert (res.cluster_size == res.sizes[res.labels]).all() and res.sizes.sum() == 2000
    assert (res.distance >= -1e-5).all() and (res.distance <= 2 + 1e-5).all()


def test_k_is_capped_by_n_and_small_inputs_keep_fewer_components() -> None:
    x, _ = sphere_blobs(n_blobs=3, per=10, d=16, seed=0)
    res = cluster_pseudo_labels(x, PseudoLabelConfig(k=2000, points_per_cluster=640))
    assert res.stats["k"] == 1 and (res.labels == 0).all()  # 30 // 640 -> at least 1
    res = cluster_pseudo_labels(x, PseudoLabelConfig(k=5, points_per_cluster=1, points_per_dim=1))
    assert res.stats["k"] == 5 and res.stats["pca_dim"] == 16  # min(256, D, N - 1)
    res = cluster_pseudo_labels(x, PseudoLabelConfig(k=5, points_per_cluster=1))
    assert res.stats["pca_dim"] == 1  # whitened components <= N / 20


def test_whitening_keeps_few_components_on_small_inputs() -> None:
    # 8 blobs in 300-d, 800 points: 256 whitened components would give the ~250 noise
    # directions the same variance as the 7 that separate the blobs (measured purity 0.23);
    # N / points_per_dim = 40 components keep them apart
    x, y = sphere_blobs(n_blobs=8, per=100, d=300, spread=0.5, seed=2)
    res = cluster_pseudo_labels(x, PseudoLabelConfig(points_per_cluster=100))
    assert res.stats["pca_dim"] == 40 and res.stats["k"] == 8
    assert _purity(res.labels, y) > 0.95


def test_zero_features_still_get_a_label() -> None:
    x, _ = sphere_blobs(n_blobs=2, per=20, d=8, seed=1)
    x[:3] = 0.0
    res = cluster_pseudo_labels(x, PseudoLabelConfig(k=2, points_per_cluster=1, pca_dim=0))
    assert res.stats["zero_features"] == 3 and res.labels.shape == (40,)


def test_bad_features_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="NaN or inf"):
        cluster_pseudo_labels(np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match=r"\(N >= 2, D\)"):
        cluster_pseudo_labels(np.zeros((1, 3)))


def test_whitening_divides_components_by_their_standard_deviation() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(400, 6)) * [5, 3, 1, 0.5, 0.2, 0.1]).astype(np.float32)
    pca = fit_pca(x, 4)
    z = (x - pca.mean) @ pca.matrix.T
    ratio = z.var(axis=0) / pca.eigenvalues  # faiss's eigenvalues are sums, not means
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)  # one scale: L2 removes it
    w = z / np.sqrt(pca.eigenvalues)
    np.testing.assert_allclose(w.std(axis=0), w.std(axis=0)[0], rtol=1e-3)  # equal variance
    expected = w / np.linalg.norm(w, axis=1, keepdims=True)
    np.testing.assert_allclose(apply_pca(pca, x, whiten=True), expected, atol=1e-5)
    assert not np.allclose(apply_pca(pca, x), expected, atol=1e-2)
