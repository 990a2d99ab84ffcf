"""Staging directories of stage outputs: naming, stale cleanup, safe publication.

A stage writes into ``<root>/<TaskFamily>/.staging/<name>.<host>.<pid>.<random>/`` and
renames it to ``<root>/<TaskFamily>/<name>/`` when done (``tasks.common.StageTarget``).

- A run killed mid-write leaves its staging directory; when the same task starts again it
  removes its own stale ones (:func:`clean_stale_staging`): those of this host whose process
  is gone, and those of other hosts untouched for ``[videomine] stale_staging_hours``. Never
  another task's, and never one whose writer still runs on this host.
- A finished output is never deleted or replaced by another writer (:func:`discard`,
  :func:`remove_unfinished`): two processes computing one task on one root without a
  shared ``luigid`` (``--no-lock``) keep the first one's output.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"


def host_tag() -> str:
    """This host's name as it appears in staging directory names (no dots)."""
    return socket.gethostname().replace(".", "_") or "host"


def _writer_gone(entry: Path, host: str, pid: int) -> bool:
    """True when the process that made staging dir ``entry`` on this host has exited: no
    such pid, or the pid belongs to a process started after the dir was last changed."""
    if host != host_tag():
        return False
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # e.g. access denied: it exists, assume it is the writer
        return False
    return started > entry.stat().st_mtime + 1.0


def _last_change(entry: Path) -> float:
    times = [entry.stat().st_mtime]
    for dirpath, _, files in os.walk(entry):
        times.extend(os.stat(os.path.join(dirpath, f)).st_mtime for f in files)
    return max(times)


def clean_stale_staging(base: Path, name: str, max_age_s: float) -> list[Path]:
    """Remove the stale staging dirs of output ``name`` in ``base``; returns them.

    Only this output's dirs (``<name>.<host>.<pid>.<random>``) are candidates, never
    another task's. One of this host is stale when its process is gone; one of another
    host (or of an unknown writer: an older name) when nothing in it changed for
    ``max_age_s`` seconds. A live writer's directory is never removed."""
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for entry in base.iterdir():
        if not entry.name.startswith(name + ".") or not entry.is_dir():
            continue
        parts = entry.name[len(name) + 1 :].split(".")
        try:
            if len(parts) == 3 and parts[1].isdigit():
                stale = _writer_gone(entry, parts[0], int(parts[1]))
                if not stale and parts[0] != host_tag():
                    stale = time.time() - _last_change(entry) > max_age_s
            else:
                stale = time.time() - _last_change(entry) > max_age_s
        except FileNotFoundError:  # removed meanwhile (its writer finished or failed)
            continue
        if stale:
            log.info("removing stale staging directory %s", entry)
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def discard(staging: Path, url: str) -> bool:
    """Drop ``staging``: ``url`` was finished by another writer, whose output stays."""
    log.warning("%s was finished by another writer meanwhile; its output is kept", url)
    shutil.rmtree(staging, ignore_errors=True)
    return False


def remove_unfinished(final: Path, staging_base: Path) -> None:
    """Remove a directory without marker at ``final`` (left by a run killed between move
    and marker by an earlier version). It is first renamed aside, atomically, so that an
    output another writer moves in meanwhile is never the one deleted."""
    aside = staging_base / f"{final.name}.unfinished.{uuid.uuid4().hex[:8]}"
    try:
        os.rename(final, aside)
    except FileNotFoundError:
        return
    if (aside / SUCCESS).exists():  # another writer finished it just now: put it back
        try:
            os.rename(aside, final)
        except OSError:
            log.error("%s: a finished output was moved aside to %s", final, aside)
        return
    shutil.rmtree(aside, ignore_errors=True)
