from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.synthetic import generate
from pipeline.video_io import VideoError, VideoReader, output_size, probe, sniff_container
from tests import media_fixtures as mf

BACKENDS = ["decord", "pyav"]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.good_video(tmp_path_factory.mktemp("v") / "good.mp4", n_frames=40)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_good_video(video: Path, backend: str) -> None:
    info = probe(video, backend=backend)  # type: ignore[arg-type]
    assert (info.n_frames, info.width, info.height) == (40, 160, 120)
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(1.6)
    assert info.codec == "h264" and info.backend == backend and info.header_frames == 40
    assert not info.header_mismatch
    assert probe(video, backend=backend, count="decode").n_frames == 40  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_match_source_and_random_access_is_exact(video: Path, backend: str) -> None:
    truth = generate(replace(mf.SMALL, n_frames=40)).frames
    with VideoReader(video, backend=backend) as vr:  # type: ignore[arg-type]
        assert len(vr) == 40 and vr.size == (120, 160) and vr.backend == backend
        seq = np.stack([f for _, f in vr.iter_frames()])
        assert seq.shape == (40, 120, 160, 3) and seq.dtype == np.uint8
        # lossy H.264 at crf 18: close to the source, and each frame nearest its own
        assert np.abs(seq.astype(int) - truth.astype(int)).mean() < 8
        for t in (0, 17, 39):
            errs = [np.abs(seq[t].astype(int) - truth[s].astype(int)).mean() for s in range(40)]
            assert int(np.argmin(errs)) == t
        idx = np.random.default_rng(0).integers(0, 40, size=25)  # repeats, any order
        assert np.array_equal(vr.get_batch(idx), seq[idx])
        assert np.array_equal(vr.get_batch([39, 0, 39]), seq[[39, 0, 39]])
        assert [i for i, _ in vr.iter_frames(3, 20, 5)] == [3, 8, 13, 18]
        assert vr.get_batch([]).shape == (0, 120, 160, 3)
        with pytest.raises(IndexError):
            vr.get_batch([40])


