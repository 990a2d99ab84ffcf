"""``[videomine] keep_videos`` on the command line: ``--videomine-keep-videos true|false``.

The default is true, so the parameter parses an explicit value (a bare flag would only
ever say true); luigi.cfg keeps working and the command line overrides it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser

from tasks.common import videomine


class _KeepVideosProbe(luigi.Task):
    """Records what ``videomine().keep_videos`` is while a task of the run executes."""

    seen: ClassVar[list[bool]] = []

    def complete(self) -> bool:
        return False

    def run(self) -> None:
        type(self).seen.append(videomine().keep_videos)


def _parsed(*args: str) -> bool:
    luigi.task.Register.clear_instance_cache()
    with CmdlineParser.global_instance(["_KeepVideosProbe", *args]):
        value = videomine().keep_videos
    luigi.task.Register.clear_instance_cache()
    return value


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), True),  # the default
        (("--videomine-keep-videos", "false"), False),
        (("--videomine-keep-videos", "False"), False),
        (("--videomine-keep-videos", "true"), True),
        (("--videomine-keep-videos",), True),  # a bare flag still means true
        (("--videomine-keep-videos=false",), False),
    ],
)
def test_command_line_sets_keep_videos(
    luigi_config: Callable[..., Path], args: tuple[str, ...], expected: bool
) -> None:
    assert _parsed(*args) is expected


def test_luigi_cfg_sets_keep_videos_and_the_command_line_overrides_it(
    luigi_config: Callable[..., Path],
) -> None:
    luigi_config(keep_videos="false")
    assert videomine().keep_videos is False
    assert _parsed() is False
    assert _parsed("--videomine-keep-videos", "true") is True
    luigi_config(keep_videos="true")
    assert _parsed("--videomine-keep-videos", "false") is False


def test_a_value_that_is_not_a_bool_is_refused(luigi_config: Callable[..., Path]) -> None:
    with pytest.raises(ValueError, match="parsing the default value of 'keep_videos'"):
        _parsed("--videomine-keep-videos", "maybe")


def test_luigi_run_passes_false_to_the_tasks(luigi_config: Callable[..., Path]) -> None:
    """The whole command-line path (luigi.interface), as `luigi --module tasks ...` takes it."""
    _KeepVideosProbe.seen.clear()
    ok = luigi.interface.run(
        ["_KeepVideosProbe", "--videomine-keep-videos", "false", "--local-scheduler"],
        detailed_summary=True,
    )
    assert ok.scheduling_succeeded
    assert _KeepVideosProbe.seen == [False]
