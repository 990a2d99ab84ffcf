"""TrainJigsaw on SampleFrames of a real (synthetic) run, TrainCounting on a frames manifest."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import torch

from pipeline.synthetic import SyntheticConfig, generate, write_video
from tasks.frames import SampleFrames
from tasks.train_frames import TrainCounting, TrainJigsaw
from tests.conftest import build
from tests.models.test_jigsaw import write_radial_frames

TINY = {"widths": [8, -1, 16, -1, 16, -1]}


def test_train_jigsaw_on_sampled_frames(tmp_path: Path, luigi_config: Callable[..., Path]) -> None:
    d = tmp_path / "videos"
    d.mkdir()
    cfg = SyntheticConfig(height=120, width=160, n_frames=40, object_size=40, seed=1)
    write_video(d / "moving.mp4", generate(cfg).frames, 25.0)
    lst = tmp_path / "list.csv"
    with open(lst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["url", "video_id"])
        w.writeheader()
        w.writerow({"url": str(d / "moving.mp4"), "video_id": "moving"})
    luigi_config(video_list=str(lst), videos_per_shard=5)
    luigi_config(section="SampleFrames", step=2, frame_size=64)
    options = {
        "trunk_options": TINY, "val_fraction": 0.25,
        "crop": {"crop": 60, "cell": 20, "tile": 16},
        "network": {"input_size": 16, "fc6": 16, "fc7": 32, "n_permutations": 8},
    }  # fmt: skip
    task = TrainJigsaw(steps=3, batch_size=4, loader_workers=0, trunk="vgg16", options=options)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    assert SampleFrames(shard=0).complete()
    out = task.output().local_path()
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["network"]["kind"] == "jigsaw" and ck["step"] == 3
    pre = json.loads((out / "pretext.json").read_text())
    assert pre["chance"] == 0.125 and pre["puzzles"] == 5  # 20 frames, a quarter held back
    meta = json.loads((out / "_meta.json").read_text())
    assert meta["notes"]["pretext"] == pre


def test_train_counting_on_a_frames_manifest(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config()
    data = write_radial_frames(tmp_path / "frames", n=16)
    options = {
        "trunk_options": TINY, "val_fraction": 0.25, "crop": {"tile": 24},
        "network": {"input_size": 24, "hidden": 32, "n_counts": 16, "count_init_std": 0.2},
    }  # fmt: skip
    task = TrainCounting(
        dataset=str(data), steps=2, batch_size=4, loader_workers=0, trunk="vgg16", options=options
    )
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    pre = json.loads((task.output().local_path() / "pretext.json").read_text())
    assert pre["units"] == 16 and len(pre["count_error_by_interpolation"]) == 4