def test_backends_decode_identical_pixels(video: Path) -> None:
    with VideoReader(video, backend="decord") as a, VideoReader(video, backend="pyav") as b:
        assert np.array_equal(a.get_batch([0, 21, 39]), b.get_batch([0, 21, 39]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_keeps_aspect_or_takes_both(video: Path, backend: str) -> None:
    with VideoReader(video, height=448, backend=backend) as vr:  # type: ignore[arg-type]
        assert vr.size == (448, 597) and vr.get_batch([5]).shape == (1, 448, 597, 3)
        assert vr.source_size == (120, 160)
    with VideoReader(video, height=60, width=100, backend=backend) as vr:  # type: ignore[arg-type]
        frames = [f for _, f in vr.iter_frames(0, 3)]
        assert [f.shape for f in frames] == [(60, 100, 3)] * 3


def test_output_size() -> None:
    assert output_size((480, 640), 448, None) == (448, 597)
    assert output_size((480, 640), None, 320) == (240, 320)
    assert output_size((480, 640), None, None) == (480, 640)
    with pytest.raises(ValueError):
        output_size((480, 640), 0, None)


def test_header_that_lies_about_frame_count_is_caught(tmp_path: Path) -> None:
    path = mf.lying_avi(tmp_path / "lie.avi", claim=50)
    for backend in ("auto", "pyav"):
        info = probe(path, backend=backend)  # type: ignore[arg-type]
        assert info.n_frames == 20 and info.header_frames == 50 and info.header_mismatch
        assert probe(path, backend=backend, count="decode").n_frames == 20  # type: ignore[arg-type]


@pytest.mark.parametrize("count", ["packets", "decode"])
def test_truncated_body_falls_back_and_fails_clearly(tmp_path: Path, count: str) -> None:
    path = mf.truncated_body(tmp_path / "cut.mp4")
    with pytest.raises(VideoError, match="truncated or corrupt: header claims 20 frames") as e:
        probe(path, count=count)  # type: ignore[arg-type]
    assert e.value.path == str(path)


def test_truncated_index_is_a_corrupt_mp4(tmp_path: Path) -> None:
    path = mf.truncated_tail(tmp_path / "half.mp4")
    with pytest.raises(VideoError, match=r"corrupt or truncated MP4/MOV file"):
        probe(path)
    assert sniff_container(path) == "MP4/MOV"


def test_not_a_video(tmp_path: Path) -> None:
    path = mf.not_a_video(tmp_path / "page.mp4")
    with pytest.raises(
        VideoError, match=r"not a video \(unrecognised content starting b'<!doctype"
    ):
        probe(path)
    with pytest.raises(VideoError, match="not a video"):
        VideoReader(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty file \(0 bytes\)"):
        probe(tmp_path / "empty.mp4")
    with pytest.raises(VideoError, match="no such file"):
        probe(tmp_path / "missing.mp4")


def test_zero_frame_video(tmp_path: Path) -> None:
    path = mf.zero_frame_video(tmp_path / "zero.mp4")
    with pytest.raises(VideoError, match=r"zero decodable video frames \(the header claims 20\)"):
        probe(path)


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_one_frame_video(tmp_path: Path, backend: str) -> None:
    path = mf.good_video(tmp_path / "one.mp4", n_frames=1)
    info = probe(path, backend=backend)  # type: ignore[arg-type]
    assert info.n_frames == 1 and info.fps == pytest.approx(25.0)
    with VideoReader(path, backend=backend) as vr:  # type: ignore[arg-type]
        assert [i for i, _ in vr.iter_frames()] == [0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_comes_out_rgb(tmp_path: Path, backend: str) -> None:
    path = mf.grayscale_video(tmp_path / "grey.mkv")
    info = probe(path, backend=backend)  # type: ignore[arg-type]
    assert info.pix_fmt == "gray" and info.n_frames == 20
    truth = generate(mf.SMALL).frames[..., 1]
    with VideoReader(path, backend=backend) as vr:  # type: ignore[arg-type]
        f = vr.get_batch([7])[0]
    assert f.shape == (120, 160, 3)
    assert np.array_equal(f[..., 0], f[..., 2])
    assert np.abs(f[..., 0].astype(int) - truth[7].astype(int)).max() <= 1  # lossless + range


def test_faststart_and_bad_arguments(tmp_path: Path) -> None:
    path = mf.faststart_video(tmp_path / "fs.mp4")
    assert probe(path).n_frames == 20
    with pytest.raises(ValueError, match="backend"):
        VideoReader(path, backend="opencv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        probe(path, count="guess")  # type: ignore[arg-type]
    with VideoReader(path) as vr, pytest.raises(ValueError):
        list(vr.iter_frames(step=0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate(tmp_path: Path, backend: str) -> None:
    path, times = mf.vfr_video(tmp_path / "vfr.mp4")
    info = probe(path, backend=backend)  # type: ignore[arg-type]
    assert info.n_frames == 20
    assert info.fps == pytest.approx((len(times) - 1) / times[-1], rel=1e-4)  # from timestamps
    with VideoReader(path, backend=backend) as vr:  # type: ignore[arg-type]
        seq = np.stack([f for _, f in vr.iter_frames()])
        assert np.array_equal(vr.get_batch([19, 3, 11]), seq[[19, 3, 11]])


def test_auto_reader_falls_back_to_pyav_when_decord_fails_mid_stream(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import video_io

    with VideoReader(video, backend="pyav") as ref:
        truth = np.stack([f for _, f in ref.iter_frames()])
    real = video_io._DecordSource.get_batch

    def flaky(self: video_io._DecordSource, idx: list[int]) -> np.ndarray:
        if {12, 13} & set(idx):
            raise VideoError(self.path, "decode failed: injected")
        return real(self, idx)

    monkeypatch.setattr(video_io._DecordSource, "get_batch", flaky)
    with VideoReader(video) as vr:
        assert vr.backend == "decord"
        got = dict(vr.iter_frames(step=3))
        assert vr.backend == "pyav" and sorted(got) == list(range(0, 40, 3))
        assert all(np.array_equal(f, truth[i]) for i, f in got.items())
    with VideoReader(video) as vr:
        assert np.array_equal(vr.get_batch([2, 13]), truth[[2, 13]]) and vr.backend == "pyav"
    with VideoReader(video, backend="decord") as vr, pytest.raises(VideoError, match="injected"):
        vr.get_batch([13])  # an explicit backend never switches


@pytest.mark.parametrize("rotation", [-90, 90, 180])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rotated_video_is_upright_from_every_backend(
    tmp_path: Path, backend: str, rotation: int
) -> None:
    """A display matrix (phone video) is read at probe time and every backend delivers
    upright frames at the upright size; resizing keeps the upright aspect (no squeeze)."""
    path, coded = mf.rotated_video(tmp_path / f"r{rotation}.mp4", rotation)
    k = rotation // 90 % 4
    truth = np.stack([np.rot90(f, k) for f in coded])  # np.rot90: counterclockwise
    up_h, up_w = truth.shape[1:3]
    info = probe(path, backend=backend)  # type: ignore[arg-type]
    assert info.rotation == rotation % 360 and (info.height, info.width) == (up_h, up_w)
    with VideoReader(path, backend=backend) as vr:  # type: ignore[arg-type]
        assert vr.size == (up_h, up_w) and vr.source_size == (up_h, up_w)
        seq = np.stack([f for _, f in vr.iter_frames()])
        assert seq.shape == truth.shape
        assert np.abs(seq.astype(int) - truth.astype(int)).mean() < 8
        assert np.array_equal(vr.get_batch([7, 2]), seq[[7, 2]])
    with VideoReader(path, height=2 * up_h, backend=backend) as vr:  # type: ignore[arg-type]
        assert vr.size == (2 * up_h, 2 * up_w)
        big = vr.get_batch([5])[0].astype(int)
    small = big.reshape(up_h, 2, up_w, 2, 3).mean(axis=(1, 3))
    assert np.abs(small - truth[5].astype(int)).mean() < 10


def test_rotated_video_backends_agree(tmp_path: Path) -> None:
    path, _ = mf.rotated_video(tmp_path / "phone.mp4", -90)
    with VideoReader(path, height=224, backend="decord") as a:
        with VideoReader(path, height=224, backend="pyav") as b:
            assert a.size == b.size == (224, 168)
            fa, fb = a.get_batch([0, 6]).astype(int), b.get_batch([0, 6]).astype(int)
    assert np.abs(fa - fb).mean() < 3  # same picture; scalers differ by a little


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
def test_audio_only_mp4_says_no_video_stream(tmp_path: Path, backend: str) -> None:
    path = mf.audio_only_mp4(tmp_path / "talk.mp4")
    with pytest.raises(VideoError, match=r"talk\.mp4: no video stream \(its streams: audio"):
        probe(path, backend=backend)  # type: ignore[arg-type]


def test_absurd_frame_count_never_reaches_decord(tmp_path: Path) -> None:
    """An AVI whose header claims 2**31-1 frames aborts the process inside decord
    (std::bad_alloc). Run in a child so a regression fails the test, not pytest."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    path = mf.lying_avi(tmp_path / "liar.avi", claim=2**31 - 1)
    code = (
        "import sys; from pipeline.video_io import VideoError, probe\n"
        "info = probe(sys.argv[1])\n"
        "print(info.backend, info.n_frames, info.header_frames)\n"
        "try:\n    probe(sys.argv[1], backend='decord')\n"
        "except VideoError as e:\n    print('REFUSED', e.reason)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo)}
    r = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0] == "pyav 20 2147483647"
    assert lines[1].startswith("REFUSED refused to open with decord: its header claims 2147483647")


def test_opening_decord_keeps_opencv_png_decoding() -> None:
    """decord bundles libpng/zlib: imported before cv2, cv2.imdecode fails on every PNG
    (masks). A fresh process that opens a video first must still decode PNGs."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    code = (
        "import pipeline._decord_source, decord, cv2, numpy as np\n"
        "a = (np.random.default_rng(0).random((12, 16)) * 255).astype(np.uint8)\n"
        "ok, buf = cv2.imencode('.png', a)\n"
        "b = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)\n"
        "print(b is not None and bool((b == a).all()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo)}
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.stdout.strip() == "True", r.stderr[-2000:]
