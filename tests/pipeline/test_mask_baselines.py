"""Baselines of EvaluateSegmentation and the kept-frame trimap counts, on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.mask_baselines import FlowFloorConfig, centre_mask, flow_floor_masks
from pipeline.mask_metrics import TrimapCounts, score, trimap_counts
from pipeline.synthetic import SyntheticConfig, generate


def test_centre_mask_is_the_central_half_by_half() -> None:
    m = centre_mask(100, 200)
    ys, xs = np.nonzero(m)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (25, 74, 50, 149)
    assert m.sum() == 50 * 100  # a quarter of the frame
    with pytest.raises(ValueError, match="share"):
        centre_mask(10, 10, share=0.0)


def _clip(pan: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    v = generate(
        SyntheticConfig(height=120, width=160, n_frames=6, object_size=40, speed=3.0,
                        camera_pan=pan, seed=3)
    )  # fmt: skip
    return v.frames, v.masks > 0


def test_flow_floor_finds_the_moving_object() -> None:
    frames, truth = _clip((0.0, 0.0))
    masks = flow_floor_masks(frames)
    assert masks.shape == frames.shape[:3] and masks.dtype == bool
    iou = np.mean([score(m, t).iou for m, t in zip(masks, truth, strict=True)])
    assert iou >= 0.4  # measured 0.51-0.53
    # the centre rectangle knows nothing of the object and scores lower
    centre = centre_mask(120, 160)
    assert np.mean([score(centre, t).iou for t in truth]) < iou


def test_flow_floor_removes_the_camera_pan() -> None:
    frames, truth = _clip((2.0, 1.0))
    masks = flow_floor_masks(frames)
    # the whole background moves 2.2 px/frame; compensated, it is not marked
    assert masks[:, ~truth.any(axis=0)].mean() < 0.05


def test_flow_floor_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 frames"):
        flow_floor_masks(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        flow_floor_masks(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="grid"):
        flow_floor_masks(np.zeros((3, 8, 8, 3), np.uint8), FlowFloorConfig(grid=0))


def test_trimap_counts_precision() -> None:
    truth = np.zeros((4, 4), bool)
    truth[:2] = True  # top half object
    soft = np.full((4, 4), 0.5, np.float32)  # ignored band
    soft[0] = 0.9  # 4 positives on the object
    soft[2, :2] = 0.9  # 2 positives on the background
    soft[1, :1] = 0.1  # 1 negative on the object
    soft[3] = 0.1  # 4 negatives on the background
    c = trimap_counts(soft, truth, 0.4, 0.7)
    assert c == TrimapCounts(positive=6, positive_object=4, negative=5, negative_background=4)
    assert c.positive_precision == pytest.approx(4 / 6)
    assert c.negative_precision == pytest.approx(4 / 5)
    both = c + c
    assert both.positive_precision == pytest.approx(4 / 6) and both.positive == 12
    assert np.isnan(TrimapCounts().positive_precision)
