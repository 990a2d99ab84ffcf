"""Gradient edges and motion edges on images whose boundaries are known."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import edges
from pipeline.synthetic import SyntheticConfig, generate


def _step(h: int = 60, w: int = 80) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 40, 40)
    img[:, w // 2 :] = (40, 40, 200)
    return img


def test_gradient_edges_peak_on_the_step_with_its_orientation() -> None:
    e = edges.gradient_edges(_step(), edges.EdgeConfig())
    assert e.strength.dtype == np.float32 and e.strength.shape == (60, 80)
    assert 0 <= e.strength.min() and e.strength.max() <= 1
    rows = e.strength[10:50]
    # thinned: one strong column per row, at the step (between columns 39 and 40)
    assert set(np.argmax(rows, axis=1).tolist()) <= {39, 40}
    assert (np.count_nonzero(rows > 0.5, axis=1) == 1).all()
    assert rows.max() > 0.9  # a large colour step is a strong edge
    col = int(np.argmax(rows[0]))
    # the step's edge is vertical: tangent angle pi/2
    assert abs(float(e.orientation[30, col]) - np.pi / 2) < 0.05


def test_flat_image_has_no_edges() -> None:
    e = edges.gradient_edges(np.full((40, 50, 3), 120, np.uint8), edges.EdgeConfig())
    assert float(e.strength.max()) == 0.0


def test_bad_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        edges.gradient_edges(np.zeros((40, 50, 3), np.float32), edges.EdgeConfig())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ"):
        edges.motion_edges(_step(), _step(40, 80), edges.EdgeConfig())


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask > 0
    b = np.zeros_like(m)
    b[:, 1:] |= m[:, 1:] != m[:, :-1]
    b[1:, :] |= m[1:, :] != m[:-1, :]
    return b


def _near(b: np.ndarray, r: int) -> np.ndarray:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(b.astype(np.uint8), k) > 0


@pytest.mark.parametrize("pan", [(0.0, 0.0), (1.5, 0.5)])
def test_motion_edges_follow_the_moving_object_with_or_without_pan(pan: tuple) -> None:
    cfg = edges.EdgeConfig(superpixels=300)
    scores = []
    for seed in range(6):  # objects at several places, some near the frame border
        v = generate(SyntheticConfig(height=180, width=240, n_frames=2, object_size=70,
                                     speed=3.0, camera_pan=pan, seed=seed,
                                     object_textures=("noise",)))  # fmt: skip
        m, verdict = edges.motion_edges_verdict(v.frames[0], v.frames[1], cfg)
        assert verdict.kept and m is not None, verdict
        truth = _boundary(v.masks[0])
        strong = m.strength > 0.3
        g = edges.gradient_edges(v.frames[0], cfg).strength > 0.3
        scores.append(
            (
                np.count_nonzero(strong & _near(truth, 4)) / max(np.count_nonzero(strong), 1),
                np.count_nonzero(truth & _near(strong, 4)) / np.count_nonzero(truth),
                np.count_nonzero(g & _near(truth, 4)) / max(np.count_nonzero(g), 1),
            )
        )
    precision, recall, g_precision = np.mean(scores, axis=0)
    # the strong motion edges lie on the object's outline (the background's texture and
    # the camera pan give none) and find most of it; texture makes gradient edges
    # unselective
    assert precision > 0.8 and recall > 0.7, scores
    assert g_precision < 0.5 * precision, scores


def test_static_pair_is_skipped_as_too_small() -> None:
    v = generate(SyntheticConfig(height=120, width=160, n_frames=2, mode="static", seed=1))
    m, verdict = edges.motion_edges_verdict(v.frames[0], v.frames[1], edges.EdgeConfig())
    assert m is None and verdict.reason == "too_small"


def test_all_moving_pair_is_skipped_as_too_uniform() -> None:
    v = generate(SyntheticConfig(height=120, width=160, n_frames=2, mode="all_moving",
                                 object_size=40, speed=3.0, seed=2))  # fmt: skip
    m, verdict = edges.motion_edges_verdict(v.frames[0], v.frames[1], edges.EdgeConfig())
    assert m is None and verdict.reason == "too_uniform", verdict
