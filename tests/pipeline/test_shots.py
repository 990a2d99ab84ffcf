"""Shot cuts from colour change; skipping and subsampling as run_full.py does."""

from __future__ import annotations

import numpy as np

from pipeline.shots import ShotConfig, detect_cuts, plan_shots, subsample
from pipeline.synthetic import SyntheticConfig, generate


def test_two_shot_video_split_at_cut() -> None:
    v = generate(
        SyntheticConfig(
            height=120, width=160, n_frames=50, cut_frames=(23,), camera_pan=(1.5, 0.0), seed=2
        )
    )
    cuts, n = detect_cuts(iter(v.frames), ShotConfig())
    assert n == 50 and cuts == [23]
    plan = plan_shots(cuts, n, ShotConfig())
    assert [(s.start, s.stop) for s in plan] == [(0, 23), (23, 50)]
    assert all(not s.skipped for s in plan)


def test_no_cut_in_one_continuous_shot() -> None:
    v = generate(SyntheticConfig(height=120, width=160, n_frames=40, camera_pan=(2.0, 1.0), seed=3))
    cuts, _ = detect_cuts(iter(v.frames), ShotConfig())
    assert cuts == []


def test_short_shots_skipped_and_long_ones_subsampled() -> None:
    plan = plan_shots([5, 300], 1000, ShotConfig())
    assert plan[0].skipped and plan[0].reason.startswith("too_short")
    # 295 frames -> every 3rd (295 // 110 + 1), 700 frames -> every 7th
    assert np.all(np.diff(plan[1].indices) == 3) and plan[1].indices[0] == 5
    assert len(plan[2].indices) == 100 and plan[2].indices[-1] < 1000
    for length in (110, 111, 219, 220, 5000):
        idx = subsample(0, length, 110)
        assert 55 <= len(idx) <= 110
    assert len(subsample(0, 110, 110)) == 110


def test_detection_off_gives_one_shot() -> None:
    plan = plan_shots([30], 60, ShotConfig(detect_shots=False))
    assert [(s.start, s.stop) for s in plan] == [(0, 60)]
