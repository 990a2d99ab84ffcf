"""Frame sampling: every n-th frame of moving shots only, capped and spread per video."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.frame_sampling import FrameSampleConfig, resize_short, sample_frames
from pipeline.synthetic import SyntheticConfig, generate

SMALL = dict(height=120, width=160)


def _clip() -> tuple[NDArray[np.uint8], list[tuple[int, int, str]]]:
    """Five shots with known kinds: (start, stop, expected status)."""
    parts = [
        (SyntheticConfig(**SMALL, n_frames=70, object_size=40, seed=1), "sampled"),
        (SyntheticConfig(**SMALL, n_frames=50, mode="static", seed=2), "static"),
        (
            SyntheticConfig(**SMALL, n_frames=40, mode="pan_only", camera_pan=(2.0, 1.0), seed=3),
            "static",  # only the camera moves (2, 1 px/frame): static at score_gap=1
        ),
        (SyntheticConfig(**SMALL, n_frames=5, object_size=40, seed=4), "too_short"),
        (
            SyntheticConfig(**SMALL, n_frames=45, object_size=40, camera_pan=(1.5, 0), seed=5),
            "sampled",  # an object over a panning background
        ),
    ]
    frames, spans, start = [], [], 0
    for cfg, status in parts:
        f = generate(cfg).frames
        frames.append(f)
        spans.append((start, start + len(f), status))
        start += len(f)
    return np.concatenate(frames), spans


@pytest.fixture(scope="module")
def clip() -> tuple[NDArray[np.uint8], list[tuple[int, int, str]]]:
    return _clip()


def test_every_nth_frame_of_moving_shots_only(
    clip: tuple[NDArray[np.uint8], list[tuple[int, int, str]]],
) -> None:
    video, spans = clip
    frames, shots = sample_frames(enumerate(video), FrameSampleConfig(step=10, score_gap=1))
    assert [(s.start, s.stop, s.status) for s in shots] == spans
    want = [i for a, b, st in spans if st == "sampled" for i in range(a, b, 10)]
    assert [f.index for f in frames] == want
    for f in frames:
        assert spans[f.shot][0] <= f.index < spans[f.shot][1]
        assert f.image.shape == (256, 341, 3) and f.image.dtype == np.uint8
        np.testing.assert_allclose(  # the stored frame is the video's frame, resized
            f.image.mean(), resize_short(video[f.index], 256).mean(), atol=0.5
        )
    assert [s.n_sampled for s in shots] == [7, 0, 0, 0, 5]
    assert shots[1].motion_score < 0.003 < shots[0].motion_score


def test_default_score_gap_trades_a_pan_for_slow_motion(
    clip: tuple[NDArray[np.uint8], list[tuple[int, int, str]]],
) -> None:
    """Over 3 frames (the default) the pan's residual passes the static bound: the cost of
    catching slow real motion (docs/training.md, SampleFrames)."""
    video, _ = clip
    _, shots = sample_frames(enumerate(video), FrameSampleConfig(step=10))
    assert [s.status for s in shots] == ["sampled", "static", "sampled", "too_short", "sampled"]
    assert 0.003 < shots[2].motion_score < 0.1 < shots[0].motion_score


def test_cap_per_video_spreads_over_the_video(
    clip: tuple[NDArray[np.uint8], list[tuple[int, int, str]]],
) -> None:
    video, spans = clip
    cfg = FrameSampleConfig(step=1, max_per_video=5, score_gap=1)
    frames, shots = sample_frames(enumerate(video), cfg)
    idx = [f.index for f in frames]
    assert len(idx) == 5 and idx == sorted(idx)
    assert {f.shot for f in frames} == {0, 4}  # both moving shots, nothing else
    assert idx[0] == 0 and idx[-1] >= spans[4][0]
    assert sum(s.n_sampled for s in shots) == 5


def test_frame_size_and_bad_input() -> None:
    img = np.zeros((480, 640, 3), np.uint8)
    assert resize_short(img, 256).shape == (256, 341, 3)
    assert resize_short(img[:100, :100], 256).shape == (256, 256, 3)  # small frames grow
    with pytest.raises(ValueError, match="step"):
        sample_frames(iter([]), FrameSampleConfig(step=0))
    with pytest.raises(ValueError, match="consecutive"):
        sample_frames(iter([(0, img), (2, img)]), FrameSampleConfig())
    assert sample_frames(iter([]), FrameSampleConfig()) == ([], [])
