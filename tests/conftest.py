"""Shared fixtures: an isolated luigi configuration per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2  # noqa: F401  before any test module imports decord (pipeline/_decord_source.py)
import luigi
import luigi.configuration
import pytest


@pytest.fixture
def luigi_config(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Set ``[videomine]`` (and other sections) for one test; restored afterwards.

    Usage: ``root = luigi_config(video_list=str(path), videos_per_shard=2)``; other
    sections as ``luigi_config(section="DetectMotion", frame_step=5)``. Returns the run root.
    """
    cfg = luigi.configuration.get_config()
    saved: list[tuple[str, str, Any]] = []
    root = tmp_path / "run"

    def set_(section: str = "videomine", **values: Any) -> Path:
        if section == "videomine":
            values.setdefault("root", str(root))
        if not cfg.has_section(section):
            cfg.add_section(section)
        for k, v in values.items():
            old = cfg.get(section, k, None) if cfg.has_option(section, k) else None
            saved.append((section, k, old))
            cfg.set(section, k, str(v))
        luigi.task.Register.clear_instance_cache()
        return root

    set_()
    yield set_
    for section, k, old in reversed(saved):
        if old is None:
            cfg.remove_option(section, k)
        else:
            cfg.set(section, k, old)
    luigi.task.Register.clear_instance_cache()


def build(tasks: list[luigi.Task], workers: int = 1) -> luigi.execution_summary.LuigiRunResult:
    """luigi.build with the local scheduler, returning the detailed result."""
    return luigi.build(
        tasks, local_scheduler=True, workers=workers, detailed_summary=True, log_level="WARNING"
    )
