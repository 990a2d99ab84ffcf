"""DetectMotion's on-demand frames (issue 11 speed): the same pixels and the same scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.devdata import devdata
from pipeline.decoded import RGBFrame
from pipeline.motion import MotionConfig
from pipeline.seeding import ScanResult, scan, select_seeds
from pipeline.synthetic import write_video
from pipeline.video_io import VideoReader, scan_reader
from tests.mining_fixtures import clip

CFG = MotionConfig(frame_step=2, track_length=10, min_seed_gap=8)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A textured object crossing a panning background, a hard cut, a second such shot."""
    a, _, _ = clip(n_frames=24, object_size=120, speed=1.5, camera_pan=(1.0, 0.5), seed=0,
                   object_textures=("noise", "checker"))  # fmt: skip
    b, _, _ = clip(n_frames=24, object_size=100, speed=2.0, camera_pan=(0.5, 0.0), seed=3,
                   object_textures=("noise", "checker"))  # fmt: skip
    path = tmp_path_factory.mktemp("decoded") / "cut.mp4"
    return write_video(path, np.concatenate([a, b]), 25.0)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


def _same_scan(old: ScanResult, new: ScanResult) -> None:
    assert list(old.shot_starts) == list(new.shot_starts)
    assert (old.n_frames, old.size) == (new.n_frames, new.size)
    assert len(old.records) == len(new.records) > 0
    for a, b in zip(old.records, new.records, strict=True):
        assert (a.frame, a.shot, a.skipped) == (b.frame, b.shot, b.skipped)
        assert np.isnan(a.prefilter_score) == np.isnan(b.prefilter_score)
        if not np.isnan(a.prefilter_score):
            assert a.prefilter_score == b.prefilter_score
        assert (a.motion is None) == (b.motion is None)
        if a.motion is not None and b.motion is not None:
            assert (a.motion.box, a.motion.n_in_box, a.motion.reason) == (
                b.motion.box, b.motion.n_in_box, b.motion.reason
            )  # fmt: skip
            assert np.array_equal(a.motion.points, b.motion.points)
            assert np.array_equal(a.motion.moving, b.motion.moving)
            assert np.array_equal(a.motion.homography, b.motion.homography)
    assert [(s.frame, s.box) for s in select_seeds(old, CFG)] == [
        (s.frame, s.box) for s in select_seeds(new, CFG)
    ]


def test_on_demand_frames_give_the_readers_pictures(video: Path) -> None:
    with VideoReader(video, height=448, backend="pyav") as r:
        truth = [f for _, f in r.iter_frames()]
        frames = list(r.iter_decoded())
    assert [i for i, _ in frames] == list(range(48))
    assert frames[0][1].size == (truth[0].shape[1], truth[0].shape[0])
    for (_, f), t in zip(frames, truth, strict=True):
        assert np.array_equal(f.rgb(), t)
        # the luma thumbnail read from the decoder's plane is the RGB's luma, up to the
        # video range (16..235) and the sampling
        lt, rt = f.luma_thumbnail(64), RGBFrame(t).luma_thumbnail(64)
        assert lt.shape[0] == rt.shape[0] == 64 and abs(lt.shape[1] - rt.shape[1]) <= 1
        n = min(lt.shape[1], rt.shape[1])
        assert _ncc(lt[:, :n], rt[:, :n]) > 0.95  # a frame of the other shot: < 0.4


def test_scan_of_on_demand_frames_equals_scan_of_rgb_arrays(video: Path) -> None:
    with VideoReader(video, height=448, backend="pyav") as r:
        old = scan(r.iter_frames(), CFG)
        new = scan(r.iter_decoded(), CFG)
    assert list(new.shot_starts) == [0, 24] and any(r.kept for r in new.records)
    _same_scan(old, new)


def test_scan_reader_keeps_decord_when_pyav_scales_differently(video: Path) -> None:
    # On this synthetic H.264 the two scaled 448 pictures differ: the reader stays decord's,
    # so DetectMotion sees exactly the frames it saw before.
    with VideoReader(video, height=448, backend="decord") as d:
        with VideoReader(video, height=448, backend="pyav") as p:
            assert not np.array_equal(d.get_batch([0]), p.get_batch([0]))
        with scan_reader(video, 448) as r:
            assert r.backend == "decord"
            assert np.array_equal(d.get_batch([0])[0], next(r.iter_decoded())[1].rgb())


def test_scan_reader_on_real_footage_is_pyav_and_the_same_scan() -> None:
    path = devdata() / "tracking" / "vot-bolt1.mp4"
    if not path.is_file():
        pytest.skip(f"no dev clip {path}")
    cfg = MotionConfig(track_length=10)
    with VideoReader(path, height=448, backend="decord") as d:
        old = scan(((i, f) for i, f in d.iter_frames(stop=60)), cfg)
    with scan_reader(path, 448) as r:
        assert r.backend == "pyav"
        new = scan(r.iter_decoded(stop=60), cfg)
    assert sum(r.motion is not None for r in new.records) >= 3
    _same_scan(old, new)


def test_rgb_frame_rejects_a_grey_array() -> None:
    with pytest.raises(ValueError, match="RGB"):
        RGBFrame(np.zeros((4, 4), np.uint8))
