"""KCF tracking and track validity on synthetic clips with known boxes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.tracking import (
    TrackingConfig,
    colour_hist,
    follow,
    inside_fraction,
    iou,
    ncc,
    track,
)
from tests.mining_fixtures import clip

CFG = TrackingConfig(track_length=30)


@pytest.mark.parametrize("seed", [0, 1, 3, 4])
def test_tracks_of_a_moving_object_end_on_it(seed: int) -> None:
    frames, gt, _ = clip(n_frames=31, object_size=100, speed=1.37, camera_pan=(1.0, 0.5),
                         seed=seed)  # fmt: skip
    r = track(frames, gt[0, 0], CFG)
    assert r.boxes.shape == (31, 4)
    assert np.allclose(r.boxes[0], gt[0, 0])
    assert r.kept, (r.reason, r.fb_iou, r.min_step_similarity, r.end_similarity)
    assert iou(r.boxes[-1], gt[-1, 0]) >= 0.5
    assert r.crop_a.shape == r.crop_b.shape == (96, 96, 3)
    assert 0.0 < r.confidence <= 1.0 and r.fb_iou >= CFG.min_fb_iou
    assert r.end_match >= CFG.min_end_match and np.isnan(r.drift)  # drift is off by default
    # Without the backward KCF pass, and with the Median-Flow drift check: kept too.
    fast = track(frames, gt[0, 0], TrackingConfig(track_length=30, backward="none", max_drift=0.3))
    assert fast.kept and np.isnan(fast.fb_iou) and fast.drift <= 0.3


@pytest.mark.parametrize("seed", [2, 3])
def test_object_leaving_the_frame_is_dropped_as_left_frame(seed: int) -> None:
    frames, gt, _ = clip(n_frames=31, object_size=80, speed=8.0, bounce=False, seed=seed)
    assert np.isnan(gt[-1, 0]).all()  # the object is gone at the A' frame
    r = track(frames, gt[0, 0], CFG)
    assert not r.kept and r.reason == "left_frame"
    # Either its box shrank against the border, or KCF lost it while touching the border.
    assert r.min_inside < CFG.min_inside or r.frozen_tail >= CFG.max_frozen


def test_dropped_forward_track_skips_the_backward_pass() -> None:
    """left_frame / kcf_lost are decided by the forward track: no backward
    pass (fb_iou NaN, confidence 0) unless backward_on_dropped asks for it; the reason is the
    same either way."""
    frames, gt, _ = clip(n_frames=31, object_size=80, speed=8.0, bounce=False, seed=2)
    cfg = TrackingConfig(track_length=30)
    r = track(frames, gt[0, 0], cfg)
    assert r.reason == "left_frame" and np.isnan(r.fb_iou) and np.isnan(r.back_box).all()
    assert r.confidence == 0.0
    full = track(frames, gt[0, 0], dataclasses.replace(cfg, backward_on_dropped=True))
    assert full.reason == "left_frame" and 0.0 <= full.fb_iou <= 1.0
    assert np.array_equal(full.boxes, r.boxes) and full.min_inside == r.min_inside


def test_occluded_object_is_dropped() -> None:
    frames, gt, _ = clip(n_frames=31, object_size=80, speed=2.0, seed=1)
    # A static, differently coloured occluder over where the object is from frame 10 on.
    x, y, w, h = (int(v) for v in gt[10, 0])
    occluded = frames.copy()
    rng = np.random.default_rng(0)
    cover = rng.integers(0, 60, size=(h + 40, w + 40, 3), dtype=np.uint8)
    cover[..., 1] = 230  # green: unlike the object's colours
    y0, x0 = max(y - 20, 0), max(x - 20, 0)
    region = occluded[10:, y0 : y0 + h + 40, x0 : x0 + w + 40]
    region[:] = cover[: region.shape[1], : region.shape[2]]
    r_clean = track(frames, gt[0, 0], CFG)
    r = track(occluded, gt[0, 0], CFG)
    assert r_clean.kept
    # With detect_thresh 0 KCF keeps moving through the occluder, and may run off the frame.
    assert not r.kept and r.reason in (
        "low_confidence", "fb_fail", "kcf_lost", "left_frame", "drift", "appearance"
    )  # fmt: skip
    assert r.confidence < r_clean.confidence


def test_static_scene_is_a_near_copy() -> None:
    frames, gt, _ = clip(n_frames=31, object_size=80, mode="static", seed=0)
    r = track(frames, gt[0, 0], CFG)
    assert not r.kept and r.reason == "near_copy" and r.copy_ncc > CFG.max_copy_ncc


def test_same_input_same_track() -> None:
    frames, gt, _ = clip(n_frames=11, object_size=80, speed=1.5, seed=0)
    cfg = TrackingConfig(track_length=10)
    a, b = track(frames, gt[0, 0], cfg), track(frames, gt[0, 0], cfg)
    assert np.array_equal(a.boxes, b.boxes) and a.reason == b.reason


def test_helpers() -> None:
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert inside_fraction((-5, 0, 10, 10), 100, 100, 100.0) == pytest.approx(0.5)
    a = np.arange(64, dtype=np.float64).reshape(8, 8)
    assert ncc(a, a) == pytest.approx(1.0) and ncc(a, -a) == pytest.approx(-1.0)
    h = colour_hist(np.zeros((4, 4, 3), np.uint8), 4)
    assert h.shape == (64,) and h[0] == 1.0


def test_bad_input_raises() -> None:
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="need 31 frames"):
        track(frames, (0, 0, 8, 8), CFG)
    with pytest.raises(ValueError, match="no area"):
        track(frames, (0, 0, 0, 8), TrackingConfig(track_length=4))


def test_no_ipp_restores_the_setting() -> None:
    import cv2

    from pipeline.tracking import no_ipp

    before = cv2.ipp.useIPP()
    with no_ipp():
        assert not cv2.ipp.useIPP()
    assert cv2.ipp.useIPP() == before


def _sliding_off_bottom(size: int, step: int) -> tuple[list[np.ndarray], tuple[float, ...]]:
    """A textured square moving down by ``step`` px per frame over flat grey until it has
    left a 160x200 frame (as the small, fast fish of vot-zebrafish1 leaves KCF's window)."""
    tex = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    frames = []
    for t in range(31):
        f = np.full((160, 200, 3), 120, np.uint8)
        y = 40 + step * t
        if y < 160:
            f[y : min(y + size, 160), 80 : 80 + size] = tex[: min(size, 160 - y)]
        frames.append(f)
    return frames, (80.0, 40.0, float(size), float(size))


@pytest.mark.parametrize(("size", "step"), [(12, 20), (24, 6), (24, 10), (32, 14)])
@pytest.mark.parametrize("detect_thresh", [0.0, 0.5])
def test_collapsed_box_is_a_dropped_track_not_an_exception(
    size: int, step: int, detect_thresh: float
) -> None:
    """OpenCV's KCF returns a (0, 0, 0, 0) box, flagged ok, once its window slides past the
    frame edge; that used to raise "box (0.0, 0.0, 0.0, 0.0) has no area" (the old defaults
    raise it on the 12 px square at 20 px per frame)."""
    frames, box = _sliding_off_bottom(size, step)
    cfg = TrackingConfig(track_length=30, detect_thresh=detect_thresh)
    r = track(frames, box, cfg)
    # The square is gone at the A' frame: dropped, for whichever check catches it first.
    assert not r.kept and r.reason in ("left_frame", "box_collapsed", "kcf_lost", "fb_fail")
    assert (r.boxes[:, 2:] >= 1).all()  # every box has an area: the last good one is held
    whole = follow(iter(frames), box, cfg)
    assert whole.shape == (31, 4) and (whole[:, 2:] >= 1).all()
    # With native resolution too (EvaluateTracking's floor).
    native = follow(iter(frames), box, TrackingConfig(track_box=0, detect_thresh=0.0))
    assert (native[:, 2:] >= 1).all()
