"""The ``luigi`` command line as users type it (issue 12, points 1, 3, 4, 7, 10, 12).

- Every ``luigi`` command printed in README.md and docs/*.md parses with Luigi's own
  command-line parser (every parameter known, every value valid; fast), and shows its
  ``--help`` through the real console script in a subprocess (``slow``: ~2 s of CPU each,
  most of it importing torch); every task can be the root of a command line (no parameter
  collides with Luigi's own flags).
- A tiny real run through the console script: BuildGraph over three tiny synthetic clips,
  one shard of which yields no seed; MineAll on top; PublishDataset; TrainTransitive from
  the published dataset by name.
- Exit codes (luigi.cfg ``[retcode]``), refusing to publish an existing version from
  another run, stale staging cleanup, and two ``--no-lock`` writers on one root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest
from luigi.cmdline_parser import CmdlineParser

import tasks
from pipeline.synthetic import write_video
from tests.mining_fixtures import clip
from tests.tasks.cli_commands import LUIGI, REPO, documented_commands, luigi_env, run_luigi

COMMANDS = documented_commands()
TINY_NET = {
    "trunk_options": {"widths": [8, -1, 8, -1, 8, -1, 8, -1, 8, -1]},
    "network": {"hidden": 16, "embed_dim": 8, "input_size": 32},
    "tensorboard": False, "log_every": 1, "val_fraction": 0.0, "video_fallback": True,
}  # fmt: skip


def test_the_docs_print_the_main_commands() -> None:
    families = {argv[argv.index("tasks") + 1] for argv in COMMANDS.values() if "tasks" in argv}
    assert {"BuildGraph", "MineAll", "TrainTransitive", "TrainTracking", "PublishDataset"} <= (
        families
    )
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("where", sorted(COMMANDS), ids=sorted(COMMANDS))
def test_documented_command_parses(where: str) -> None:
    """Luigi's own command-line parser (the console script's) accepts every flag and value
    and builds the task the command names."""
    argv = COMMANDS[where]
    with CmdlineParser.global_instance(argv) as cp:
        task = cp.get_task_obj()
    assert task.task_family == argv[argv.index("tasks") + 1]


@pytest.mark.slow  # ~2 s of CPU per command (importing torch); the parse test above is fast
def test_documented_commands_show_help_through_the_console_script() -> None:
    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LUIGI), *argv, "--help"], cwd=REPO, env=luigi_env(), capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(COMMANDS, pool.map(run, COMMANDS.values()), strict=True))
    bad = {w: p.stderr[-800:] for w, p in done.items() if p.returncode or "usage:" not in p.stdout}
    assert not bad, bad


@pytest.mark.parametrize("family", sorted(tasks.__all__))
def test_every_task_can_be_the_root_of_a_command(
    family: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task parameter named like one of Luigi's flags (``--workers``) makes argparse
    refuse the whole command line when that task is the root; --help shows it."""
    with pytest.raises(SystemExit) as e:
        CmdlineParser(["--module", "tasks", family, "--help"])
    assert e.value.code in (0, None)  # help printed, not an argparse error (2)
    assert "--local-scheduler" in capsys.readouterr().out


# ------------------------------------------------------------------- a tiny real run


def _tiny_run(tmp: Path, order: tuple[str, ...] = ("still", "movA", "movB")) -> Path:
    """Three tiny clips, one per shard (``still`` yields no seed); returns the cfg."""
    media = tmp / "media"
    media.mkdir(parents=True, exist_ok=True)
    kinds = {
        "still": dict(mode="static", seed=2),
        "movA": dict(object_size=120, speed=1.0, seed=1, object_textures=("noise", "checker")),
        "movB": dict(object_size=120, speed=1.0, seed=3, object_textures=("checker", "noise")),
    }
    for name in order:
        if not (media / f"{name}.mp4").exists():
            write_video(media / f"{name}.mp4", clip(n_frames=40, **kinds[name])[0], 25.0)
    lst = tmp / "videos.csv"
    lst.write_text("url,video_id\n" + "".join(f"{media / n}.mp4,{n}\n" for n in order))
    cfg = tmp / "run.cfg"
    cfg.write_text(
        f"[videomine]\nroot = {tmp / 'run'}\nvideo_list = {lst}\nvideos_per_shard = 1\n"
        f"registry = {tmp.parent / 'registry'}\n"
        "[DetectMotion]\nframe_step = 3\ntrack_length = 12\nmin_seed_gap = 8\n"
        "[TrackObjects]\ntrack_length = 12\n"
    )
    return cfg


