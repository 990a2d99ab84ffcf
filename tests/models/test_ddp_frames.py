"""Counting and Jigsaw++ under 2-process gloo DDP on CPU: both ranks train and finish.

Not bit-equal to one process, by design: y (counting) and the donor of replaced tiles
(Jigsaw++) are another image of the rank's own slice of the global batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from models.config import TrainConfig
from tests.models.test_ddp import _free_port, _worker
from tests.models.test_jigsaw import write_radial_frames

TINY = {"widths": [8, -1, 16, -1, 16, -1]}
METHODS: dict[str, dict[str, Any]] = {
    "counting": {"crop": {"tile": 24}, "network": {"input_size": 24, "hidden": 32,
                                                   "n_counts": 16, "count_init_std": 0.2}},
    "jigsaw": {"crop": {"crop": 60, "cell": 20, "tile": 16},
               "network": {"input_size": 16, "fc6": 16, "fc7": 32, "n_permutations": 8}},
}  # fmt: skip


@pytest.mark.parametrize("task", sorted(METHODS))
def test_two_process_gloo_run(task: str, tmp_path: Path) -> None:
    data = write_radial_frames(tmp_path / "frames", n=16)
    cfg = TrainConfig(
        task=task, data=[str(data)], out_dir=str(tmp_path / "ddp"), steps=3, batch_size=8,
        workers=0, log_every=1, ckpt_every=3, tensorboard=False, lr=1e-3, val_fraction=0.25,
        trunk="vgg16", trunk_options=TINY, device="cpu", **METHODS[task],
    )  # fmt: skip
    mp.spawn(_worker, args=(2, _free_port(), cfg), nprocs=2, join=True)
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    ck = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert ck["network"]["kind"] == task
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert summary["pretext"]  # rank 0 ran the pretext checks on the held-back frames
