"""Feature sources and PCA; children of synthetic object patches are pure."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import features
from pipeline.clustering import ParentConfig, cluster_children, cluster_parents
from pipeline.features import FeatureConfig, apply_pca, build_source, embed, fit_pca
from pipeline.shapes import ShapeConfig, shape_patches


@pytest.fixture(scope="module")
def shapes() -> tuple[np.ndarray, np.ndarray]:
    return shape_patches(ShapeConfig(n_per_kind=50, seed=3))


def test_unknown_source_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="hog"):
        build_source(FeatureConfig(source="nope"))


def test_registration_is_one_call() -> None:
    features.register_source("constant_test", "pipeline.features:HogSource")
    try:
        assert "constant_test" in features.source_names()
        src = build_source(FeatureConfig(source="constant_test"))
        assert src.dim == 4356
    finally:
        features._REGISTRY.pop("constant_test")
    with pytest.raises(ValueError, match="module:function"):
        features.register_source("bad", "no_colon")


def test_hog_embedding_normalised_float16_and_batch_invariant(shapes) -> None:  # type: ignore[no-untyped-def]
    p, _ = shapes
    src = build_source(FeatureConfig())
    a = embed(p[:20], src, batch_size=7)
    b = embed(p[:20], src, batch_size=20)
    assert a.dtype == np.float16 and a.shape == (20, 4356)
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(np.linalg.norm(a.astype(np.float32), axis=1), 1.0, atol=2e-3)
    with pytest.raises(ValueError, match="uint8"):
        embed(p[:2].astype(np.float32), src)


def test_children_of_shape_patches_are_pure(shapes) -> None:  # type: ignore[no-untyped-def]
    p, y = shapes
    f = embed(p, build_source(FeatureConfig()))
    r = cluster_parents(f, ParentConfig(k=6, points_per_parent=20, min_parent_size=10))
    c = cluster_children(f, r.labels)
    assert c.stats["children"] >= 30
    assert len(np.unique(y[c.members[:, 0]])) == 6  # every kind yields children
    assert (y[c.members] == y[c.members[:, :1]]).all()


def test_pca_matches_projection_and_keeps_variance_order() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16)) * np.linspace(3, 0.1, 16)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    pca = fit_pca(x, 4, seed=1)
    assert (np.diff(pca.eigenvalues) <= 0).all()
    y = apply_pca(pca, x)
    assert y.shape == (500, 4)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    again = features.Pca.from_arrays(pca.arrays())
    assert apply_pca(again, x).tobytes() == y.tobytes()
    with pytest.raises(ValueError, match="PCA dim"):
        fit_pca(x, 17)


def test_pipeline_features_imports_no_network() -> None:
    """Compute does not depend on networks: pipeline.features never imports models."""
    import subprocess
    import sys

    code = "import sys, pipeline.features; print(sorted(m for m in sys.modules if m.startswith('models')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