def _ok(p: subprocess.CompletedProcess[str]) -> str:
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "This progress looks :)" in out, out[-3000:]
    return out


def _one(root: Path, family: str, shard: int | None = None) -> Path:
    dirs = sorted(d for d in (root / family).iterdir() if (d / "_SUCCESS").exists())
    if shard is not None:
        dirs = [d for d in dirs if json.loads((d / "_meta.json").read_text())["params"]
                ["shard"] == str(shard)]  # fmt: skip
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_tiny_run_through_the_luigi_command(tmp_path: Path) -> None:
    cfg = _tiny_run(tmp_path / "a")
    root = tmp_path / "a" / "run"
    # The README's mining command. Shard 0 (a still clip) has no seed: not "empty output".
    _ok(run_luigi(["--module", "tasks", "BuildGraph", "--local-scheduler"], cfg))
    still = pq.read_table(_one(root, "TrackObjects", 0) / "track_videos.parquet").to_pylist()
    assert [(r["video_id"], r["status"], r["n_seeds"]) for r in still] == [("still", "ok", 0)]
    pairs = pq.read_table(_one(root, "BuildGraph") / "pairs.parquet").to_pylist()
    assert {"intra", "inter"} <= {p["pair_type"] for p in pairs}
    # MineAll reaches everything (SegmentMotion and ReleaseVideos on top of BuildGraph)
    out = _ok(run_luigi(["--module", "tasks", "MineAll", "--local-scheduler"], cfg))
    assert "MineAll()" in out and len(list((root / "SegmentMotion").glob("*/_SUCCESS"))) == 3
    # published, then trained from by name (the README's second team)
    _ok(run_luigi(["--module", "tasks", "PublishDataset", "--name", "tiny", "--version", "1",
                   "--tables", '["pairs","nodes"]', "--upstream", '["BuildGraph"]',
                   "--local-scheduler"], cfg))  # fmt: skip
    _ok(run_luigi(["--module", "tasks", "TrainTransitive", "--dataset", "tiny@1",
                   "--steps", "2", "--batch-size", "4", "--loader-workers", "0",
                   "--options", json.dumps(TINY_NET), "--local-scheduler"], cfg))  # fmt: skip
    summary = json.loads((_one(root, "TrainTransitive") / "summary.json").read_text())
    assert summary["steps"] == 2


# ------------------------------------------------------------------- exit codes


def test_exit_codes(tmp_path: Path) -> None:
    """luigi.cfg [retcode]: a refused input list (35) and a failed task (30) exit non-zero."""
    bad = tmp_path / "bad.csv"
    bad.write_text("link,licence\nhttp://example.com/a.mp4,cc0\n")  # no `url` column
    cfg = tmp_path / "run.cfg"
    cfg.write_text(f"[videomine]\nroot = {tmp_path / 'run'}\nvideo_list = {bad}\n")
    p = run_luigi(["--module", "tasks", "BuildGraph", "--local-scheduler"], cfg)
    assert p.returncode == 35, (p.stdout + p.stderr)[-3000:]
    assert "bad.csv" in p.stderr and "url" in p.stderr
    env = {"VIDEOMINE_TEST_ROLE": "fail", "VIDEOMINE_TEST_SYNC": str(tmp_path)}
    p = _race(cfg, "--local-scheduler", env=env).communicate(timeout=300)
    assert "failing on purpose" in p[0]
    assert _race.last.returncode == 30  # type: ignore[attr-defined]


