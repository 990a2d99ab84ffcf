"""Frame pruning rules (each one, both border readings) and the trimap."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.mask_metrics import trimap_counts
from pipeline.pruning import (
    PruneConfig,
    border_mask,
    confident_positives,
    judge_frame,
    png8_to_soft,
    soft_to_png8,
    trimap,
)

H, W = 100, 200  # border band: 5 rows top/bottom, 10 columns left/right


def _soft(y0: int, y1: int, x0: int, x1: int, value: float = 0.9) -> np.ndarray:
    s = np.zeros((H, W), np.float32)
    s[y0:y1, x0:x1] = value
    return s


def test_border_band_shape() -> None:
    b = border_mask(H, W, 0.05)
    assert b[:5].all() and b[-5:].all() and b[:, :10].all() and b[:, -10:].all()
    assert not b[5:-5, 10:-10].any()


def test_centred_object_kept() -> None:
    v = judge_frame(_soft(30, 70, 60, 140), PruneConfig())  # 40 x 80 = 16% of the frame
    assert v.kept and v.reason == "" and v.fg_share == pytest.approx(0.16)
    assert v.border_share == 0


def test_too_small_and_too_large_dropped() -> None:
    small = judge_frame(_soft(45, 55, 90, 110), PruneConfig())  # 1%
    assert not small.kept and small.reason == "fg_too_small"
    large = judge_frame(_soft(0, 100, 0, 190), PruneConfig())  # 95%
    assert not large.kept and large.reason == "fg_too_large"
    ignored = judge_frame(_soft(30, 70, 60, 140, value=0.7 - 1e-5), PruneConfig())
    assert ignored.reason == "fg_too_small"  # the ignore band is not foreground


def test_border_rule_both_readings() -> None:
    # Object touching the left edge: 40 rows x 60 columns (12% of the frame); in the band:
    # 40 x 10 = 400 px of the band's 2 * 5 * 200 + 2 * 10 * 90 = 3800 px (10.5%), and
    # 400 / 2400 = 16.7% of the foreground.
    s = _soft(30, 70, 0, 60)
    band = judge_frame(s, PruneConfig(border_rule="band"))
    assert band.border_share == pytest.approx(400 / 3800)
    assert not band.kept and band.reason == "touches_border"
    fg = judge_frame(s, PruneConfig(border_rule="foreground"))
    assert fg.border_share == pytest.approx(400 / 2400)
    assert not fg.kept
    # A smaller overlap separates the readings: 40 x 3 px in the band.
    s2 = _soft(30, 70, 7, 67)
    assert judge_frame(s2, PruneConfig(border_rule="band")).kept  # 120 / 3800 = 3%
    v = judge_frame(s2, PruneConfig(border_rule="foreground", max_border_fg=0.04))
    assert not v.kept and v.border_share == pytest.approx(120 / 2400)


def test_trimap_and_png_roundtrip() -> None:
    soft = np.array([[0.0, 0.39, 0.4, 0.5], [0.7 - 1e-5, 0.7, 0.71, 1.0]], np.float32)
    np.testing.assert_array_equal(trimap(soft, PruneConfig()), [[0, 0, 255, 255], [255, 255, 1, 1]])
    back = png8_to_soft(soft_to_png8(soft))
    np.testing.assert_allclose(back, soft, atol=1 / 510 + 1e-6)
    # Thresholds survive the 8-bit round trip.
    np.testing.assert_array_equal(trimap(back, PruneConfig()), trimap(soft, PruneConfig()))


def test_confident_positives_drop_the_unsure_band() -> None:
    # Object (truth) 20 x 40 scored 0.95; a false 10 x 10 blob on the background scored 0.8;
    # a 0.6 rim and 0.1 elsewhere. Only scores > 0.9 stay trimap positives (ours); the
    # videoseg preset (confident_positive = trimap_positive) keeps the blob as foreground.
    truth = np.zeros((H, W), bool)
    truth[40:60, 80:120] = True
    soft = np.full((H, W), 0.1, np.float32)
    soft[38:62, 78:122] = 0.6
    soft[40:60, 80:120] = 0.95
    soft[10:20, 20:30] = 0.8
    ours = confident_positives(soft, PruneConfig())
    back = png8_to_soft(soft_to_png8(ours))  # as stored and read by TrainMasks / the eval
    for s in (ours, back):
        tri = trimap(s, PruneConfig())
        np.testing.assert_array_equal(tri == 1, truth)
        assert (tri[10:20, 20:30] == 255).all()  # the blob is ignored, not background
        assert (tri[soft < 0.4] == 0).all()
        np.testing.assert_array_equal(s > 0.5, soft > 0.5)  # IoU at 0.5 unchanged
        c = trimap_counts(s, truth, 0.4, 0.7)
        assert c.positive_precision == 1.0
    paper = PruneConfig(confident_positive=0.7)
    assert confident_positives(soft, paper) is soft
    c = trimap_counts(soft, truth, 0.4, 0.7)
    assert c.positive_precision == pytest.approx(800 / 900)
    # the frame verdict is taken before: same foreground share either way
    assert judge_frame(soft, PruneConfig()).fg_share == pytest.approx(900 / (H * W))


def test_videoseg_preset_keeps_every_positive() -> None:
    from pipeline.segmentation import apply_preset
    from pipeline.unlc import UnlcConfig

    _, prune = apply_preset("videoseg", UnlcConfig(), PruneConfig())
    assert prune.confident_positive == prune.trimap_positive == 0.7
    assert PruneConfig().confident_positive == 0.9


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="border_rule"):
        PruneConfig(border_rule="edge").validate()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confident_positive"):
        PruneConfig(confident_positive=0.6).validate()
