"""A file that crashes a native decoder, in one shard with a good video (issue 12.2).

decord aborts the process (std::bad_alloc, exit 134) on an AVI whose header claims 2**31-1
frames. FetchVideos runs through the real ``luigi`` command line, so a regression shows as
a failed assertion here instead of a dead pytest; the later stages must open each file
with the backend FetchVideos recorded, never decord first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline import video_io
from pipeline.synthetic import write_video
from tasks.common import read_stage_table
from tasks.fetch import FetchVideos
from tasks.mining import DetectMotion, TrackObjects
from tasks.segment import SegmentMotion
from tests import media_fixtures as mf
from tests.conftest import build
from tests.mining_fixtures import clip

REPO = Path(__file__).resolve().parents[2]
CLAIM = 2**31 - 1


def luigi_cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "luigi", "--module", "tasks", *args, "--local-scheduler"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def configure(
    luigi_config: Callable[..., Path], cfg: Path, sections: dict[str, dict[str, Any]]
) -> Path:
    """The same settings in this process and in a config file for the command line."""
    root = luigi_config()
    sections = {**sections, "videomine": {"root": root, **sections.get("videomine", {})}}
    text = ""
    for section, values in sections.items():
        luigi_config(section=section, **values)
        text += f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
    cfg.write_text(text)
    return root


def test_absurd_header_costs_one_row_and_stages_use_the_recorded_backend(
    tmp_path: Path, luigi_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    moving, _, _ = clip(n_frames=40, object_size=120, speed=1.0, seed=1,
                        object_textures=("noise", "checker"))  # fmt: skip
    good = write_video(media / "good.mp4", moving, 25.0)
    liar = mf.lying_avi(media / "liar.avi", claim=CLAIM, frames=moving)
    lst = tmp_path / "videos.csv"
    lst.write_text(f"url,video_id\n{liar},liar\n{good},good\n")
    cfg = tmp_path / "run.cfg"
    configure(luigi_config, cfg, {
        "videomine": {"video_list": lst, "videos_per_shard": 2},
        "DetectMotion": {"frame_step": 6, "frame_height": 240, "box_size": 120},
    })  # fmt: skip

    r = luigi_cli(cfg, "FetchVideos", "--shard", "0")
    assert r.returncode == 0 and "bad_alloc" not in r.stderr, r.stderr[-3000:]
    fetch = FetchVideos(shard=0)
    assert fetch.complete(), r.stderr[-3000:]  # the command line built this very task
    rows = {v["video_id"]: v for v in read_stage_table(fetch, "videos").to_pylist()}
    assert rows["good"]["status"] == "ok" and rows["good"]["backend"] == "decord"
    assert rows["good"]["n_frames"] == 40
    bad = rows["liar"]
    assert bad["status"] == "ok" and bad["backend"] == "pyav", bad["error"]
    assert (bad["n_frames"], bad["header_frames"]) == (40, CLAIM)
    assert f"claims {CLAIM} frames" in bad["warning"]

    # the shard goes on: motion is detected in both videos
    assert build([DetectMotion(shard=0)]).scheduling_succeeded
    seeds = read_stage_table(DetectMotion(shard=0), "seed_videos").to_pylist()
    assert {s["video_id"]: (s["status"], s["n_frames"]) for s in seeds} == {
        "liar": ("ok", 40), "good": ("ok", 40)}  # fmt: skip


def forbid_decord(monkeypatch: pytest.MonkeyPatch) -> None:
    """decord raises on open, as it aborts on a file only PyAV reads."""

    def refuse(self: Any, path: str, *a: Any, **kw: Any) -> None:
        raise AssertionError(f"decord opened {path}, which FetchVideos read with PyAV")

    monkeypatch.setattr(video_io._DecordSource, "__init__", refuse)


def test_later_stages_open_files_with_the_backend_recorded_at_fetch(
    tmp_path: Path, luigi_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the PyAV probe forced, DetectMotion, TrackObjects and SegmentMotion must read
    with PyAV too (they tried decord first, which aborts on files like the one above)."""
    media = tmp_path / "media"
    media.mkdir()
    moving, _, _ = clip(n_frames=40, object_size=120, speed=1.0, seed=1,
                        object_textures=("noise", "checker"))  # fmt: skip
    good = write_video(media / "moving.mp4", moving, 25.0)
    lst = tmp_path / "videos.csv"
    lst.write_text(f"url,video_id\n{good},moving\n")
    configure(luigi_config, tmp_path / "run.cfg", {
        "videomine": {"video_list": lst, "videos_per_shard": 2},
        "FetchVideos": {"probe_backend": "pyav"},
        "DetectMotion": {"frame_step": 3, "track_length": 12, "min_seed_gap": 8},
        "TrackObjects": {"track_length": 12},
    })  # fmt: skip
    forbid_decord(monkeypatch)
    res = build([TrackObjects(shard=0), SegmentMotion(shard=0)])
    assert res.scheduling_succeeded, res.summary_text
    (row,) = read_stage_table(FetchVideos(shard=0), "videos").to_pylist()
    assert (row["status"], row["backend"]) == ("ok", "pyav")
    (seeds,) = read_stage_table(DetectMotion(shard=0), "seed_videos").to_pylist()
    assert (seeds["status"], seeds["error"], seeds["n_frames"]) == ("ok", None, 40)
    assert seeds["n_seeds"] > 0
    tracked = read_stage_table(TrackObjects(shard=0), "track_videos").to_pylist()
    assert [(t["status"], t["error"]) for t in tracked] == [("ok", None)]
    shots = read_stage_table(SegmentMotion(shard=0), "mask_shots").to_pylist()
    assert shots and all(s["status"] != "failed" for s in shots), [s["error"] for s in shots]


def test_shard_with_phone_video_audio_only_file_and_a_bom_list(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    """A list saved with a UTF-8 BOM; a phone video (display matrix: rotation recorded,
    upright size); an audio-only .mp4 (failed: no video stream, the real reason)."""
    media = tmp_path / "media"
    media.mkdir()
    phone, coded = mf.rotated_video(media / "phone.mp4", -90)  # a phone held upright
    audio = mf.audio_only_mp4(media / "voice-memo.mp4")
    lst = tmp_path / "videos.csv"
    lst.write_text(f"\ufeffurl,video_id\n{phone},phone\n{audio},memo\n", encoding="utf-8")
    luigi_config(video_list=str(lst), videos_per_shard=2, max_failure_rate=1.0)
    fetch = FetchVideos(shard=0)
    assert build([fetch]).scheduling_succeeded
    rows = {v["video_id"]: v for v in read_stage_table(fetch, "videos").to_pylist()}
    assert rows["phone"]["status"] == "ok" and rows["phone"]["rotation"] == 270
    assert (rows["phone"]["width"], rows["phone"]["height"]) == (120, 160)  # upright
    memo = rows["memo"]
    assert memo["status"] == "failed" and not memo["retryable"]
    assert "no video stream (its streams: audio (aac))" in memo["error"]
    assert "corrupt" not in memo["error"]
    with video_io.VideoReader(rows["phone"]["local_path"], height=448,
                              backend=rows["phone"]["backend"]) as vr:  # fmt: skip
        assert vr.size == (448, 336)  # portrait at the mining height, not squeezed
        assert len(vr) == len(coded)
