"""write_video is byte-reproducible: the same frames give the same file in any process.

The demo's figures depend on its generated clips being identical on every run and machine.
Encoders used to pick their thread (and so slice) count from the CPUs the process may use,
and Matroska wrote random UIDs, so each file is written by two fresh processes, one of them
pinned to a single CPU where the OS allows it (a 1-core machine in miniature). x264's
mbtree varied with the SIMD level and, with AVX-512, from run to run at random; a test
cannot choose the CPU, so it checks that the x264 settings recorded in the stream are the
reproducible ones.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline.synthetic import SyntheticConfig, generate

FILES = {"h264": "v.mp4", "mpeg4": "v.avi", "ffv1": "v.mkv"}

_CHILD = """
import os, sys
import numpy as np
from pipeline.synthetic import write_video

frames_path, out_dir, pin, *outputs = sys.argv[1:]
if pin == "1" and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
frames = np.load(frames_path)
for codec_and_name in outputs:
    codec, name = codec_and_name.split("=")
    write_video(os.path.join(out_dir, name), frames, 25.0, codec=codec)
"""


def _write_in_child(frames_path: Path, out_dir: Path, pin: bool) -> dict[str, str]:
    out_dir.mkdir()
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(frames_path), str(out_dir), "1" if pin else "0"]
        + [f"{c}={n}" for c, n in FILES.items()],
        check=True,
        timeout=120,
    )
    return {c: hashlib.sha256((out_dir / n).read_bytes()).hexdigest() for c, n in FILES.items()}


def test_write_video_is_byte_identical_across_processes_and_cpu_counts(tmp_path: Path) -> None:
    # 128 px high: below about 96 px x264 falls back to one thread by itself.
    cfg = SyntheticConfig(height=128, width=160, n_frames=20, object_size=32, speed=3.0, seed=3)
    frames_path = tmp_path / "frames.npy"
    np.save(frames_path, generate(cfg).frames)
    pinned = _write_in_child(frames_path, tmp_path / "a", pin=True)
    free = _write_in_child(frames_path, tmp_path / "b", pin=False)
    # With a single CPU available this checks run-to-run identity only.
    assert pinned == free
    x264_settings = (tmp_path / "a" / FILES["h264"]).read_bytes()
    assert b" threads=1 " in x264_settings and b" mbtree=0 " in x264_settings