def _race(cfg: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [str(LUIGI), "--module", "tests.tasks.cli_race", "RaceStage", *args]
    p = subprocess.Popen(
        cmd, cwd=REPO, env={**luigi_env(cfg), **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    _race.last = p  # type: ignore[attr-defined]
    return p


# ------------------------------------------------------------------- publish


def test_publishing_an_existing_version_from_another_run_fails(tmp_path: Path) -> None:
    """Same parameters, other videos: the task ids are equal, the lineage is not."""
    publish = ["--module", "tasks", "PublishDataset", "--name", "d", "--version", "1",
               "--tables", '["videos"]', "--upstream", '["FetchVideos"]', "--local-scheduler"]  # fmt: skip
    first = _tiny_run(tmp_path / "a")
    _ok(run_luigi(publish, first))
    entry = (tmp_path / "registry" / "catalog" / "d" / "1.json").read_bytes()
    other = _tiny_run(tmp_path / "b", order=("movB", "still", "movA"))
    # its outputs complete first: PublishDataset is then checked for completeness at once
    _ok(run_luigi(["--module", "tasks", "FetchAllVideos", "--local-scheduler"], other))
    p = run_luigi(publish, other)
    assert p.returncode == 30, (p.stdout + p.stderr)[-3000:]
    assert "d@1 is already published" in p.stderr
    assert (tmp_path / "registry" / "catalog" / "d" / "1.json").read_bytes() == entry


# ------------------------------------------------------------------- staging and writers


def _race_cfg(tmp_path: Path) -> Path:
    cfg = tmp_path / "race.cfg"
    cfg.write_text(f"[videomine]\nroot = {tmp_path / 'run'}\nvideos_per_shard = 50\n")
    return cfg


def _race_output(tmp_path: Path, luigi_config: Callable[..., Path]) -> Path:
    from tests.tasks.cli_race import RaceStage

    luigi_config(root=str(tmp_path / "run"), videos_per_shard=50)
    return Path(RaceStage().output().path)


def test_a_task_removes_its_own_stale_staging_only(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    out = _race_output(tmp_path, luigi_config)
    staging = out.parent / ".staging"
    staging.mkdir(parents=True)
    host = socket.gethostname().replace(".", "_")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        time.sleep(0.2)
        entries = {
            "dead": staging / f"{out.name}.{host}.{dead_pid}.abc123",  # killed run: removed
            "live": staging / f"{out.name}.{host}.{live.pid}.def456",  # still running: kept
            "other_task": staging / f"Other_x_0123-89abcdef.{host}.{dead_pid}.ghi789",
            "old_foreign": staging / f"{out.name}.otherhost.4242.jkl012",  # idle 2 days
            "new_foreign": staging / f"{out.name}.otherhost.4243.mno345",  # just written
        }
        for d in entries.values():
            d.mkdir()
            (d / "videos.parquet").write_bytes(b"half-written")
        two_days = time.time() - 2 * 86400
        for p in (entries["old_foreign"], entries["old_foreign"] / "videos.parquet"):
            os.utime(p, (two_days, two_days))
        _ok(run_luigi(["--module", "tests.tasks.cli_race", "RaceStage", "--local-scheduler"],
                      _race_cfg(tmp_path)))  # fmt: skip
        left = {k for k, d in entries.items() if d.exists()}
        assert left == {"live", "other_task", "new_foreign"}
        assert (out / "who.txt").read_text() == "plain"
    finally:
        live.kill()
        live.wait()


def test_two_no_lock_writers_never_replace_a_finished_output(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    """Both processes compute the task; the second finishes after the first committed and
    must keep the first one's output (before: it deleted it and moved its own in)."""
    out = _race_output(tmp_path, luigi_config)
    cfg = _race_cfg(tmp_path)
    args = ("--local-scheduler", "--no-lock")
    procs = [
        _race(cfg, *args, env={"VIDEOMINE_TEST_ROLE": r, "VIDEOMINE_TEST_SYNC": str(tmp_path)})
        for r in ("first", "second")
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    assert (tmp_path / "first.computing").exists() and (tmp_path / "second.computing").exists()
    assert (out / "who.txt").read_text() == "first"
    assert json.loads((out / "_meta.json").read_text())["pid"] == procs[0].pid
    assert "finished by another writer meanwhile" in logs[1]
    assert not any((out.parent / ".staging").iterdir())
    assert luigi.task.Register  # the in-process config was only used to name the output
