"""Colour refinement of uNLC masks: GrabCut seeded from the mask, and the agreement test."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from pipeline.mask_metrics import score
from pipeline.pruning import FrameVerdict, PruneConfig, judge_frame
from pipeline.refinement import apply_refinement, colour_segment, refine_frame

H, W = 180, 240


def _texture(seed: int, base: tuple[int, int, int], spread: float = 40.0) -> np.ndarray:
    """(H, W, 3) uint8 blurred colour noise around `base` (a textured surface)."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, spread, (H, W, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip(np.asarray(base, np.float32) + noise * 2.0, 0, 255).astype(np.uint8)


def _disc_scene() -> tuple[np.ndarray, np.ndarray]:
    """A red textured disc (radius 30) on a grey-green textured background, and its truth."""
    yy, xx = np.mgrid[:H, :W]
    truth = (yy - 90) ** 2 + (xx - 120) ** 2 <= 30**2
    frame = _texture(0, (90, 120, 90))
    frame[truth] = _texture(1, (200, 40, 40))[truth]
    return frame, truth


def _box_soft(y0: int, y1: int, x0: int, x1: int, value: float = 0.95) -> np.ndarray:
    s = np.zeros((H, W), np.float32)
    s[y0:y1, x0:x1] = value
    return s


def test_sloppy_mask_snaps_to_the_coloured_object() -> None:
    frame, truth = _disc_scene()
    soft = _box_soft(60, 121, 90, 151)  # the disc's bounding box: IoU pi / 4
    before = score(soft > 0.5, truth).iou
    ref = colour_segment(frame, soft, PruneConfig())
    after = score(ref.mask, truth).iou
    assert before < 0.8 and after > 0.9, (before, after)
    assert ref.agreement == pytest.approx(score(ref.mask, soft > 0.5).iou)
    assert ref.agreement > PruneConfig().min_colour_agreement


def test_mask_on_indistinct_texture_fails_the_colour_test() -> None:
    """uNLC confidently on a patch of the same surface as around it (rocks under a goat):
    no colour model separates it, so the frame is dropped as colour_disagrees."""
    frame = _texture(2, (120, 110, 100))
    soft = _box_soft(60, 120, 80, 160)
    cfg = PruneConfig()
    verdict = judge_frame(soft, cfg)
    assert verdict.kept
    out, v = refine_frame(frame, soft, verdict, cfg)
    assert not v.kept and v.reason == "colour_disagrees", v
    assert v.colour_agreement < cfg.min_colour_agreement
    assert out is soft  # a dropped frame's mask is left as uNLC made it


def test_refined_mask_binary_and_trimap() -> None:
    """After refinement the mask at 0.5 is the colour segment and the trimap positives are
    uNLC's positives inside it; refine_frame keeps the frame and records the agreement."""
    frame, truth = _disc_scene()
    soft = _box_soft(60, 121, 90, 151)
    soft[80:86, 110:120] = 0.3  # a hole in uNLC's mask, inside the disc
    cfg = PruneConfig()
    verdict = judge_frame(soft, cfg)
    out, v = refine_frame(frame, soft, verdict, cfg)
    assert v.kept and v.reason == "" and v.colour_agreement > cfg.min_colour_agreement
    ref = colour_segment(frame, soft, cfg)
    np.testing.assert_array_equal(out > 0.5, ref.mask)
    np.testing.assert_array_equal(
        out > cfg.trimap_positive, ref.mask & (soft > cfg.trimap_positive)
    )
    assert score(out > cfg.trimap_positive, truth).precision > 0.97
    assert (out[80:86, 110:120] > 0.5).all()  # the hole, coloured like the disc, is filled


def test_small_or_missing_seed_gives_no_model() -> None:
    frame, _ = _disc_scene()
    ref = colour_segment(frame, _box_soft(90, 93, 120, 123), PruneConfig())  # 9 px
    assert ref.agreement == 0.0 and not ref.mask.any()
    full = np.full((H, W), 0.95, np.float32)  # no background left to model
    assert colour_segment(frame, full, PruneConfig()).agreement == 0.0


def test_bad_input_and_config_rejected() -> None:
    frame, _ = _disc_scene()
    with pytest.raises(ValueError, match="must be"):
        colour_segment(frame[:, :, 0], _box_soft(55, 125, 85, 155), PruneConfig())
    for bad in ({"min_colour_agreement": 1.5}, {"refine_scale": 0.0}, {"refine_iterations": 0}):
        with pytest.raises(ValueError, match="need"):
            dataclasses.replace(PruneConfig(), **bad).validate()
    v = FrameVerdict(0.1, 0.0, True, "")
    with pytest.raises(ValueError, match="differ"):
        apply_refinement(
            np.zeros((10, 10), np.float32),
            colour_segment(frame, _box_soft(55, 125, 85, 155), PruneConfig()),
            PruneConfig(),
        )
    assert v.kept
