"""pipeline.isolation: a call in a child process; a native crash or hang costs that call."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline.isolation import ChildCrashed, ChildTimedOut, call_isolated
from pipeline.video_io import VideoError, probe
from tests import media_fixtures as mf


def test_result_and_exception_come_back(tmp_path: Path) -> None:
    path = mf.good_video(tmp_path / "g.mp4")
    info = call_isolated(probe, path, timeout_s=120, backend="pyav")
    assert (info.n_frames, info.width, info.height, info.backend) == (20, 160, 120, "pyav")
    with pytest.raises(VideoError, match=r"gone\.mp4: no such file") as e:
        call_isolated(probe, tmp_path / "gone.mp4", timeout_s=120)
    assert e.value.reason == "no such file"  # the exception arrives whole
    assert "raised in the child process" in "".join(e.value.__notes__)
    assert "VideoReader" in "".join(e.value.__notes__)  # with the child's traceback


def test_abort_in_the_child_is_an_error_here() -> None:
    """What decord does on an absurd header (std::bad_alloc -> abort): the caller lives."""
    with pytest.raises(ChildCrashed, match=r"probe x: the child process died \(killed by SIGABRT"):
        call_isolated(os.abort, timeout_s=120, what="probe x")
    with pytest.raises(ChildCrashed, match=r"exit code 3 without an answer"):
        call_isolated(os._exit, 3, timeout_s=120)


def test_a_hung_child_is_killed() -> None:
    t0 = time.monotonic()
    with pytest.raises(ChildTimedOut, match=r"no answer within 1 s"):
        call_isolated(time.sleep, 60, timeout_s=1.0)
    assert time.monotonic() - t0 < 30
