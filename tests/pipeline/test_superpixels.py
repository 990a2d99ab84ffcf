"""SLIC labels and the 176-d descriptor against scikit-image / numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab
from skimage.feature import hog

from pipeline import superpixels as spx
from pipeline.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return generate(SyntheticConfig(height=120, width=160, n_frames=1, seed=4)).frames[0]


def test_slic_labels_compact_and_near_target(frame: np.ndarray) -> None:
    lab = spx.slic_labels(
        frame, n_segments=100, compactness=10, sigma=5, iterations=10, min_size_pct=25
    )
    assert lab.shape == frame.shape[:2] and lab.dtype == np.int32
    k = int(lab.max()) + 1
    assert lab.min() == 0 and len(np.unique(lab)) == k  # 0..K-1, no gaps
    assert 50 <= k <= 200


def test_compact_labels() -> None:
    out = spx.compact_labels(np.array([[5, 5, 9], [2, 9, 2]]))
    np.testing.assert_array_equal(out, [[1, 1, 2], [0, 2, 0]])


@pytest.mark.parametrize("norm", ["L1", "L2-Hys"])
def test_hog_matches_skimage(norm: str) -> None:
    rng = np.random.default_rng(0)
    patches = rng.random((6, 15, 15)).astype(np.float32)
    ours = spx._hog(patches, 6, 5, norm)  # type: ignore[arg-type]
    ref = np.stack(
        [
            hog(
                p.astype(np.float64),
                orientations=6,
                pixels_per_cell=(5, 5),
                cells_per_block=(3, 3),
                block_norm=norm,
            )
            for p in patches
        ]
    )
    assert ours.shape == (6, 54)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_descriptor_layout_and_reference(frame: np.ndarray) -> None:
    lab = spx.slic_labels(
        frame, n_segments=60, compactness=10, sigma=5, iterations=10, min_size_pct=25
    )
    d = spx.describe(frame, lab, patch=15, hog_bins=6, hog_cell=5, hog_norm="L1", colour_bins=20)
    k = int(lab.max()) + 1
    assert d.shape == (k, 176) == (k, spx.descriptor_dim(6, 3, 20))
    # Reference for one superpixel, written the slow way (the original's loop body).
    j = k // 2
    ys, xs = np.nonzero(lab == j)
    y0 = int((ys.min() + ys.max() - 15) / 2)
    x0 = int((xs.min() + xs.max() - 15) / 2)
    yc, xc = min(max(y0, 0), 120 - 15), min(max(x0, 0), 160 - 15)
    patch = frame[yc : yc + 15, xc : xc + 15]
    grey = patch.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721]) / 255.0
    h = hog(grey, orientations=6, pixels_per_cell=(5, 5), cells_per_block=(3, 3), block_norm="L1")
    arr = np.concatenate(
        [patch.reshape(-1, 3).astype(np.float64), rgb2lab(patch).reshape(-1, 3)], axis=1
    )
    ranges = [(0, 255)] * 3 + [(0, 100), (-128, 127), (-128, 127)]
    col = [np.histogram(arr[:, c], bins=20, range=r)[0] / 225.0 for c, r in enumerate(ranges)]
    ref = np.concatenate([h, *col, [y0 / 120, x0 / 160]])
    np.testing.assert_allclose(d[j, :54], ref[:54], atol=1e-4)
    np.testing.assert_allclose(d[j, 54:114], ref[54:114], atol=1e-6)  # RGB exact
    # LAB from OpenCV vs scikit-image may move a value across a bin edge: compare loosely.
    assert np.abs(d[j, 114:174] - ref[114:174]).sum() <= 6 * 2 * 2 / 225.0 + 1e-6
    np.testing.assert_allclose(d[j, 174:], ref[174:], atol=1e-6)
    np.testing.assert_allclose(d[:, 54:174].reshape(k, 6, 20).sum(axis=2), 1.0, atol=1e-5)


def test_region_adjacency_and_means() -> None:
    lab = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]], np.int32)
    adj = spx.region_adjacency(lab)
    assert {tuple(p) for p in adj} == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}
    vals = np.arange(9, dtype=np.float64).reshape(3, 3)
    np.testing.assert_allclose(spx.region_means(lab, vals, 4), [0.5, 3.5, 13 / 3, 7.5])
    np.testing.assert_array_equal(spx.region_areas(lab, 4), [2, 2, 3, 2])
