"""A stage for tests that run real ``luigi`` processes against one root
(``luigi --module tests.tasks.cli_race RaceStage ...``).

``RaceStage`` writes ``who.txt`` (its role). Two processes coordinate through files in
``$VIDEOMINE_TEST_SYNC`` according to ``$VIDEOMINE_TEST_ROLE``:

- ``first``: waits until the second process is computing, then finishes;
- ``second``: waits until the first one's output is complete, then finishes (so its
  commit meets a finished output of another writer);
- ``fail``: raises (a failed task);
- anything else (``plain``): finishes at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import luigi

from tasks.common import StageOutput, StageTask


def _wait(cond: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"RaceStage: timed out waiting for {what}")
        time.sleep(0.05)


class RaceStage(StageTask):
    tag = luigi.Parameter(default="x", description="any value: a different task id")

    def produce(self, out: StageOutput) -> None:
        role = os.environ.get("VIDEOMINE_TEST_ROLE", "plain")
        sync = Path(os.environ.get("VIDEOMINE_TEST_SYNC", out.path))
        (out.path / "who.txt").write_text(role)
        (sync / f"{role}.computing").touch()
        if role == "fail":
            raise RuntimeError("RaceStage: failing on purpose")
        if role == "first":
            _wait((sync / "second.computing").exists, "the second writer")
        elif role == "second":
            _wait(self.output().exists, "the first writer's output")
