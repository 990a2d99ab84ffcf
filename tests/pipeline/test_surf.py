"""Fast-Hessian detector: known blobs, invariances, threshold, OpenCV agreement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.surf import Keypoints, SurfConfig, detect, opencv_surf_available


def _blobs(centres: list[tuple[int, int, int]], h: int = 240, w: int = 320) -> np.ndarray:
    img = np.full((h, w), 200, np.uint8)
    for x, y, r in centres:
        cv2.circle(img, (x, y), r, 30, -1)
    return img


def _texture(h: int = 256, w: int = 320, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((h, w)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 2.5)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def _matched(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """For each point of a, whether some point of b lies within tol px."""
    if len(b) == 0:
        return np.zeros(len(a), bool)
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return d.min(axis=1) <= tol


def test_flat_image_has_no_keypoints() -> None:
    assert len(detect(np.full((120, 160), 128, np.uint8))) == 0


def test_blobs_give_keypoints_at_their_centres_with_matching_scale() -> None:
    blobs = [(80, 70, 8), (220, 150, 16)]
    kp = detect(_blobs(blobs))
    assert len(kp) >= 2
    # The strongest keypoint near each blob sits on its centre (sub-pixel refined).
    sizes = []
    for x, y, _ in blobs:
        near = np.linalg.norm(kp.xy - np.array([x, y]), axis=1) < 3
        assert near.any(), (x, y, kp.xy)
        best = int(np.argmax(np.where(near, kp.response, -np.inf)))
        assert np.linalg.norm(kp.xy[best] - np.array([x, y])) < 0.75
        assert kp.laplacian[best] == 1  # dark blob on a bright background: positive trace
        sizes.append(float(kp.size[best]))
    # Doubling the radius doubles the detected scale (filter size) within 25%.
    assert sizes[1] / sizes[0] == pytest.approx(2.0, rel=0.25)


def test_rgb_input_equals_grey_input() -> None:
    grey = _texture()
    rgb = np.repeat(grey[..., None], 3, axis=2)
    a, b = detect(grey), detect(rgb)
    np.testing.assert_array_equal(a.xy, b.xy)


def test_translation_moves_keypoints_exactly() -> None:
    img = _texture(320, 384)
    shift = 16  # a multiple of every octave's sampling step (1, 2, 4, 8)
    a = detect(img[shift:, shift:])
    b = detect(img[:-shift, :-shift])
    # Away from the borders both crops see the same pixels, so the same keypoints.
    inner = (a.xy > 60).all(1) & (a.xy < np.array([384 - shift - 60, 320 - shift - 60])).all(1)
    pa = a.xy[inner] + shift
    assert len(pa) > 50
    assert _matched(pa, b.xy, 1e-3).mean() > 0.97


def test_rotation_by_90_degrees_keeps_positions() -> None:
    img = _texture(256, 256, seed=3)
    a = detect(img)
    b = detect(np.ascontiguousarray(np.rot90(img)))  # (x, y) -> (y, W - 1 - x)
    keep = (a.octave <= 1) & (a.xy > 40).all(1) & (a.xy < 216).all(1)
    mapped = np.stack([a.xy[keep, 1], 255 - a.xy[keep, 0]], axis=1)
    assert len(mapped) > 30
    # Box filters are symmetric under 90-degree rotation; the sampling grid of octave 1
    # differs by at most one step, so allow 1 px.
    assert _matched(mapped, b.xy, 1.0).mean() > 0.9


def test_threshold_is_monotone() -> None:
    img = _texture(seed=5)
    counts = []
    prev: Keypoints | None = None
    for thr in (100.0, 200.0, 800.0, 3000.0):
        kp = detect(img, SurfConfig(hessian_threshold=thr))
        assert (kp.response > thr).all()
        if prev is not None:
            # Every keypoint above the higher threshold was found at the lower one too.
            assert _matched(kp.xy, prev.xy, 1e-4).all()
        counts.append(len(kp))
        prev = kp
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_keypoints_are_sorted_by_response_and_capped() -> None:
    kp = detect(_texture(), SurfConfig(max_keypoints=20))
    assert len(kp) == 20
    assert (np.diff(kp.response) <= 0).all()


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="uint8"):
        detect(np.zeros((10, 10), np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hessian_threshold"):
        SurfConfig(hessian_threshold=-1)


@pytest.mark.skipif(not opencv_surf_available(), reason="needs a non-free OpenCV build")
def test_agrees_with_opencv_surf() -> None:
    img = _texture(300, 400, seed=7)
    ours = detect(img)
    ref = detect(img, use_opencv=True)
    assert len(ref) > 50
    assert abs(len(ours) - len(ref)) <= 0.05 * len(ref)
    assert _matched(ref.xy, ours.xy, 0.5).mean() > 0.95


def test_opencv_path_raises_without_nonfree_build() -> None:
    if opencv_surf_available():
        pytest.skip("non-free build present")
    with pytest.raises(RuntimeError, match="non-free"):
        detect(_texture(), use_opencv=True)


def _reference_det(img: np.ndarray, size: int, top: int, left: int) -> float:
    """Hessian determinant of OpenCV's surf.cpp at one filter position, written out
    directly: scaled 9x9 Haar patterns, each rectangle's sum over its area."""
    ii = cv2.integral(img).astype(np.int64)

    def haar(pattern: tuple[tuple[int, int, int, int, int], ...]) -> float:
        r = size / 9.0
        total = 0.0
        for x1, y1, x2, y2, wt in pattern:
            a, b, c, d = round(r * x1), round(r * y1), round(r * x2), round(r * y2)
            s = (ii[top + d, left + c] - ii[top + b, left + c] - ii[top + d, left + a]
                 + ii[top + b, left + a])  # fmt: skip
            total += s * wt / ((c - a) * (d - b))
        return total

    dx = haar(((0, 2, 3, 7, 1), (3, 2, 6, 7, -2), (6, 2, 9, 7, 1)))
    dy = haar(((2, 0, 7, 3, 1), (2, 3, 7, 6, -2), (2, 6, 7, 9, 1)))
    dxy = haar(((1, 1, 4, 4, 1), (5, 1, 8, 4, -1), (1, 5, 4, 8, -1), (5, 5, 8, 8, 1)))
    return dx * dy - 0.81 * dxy * dxy


