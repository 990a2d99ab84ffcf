"""Tiny real media files, good and broken, for tests (written into a tmp dir)."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import av

from pipeline.synthetic import SyntheticConfig, generate, write_video

SMALL = SyntheticConfig(height=120, width=160, n_frames=20, object_size=32, n_objects=1)


def good_video(path: Path, n_frames: int = 20, seed: int = 0, fps: float = 25.0) -> Path:
    """An H.264 mp4 (moov at the end, as most encoders write it)."""
    return write_video(path, generate(replace(SMALL, n_frames=n_frames, seed=seed)).frames, fps)


def faststart_video(path: Path, n_frames: int = 20, seed: int = 0) -> Path:
    """An H.264 mp4 with its index (moov) before the data, as streaming sites serve it."""
    frames = generate(replace(SMALL, n_frames=n_frames, seed=seed))
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=25)
        assert isinstance(s, av.VideoStream)
        s.width, s.height, s.pix_fmt = SMALL.width, SMALL.height, "yuv420p"
        for f in frames.frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def truncated_tail(path: Path) -> Path:
    """An mp4 cut in half: its index (moov, at the end) is lost."""
    good = good_video(path.with_suffix(".full.mp4"))
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_body(path: Path) -> Path:
    """A faststart mp4 cut at 80%: the header promises 20 frames, the tail is missing."""
    full = faststart_video(path.with_suffix(".full.mp4"))
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.8)])
    return path


def zero_frame_video(path: Path) -> Path:
    """A faststart mp4 whose sample data is gone: a header, zero decodable frames."""
    full = faststart_video(path.with_suffix(".full.mp4"))
    data = full.read_bytes()
    path.write_bytes(data[: data.find(b"mdat") + 4])
    return path


def lying_avi(path: Path, claim: int = 50, frames: Any = None) -> Path:
    """A complete AVI (SMALL's 20 frames, or `frames`) whose headers claim `claim` frames.
    claim=2**31-1 makes decord abort the process (std::bad_alloc) when it opens the file."""
    frames = generate(SMALL).frames if frames is None else frames
    src = write_video(path.with_suffix(".src.avi"), frames, 25.0, codec="mpeg4")
    data = bytearray(src.read_bytes())
    i = data.find(b"avih")  # MainAVIHeader.dwTotalFrames at +8+16
    data[i + 24 : i + 28] = struct.pack("<I", claim)
    j = data.find(b"strh")  # AVIStreamHeader.dwLength at +8+32
    data[j + 40 : j + 44] = struct.pack("<I", claim)
    path.write_bytes(bytes(data))
    return path


def grayscale_video(path: Path) -> Path:
    """A lossless FFV1 .mkv with a grey pixel format (one channel)."""
    return write_video(path, generate(SMALL).frames[..., 1], 25.0, codec="ffv1")


def not_a_video(path: Path) -> Path:
    path.write_bytes(b"<!doctype html><html><body>Sorry, this page is gone.</body></html>\n")
    return path


def vfr_video(path: Path, n_frames: int = 20) -> tuple[Path, list[float]]:
    """Variable frame rate H.264 mp4: frame gaps alternate 20 ms and 60 ms.
    Returns the path and the presentation times (s) written."""
    from fractions import Fraction

    frames = generate(replace(SMALL, n_frames=n_frames)).frames
    times_ms = [sum(20 if k % 2 == 0 else 60 for k in range(i)) for i in range(n_frames)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        assert isinstance(s, av.VideoStream)
        s.width, s.height, s.pix_fmt = SMALL.width, SMALL.height, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for f, t in zip(frames, times_ms, strict=True):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 1000)
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path, [t / 1000 for t in times_ms]


def rotated_video(path: Path, rotation: int, n_frames: int = 12) -> tuple[Path, Any]:
    """An H.264 mp4 of SMALL's clip (coded 160x120) whose display matrix turns it
    `rotation` degrees counterclockwise, as a phone writes a portrait video (-90: the
    usual upright-held phone). Returns the path and the coded (T, 120, 160, 3) frames."""
    frames = generate(replace(SMALL, n_frames=n_frames)).frames
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        assert isinstance(s, av.VideoStream)
        s.width, s.height, s.pix_fmt = SMALL.width, SMALL.height, "yuv420p"
        s.set_display_rotation(rotation)
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path, frames


def audio_only_mp4(path: Path) -> Path:
    """An .mp4 with one AAC audio stream (0.6 s of silence) and no video stream."""
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path
