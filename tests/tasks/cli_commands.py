"""The ``luigi`` commands printed in README.md and docs/*.md, parsed out of the Markdown.

A command is a line of a fenced code block that starts with ``luigi `` (continued over
lines ending in ``\\``; shell comments dropped) or an inline code span ``luigi ...``. New
commands in the docs are picked up by the tests without listing them anywhere.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
LUIGI = Path(sys.executable).with_name("luigi")  # the console script users run
_FENCE = re.compile(r"^\s*```")
_INLINE = re.compile(r"`(luigi [^`]+)`")


def commands(text: str) -> list[list[str]]:
    """argv (without ``luigi``) of every luigi command in one Markdown text."""
    out: list[list[str]] = []
    in_block, pending = False, ""
    for line in text.splitlines():
        if _FENCE.match(line):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            out.extend(shlex.split(m)[1:] for m in _INLINE.findall(line))
            continue
        line = pending + line.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "luigi":
            out.append(argv[1:])
    return out


def documented_commands() -> dict[str, list[str]]:
    """``"<file>: luigi ..."`` -> argv, for every distinct command of the docs."""
    found: dict[str, list[str]] = {}
    for path in DOCS:
        for argv in commands(path.read_text()):
            found.setdefault(f"{path.relative_to(REPO)}: luigi {shlex.join(argv)}", argv)
    return found


def luigi_env(config: Path | None = None) -> dict[str, str]:
    """The environment of a user in the checkout: the package on the path, and optionally
    a test's own luigi.cfg read after the checkout's (``LUIGI_CONFIG_PATH``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LUIGI_CONFIG_PATH", None)
    if config is not None:
        env["LUIGI_CONFIG_PATH"] = str(config)
    return env


def run_luigi(
    argv: list[str], config: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``luigi <argv>`` through the real console script, in the checkout (its luigi.cfg)."""
    return subprocess.run(
        [str(LUIGI), *argv],
        cwd=REPO,
        env=luigi_env(config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
