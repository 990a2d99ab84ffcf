"""FetchVideos -> SampleFrames under luigi.build: frames of moving shots, failures as rows."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.imaging import decode_jpeg
from pipeline.synthetic import SyntheticConfig, generate, write_video
from tasks import common
from tasks.fetch import FetchVideos
from tasks.frames import SampleFrames
from tests.conftest import build


@pytest.fixture
def video_list(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    small = dict(height=120, width=160)
    clips = {
        "moving": SyntheticConfig(**small, n_frames=40, object_size=40, seed=1),
        "still": SyntheticConfig(**small, n_frames=30, mode="static", seed=2),
        "vanish": SyntheticConfig(**small, n_frames=20, seed=4),
    }
    for name, cfg in clips.items():
        write_video(d / f"{name}.mp4", generate(cfg).frames, 25.0)
    lst = tmp_path / "list.csv"
    with open(lst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["url", "video_id"])
        w.writeheader()
        for name in clips:
            w.writerow({"url": str(d / f"{name}.mp4"), "video_id": name})
    return lst


def test_sample_frames_build(video_list: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config(video_list=str(video_list), videos_per_shard=5)
    assert build([FetchVideos(shard=0)]).scheduling_succeeded
    (video_list.parent / "videos" / "vanish.mp4").write_bytes(b"truncated")  # fails alone
    task = SampleFrames(shard=0, step=10, frame_size=128)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    target = task.output()
    frames = common.read_stage_table(target, "frames").to_pylist()
    shots = common.read_stage_table(target, "frame_shots").to_pylist()
    assert [(r["video_id"], r["frame"]) for r in frames] == [("moving", i) for i in (0, 10, 20, 30)]
    by_video = {r["video_id"]: r for r in shots}
    assert by_video["moving"]["status"] == "sampled" and by_video["moving"]["n_sampled"] == 4
    assert by_video["still"]["status"] == "static"
    assert by_video["vanish"]["status"] == "failed" and by_video["vanish"]["shot"] == -1
    for r in frames:
        assert hashlib.sha256(r["jpeg"]).hexdigest() == r["sha256"]
        img = decode_jpeg(r["jpeg"])
        assert img.shape == (r["height"], r["width"], 3) == (128, 171, 3)
    meta = json.loads((Path(target.path) / "_meta.json").read_text())
    assert meta["counts"]["frames"] == 4 and meta["counts"]["videos_failed"] == 1
    assert (Path(target.path) / "frames.png").is_file()
    assert np.isclose(by_video["still"]["motion_score"], 0.0, atol=1e-3)
