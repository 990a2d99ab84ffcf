"""Mask propagation follows a moving object whose mask is known, with colour-only features."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import davis_metrics as dm
from pipeline.propagation import PropagationConfig, propagate
from pipeline.synthetic import SyntheticConfig, generate


def colour_features(frames: np.ndarray, stride: int = 4) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 3, H / stride, W / stride) CIELAB, centred on the clip's
    mean colour (so that cosine similarity compares colours, not brightness alone)."""
    t, h, w = frames.shape[:3]
    lab = np.stack([cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2LAB) for f in frames])
    small = np.stack([cv2.resize(x, (w // stride, h // stride), interpolation=cv2.INTER_AREA)
                      for x in lab])  # fmt: skip
    small -= small.reshape(-1, 3).mean(axis=0)
    return np.ascontiguousarray(small.transpose(0, 3, 1, 2))


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    v = generate(SyntheticConfig(height=96, width=128, n_frames=12, object_size=32, speed=4.0,
                                 seed=7, object_textures=("noise",)))  # fmt: skip
    return v.frames, (v.masks > 0).astype(np.uint8)


@pytest.mark.parametrize("protocol", ["paper", "common"])
def test_colour_features_follow_the_moving_object(clip: tuple, protocol: str) -> None:
    frames, masks = clip
    feats = colour_features(frames, stride=2)
    pred = propagate(feats, masks[0], PropagationConfig(protocol=protocol))
    assert pred.shape == masks.shape and pred.dtype == np.uint8
    np.testing.assert_array_equal(pred[0], masks[0])
    s = dm.score_sequence(pred, masks)
    copy = dm.score_sequence(np.repeat(masks[:1], len(masks), axis=0), masks)
    # the object moves 44 px over the clip, more than its own size: copying the first mask
    # (the floor) scores poorly; propagation keeps the object to the last frame
    assert copy.j_mean < 0.4
    assert s.j_mean > 0.8 and s.f_mean > 0.75, (s.j_mean, s.f_mean)
    assert dm.region_j(pred[-1], masks[-1]) > 0.7


def test_random_features_do_not_follow(clip: tuple) -> None:
    frames, masks = clip
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((8, 8, 48, 64)).astype(np.float32)
    s = dm.score_sequence(propagate(feats, masks[0], PropagationConfig()), masks[:8])
    assert s.j_mean < 0.5  # the test above is not won by the protocol alone


def test_several_labels_and_bad_input() -> None:
    feats = np.zeros((3, 4, 8, 8), np.float32)
    feats[:, 0, :, :4] = 1  # left half one feature, right half another: labels stay put
    feats[:, 1, :, 4:] = 1
    mask = np.zeros((32, 32), np.uint8)
    mask[:, 16:] = 2
    out = propagate(feats, mask, PropagationConfig(protocol="common"))
    np.testing.assert_array_equal(out[2], mask)
    with pytest.raises(KeyError, match="valid"):
        PropagationConfig(protocol="nearest")
    with pytest.raises(ValueError, match="uint8"):
        propagate(feats, mask.astype(np.int64), PropagationConfig())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-finite"):
        propagate(feats * np.nan, mask, PropagationConfig())
