"""Whole videos through shots + uNLC + pruning: outcomes per shot, bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pipeline.pruning import PruneConfig
from pipeline.segmentation import fit_size, mask_overlay, segment_sequence, segment_video
from pipeline.shots import ShotConfig
from pipeline.synthetic import SyntheticConfig, generate, write_video
from pipeline.unlc import UnlcConfig

FAST = UnlcConfig(n_superpixels=120)


def test_fit_size() -> None:
    assert fit_size(1080, 1920, 650) == (366, 650)
    assert fit_size(100, 80, 650) == (100, 80)


def test_video_with_cut_and_static_shot(tmp_path: Path) -> None:
    # Shot 0: an object moving over a still background; shot 1 is static: rejected.
    moving = generate(SyntheticConfig(height=120, width=160, n_frames=24, object_size=48, seed=1))
    still = generate(SyntheticConfig(height=120, width=160, n_frames=20, mode="static", seed=9))
    frames = np.concatenate([moving.frames, still.frames])
    path = write_video(tmp_path / "v.mp4", frames, 25.0)
    out = list(segment_video(path, ShotConfig(), FAST, PruneConfig()))
    assert [(o.shot.start, o.shot.stop) for o in out] == [(0, 24), (24, 44)]
    assert out[0].status == "segmented" and len(out[0].frames) == 24
    assert out[0].n_kept >= 12
    # kept frames passed the colour test (pipeline.refinement), dropped ones say why
    assert all(f.verdict.colour_agreement >= 0.6 for f in out[0].frames if f.verdict.kept)
    iou = np.mean(
        [
            ((f.soft > 0.5) & (moving.masks[f.index] > 0)).sum()
            / max(((f.soft > 0.5) | (moving.masks[f.index] > 0)).sum(), 1)
            for f in out[0].frames
        ]
    )
    assert iou >= 0.6
    assert out[1].status == "rejected" and out[1].reason == "static" and not out[1].frames
    fm = out[0].frames[0]
    assert mask_overlay(fm.frame, fm.soft, PruneConfig()).shape == fm.frame.shape


def test_sequence_one_shot_vs_detection() -> None:
    v = generate(
        SyntheticConfig(
            height=120, width=160, n_frames=30, cut_frames=(15,), object_size=48, seed=5
        )
    )
    one = list(segment_sequence(v.frames, ShotConfig(detect_shots=False), FAST, PruneConfig()))
    det = list(segment_sequence(v.frames, ShotConfig(), FAST, PruneConfig()))
    assert len(one) == 1 and len(det) == 2
    assert [o.shot.start for o in det] == [0, 15]


def _peak_bytes(path: Path, cfg: ShotConfig) -> tuple[int, int]:
    tracemalloc.start()
    n = 0
    for oc in segment_video(path, cfg, FAST, PruneConfig()):
        n += len(oc.frames)  # the caller drops each outcome before the next shot
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, n


def test_memory_flat_for_a_4x_longer_video(tmp_path: Path) -> None:
    cfg = ShotConfig(max_shot=20)  # a shot of 100 or 400 frames gives 17 or 20 frames
    base = dict(height=96, width=128, object_size=40, speed=1.0, seed=3)
    short = write_video(
        tmp_path / "short.mp4", generate(SyntheticConfig(**base, n_frames=100)).frames, 25.0
    )
    long = write_video(
        tmp_path / "long.mp4", generate(SyntheticConfig(**base, n_frames=400)).frames, 25.0
    )
    p_short, n_short = _peak_bytes(short, cfg)
    p_long, n_long = _peak_bytes(long, cfg)
    assert n_short > 0 and n_long > 0
    # Holding the whole video would take 400 * 96 * 128 * 3 = 14.7 MB more than the short one.
    assert p_long < 1.5 * p_short, (p_short, p_long)
    assert p_long - p_short < 400 * 96 * 128 * 3 / 4


def test_presets_replace_defaults_but_not_overrides() -> None:
    from pipeline.segmentation import PRESETS, apply_preset

    u, p = apply_preset("videoseg", UnlcConfig(), PruneConfig())
    for k, v in PRESETS["videoseg"]["unlc"].items():
        assert getattr(u, k) == v
    for k, v in PRESETS["videoseg"]["prune"].items():
        assert getattr(p, k) == v
    assert u.saliency_mode == "dominant" and u.restart == 0.0
    # an explicit override (a value other than our default) wins over the preset
    u2, _ = apply_preset("videoseg", UnlcConfig(restart=0.5), PruneConfig())
    assert u2.restart == 0.5 and u2.saliency_mode == "dominant"
    assert apply_preset("ours", UnlcConfig(), PruneConfig()) == (UnlcConfig(), PruneConfig())
    with pytest.raises(KeyError, match="videoseg"):
        apply_preset("nope", UnlcConfig(), PruneConfig())
