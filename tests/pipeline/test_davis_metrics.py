"""J and F with the DAVIS conventions on masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import davis_metrics as dm


def _square(y: int, x: int, s: int = 40, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[y : y + s, x : x + s] = 1
    return m


def test_region_j() -> None:
    a, b = _square(10, 10), _square(10, 30)  # 40x40 squares overlapping 40x20
    assert dm.region_j(a, b) == pytest.approx(800 / 2400)
    z = np.zeros_like(a)
    assert dm.region_j(z, z) == 1.0 and dm.region_j(a, z) == 0.0


def test_tolerance_is_davis_eight_pixels_at_480p() -> None:
    assert dm.tolerance_px((480, 854)) == 8
    assert dm.tolerance_px((120, 160)) == 2  # ceil(0.008 * 200) = ceil(1.6)


def test_seg2bmap_is_one_pixel_wide() -> None:
    b = dm.seg2bmap(_square(10, 10))
    # DAVIS marks a pixel whose right / lower / lower-right neighbour differs: the top edge
    # falls on the row above the square, the bottom edge on its last row
    assert b[9, 10:50].all() and b[49, 10:50].all()
    assert not b[11:48, 11:48].any() and not b[:8].any()  # not the interior, not elsewhere
    assert (b[:, 30].sum(), b[30, :].sum()) == (2, 2)  # one pixel per crossing


def test_boundary_f_within_and_beyond_tolerance() -> None:
    a = _square(30, 30)
    assert dm.boundary_f(a, a) == 1.0
    assert dm.boundary_f(_square(30, 32), a) == 1.0  # 2 px shift: within ceil(1.6) = 2 px
    shifted = dm.boundary_f(_square(30, 36), a)  # 6 px: only the horizontal edges match
    assert 0.3 < shifted < 0.7
    assert dm.boundary_f(_square(70, 110), _square(0, 0)) == 0.0


def test_boundary_empty_conventions() -> None:
    z, a = np.zeros((50, 50), np.uint8), _square(5, 5, 20, (50, 50))
    assert dm.boundary_pr(dm.seg2bmap(z), dm.seg2bmap(z), 2) == (1.0, 1.0)
    assert dm.boundary_pr(dm.seg2bmap(z), dm.seg2bmap(a), 2) == (1.0, 0.0)
    assert dm.boundary_pr(dm.seg2bmap(a), dm.seg2bmap(z), 2) == (0.0, 1.0)
    assert dm.boundary_f(z, a) == 0.0


def test_sequence_excludes_first_and_last_frames() -> None:
    gt = np.stack([_square(20, 20 + 5 * t) for t in range(6)])
    pred = gt.copy()
    pred[0] = 0  # wrong first and last frames do not count
    pred[-1] = 0
    s = dm.score_sequence(pred, gt)
    assert s.n_frames_scored == 4 and s.j_mean == 1.0 and s.f_mean == 1.0
    assert s.j_recall == 1.0
    pred[2] = 0  # one of the four scored frames empty
    s = dm.score_sequence(pred, gt)
    assert s.j_mean == pytest.approx(0.75) and s.j_recall == pytest.approx(0.75)


def test_sequence_averages_objects() -> None:
    gt = np.stack([_square(10, 10) + 2 * _square(60, 100) for _ in range(4)])
    pred = gt.copy()
    pred[1:3][pred[1:3] == 2] = 0  # object 2 lost in the scored frames
    s = dm.score_sequence(pred, gt)
    np.testing.assert_allclose(s.j_per_object, [1.0, 0.0])
    assert s.j_mean == pytest.approx(0.5)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        dm.region_j(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="no object"):
        dm.score_sequence(np.zeros((3, 4, 4), np.uint8), np.zeros((3, 4, 4), np.uint8))


def test_edge_boundary_pr_over_thresholds() -> None:
    gt = _square(30, 30)
    strength = np.where(dm.seg2bmap(gt), 0.8, 0.0).astype(np.float32)
    strength[5, 5:100] = 0.4  # a weaker edge elsewhere: a false positive below 0.5
    pr = dm.edge_boundary_pr(strength, gt, np.array([0.3, 0.5, 0.9]))
    np.testing.assert_allclose(pr[1], [1.0, 1.0])
    assert pr[0, 0] < 0.7 and pr[0, 1] == 1.0
    assert tuple(pr[2]) == (1.0, 0.0)  # nothing above 0.9