@pytest.mark.parametrize(("size", "step"), [(9, 1), (15, 1), (27, 1), (30, 2), (60, 4)])
def test_layer_matches_a_direct_implementation(size: int, step: int) -> None:
    from pipeline.surf import _layer

    img = _texture(96, 120, seed=11)
    h, w = img.shape
    det, _ = _layer(img, size, step, h // step, w // step)
    margin = (size // 2) // step
    rng = np.random.default_rng(0)
    n_i, n_j = 1 + (h - size) // step, 1 + (w - size) // step
    for i, j in zip(rng.integers(0, n_i, 40), rng.integers(0, n_j, 40), strict=True):
        ref = _reference_det(img, size, int(i) * step, int(j) * step)
        assert det[i + margin, j + margin] == pytest.approx(ref, rel=1e-4, abs=1e-2)


def test_detect_matches_a_per_pixel_reference() -> None:
    """Strict 3x3x3 maxima + one Newton step, written as loops (OpenCV's findMaximaInLayer
    and interpolateKeypoint), on the layers: same keypoints as the vectorised code."""
    from pipeline.surf import _layer

    img = _texture(96, 128, seed=12)
    h, w = img.shape
    cfg = SurfConfig(hessian_threshold=100.0, n_octaves=2)
    ref = []
    for octave in range(cfg.n_octaves):
        step = 1 << octave
        sizes = [(9 + 6 * layer) << octave for layer in range(cfg.n_octave_layers + 2)]
        dets = [_layer(img, s, step, h // step, w // step)[0] for s in sizes]
        for li in range(1, len(sizes) - 1):
            margin = (sizes[li + 1] // 2) // step + 1
            d0, d1, d2 = dets[li - 1], dets[li], dets[li + 1]
            for i in range(margin, h // step - margin):
                for j in range(margin, w // step - margin):
                    v = d1[i, j]
                    if v <= cfg.hessian_threshold:
                        continue
                    cube = np.stack([d[i - 1 : i + 2, j - 1 : j + 2] for d in (d0, d1, d2)])
                    if (cube >= v).sum() > 1:  # strictly greater than all 26 neighbours
                        continue
                    n = cube.astype(np.float64).reshape(3, 9)
                    b = -np.array([n[1, 5] - n[1, 3], n[1, 7] - n[1, 1], n[2, 4] - n[0, 4]]) / 2
                    dxy = (n[1, 8] - n[1, 6] - n[1, 2] + n[1, 0]) / 4
                    dxs = (n[2, 5] - n[2, 3] - n[0, 5] + n[0, 3]) / 4
                    dys = (n[2, 7] - n[2, 1] - n[0, 7] + n[0, 1]) / 4
                    a = np.array(
                        [
                            [n[1, 3] - 2 * n[1, 4] + n[1, 5], dxy, dxs],
                            [dxy, n[1, 1] - 2 * n[1, 4] + n[1, 7], dys],
                            [dxs, dys, n[0, 4] - 2 * n[1, 4] + n[2, 4]],
                        ]
                    )
                    x = np.linalg.solve(a, b)
                    if not (np.abs(x) <= 1).all():
                        continue
                    half = (sizes[li] // 2) // step
                    cx = step * (j - half) + (sizes[li] - 1) / 2 + x[0] * step
                    cy = step * (i - half) + (sizes[li] - 1) / 2 + x[1] * step
                    ref.append((cx, cy))
    ours = detect(img, cfg)
    assert len(ref) > 20
    assert len(ours) == len(ref)
    assert _matched(np.array(ref), ours.xy, 1e-3).all()


def test_reused_scratch_gives_the_same_keypoints() -> None:
    """Scratch layers are reused from image to image and only their borders are zeroed:
    an image detected after another of the same size gives what it gives alone."""
    a, b = _texture(120, 160, seed=3), _texture(120, 160, seed=4)
    a[:, :40] = 0  # a flat strip: a stale response there would show
    cfg = SurfConfig(hessian_threshold=50.0, n_octaves=3)
    alone = detect(a, cfg)
    detect(b, cfg)
    again = detect(a, cfg)
    assert len(alone) > 10
    for f in ("xy", "size", "response", "octave", "laplacian"):
        assert np.array_equal(getattr(alone, f), getattr(again, f))
