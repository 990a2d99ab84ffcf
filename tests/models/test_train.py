"""The training entry point: outputs, resume, refusal, NaN guard, learning, CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from models import methods
from models.checkpoint import ConfigMismatchError
from models.config import TrainConfig
from models.evaluate import evaluate_retrieval
from models.synthetic import (
    SyntheticPatchConfig,
    write_labelled_folder,
    write_mask_manifest,
    write_pair_manifest,
)
from models.train import NonFiniteLossError, train
from models.trunks import load_checkpoint_trunk

ROOT = Path(__file__).resolve().parents[2]
TINY = {"widths": [8, -1, 16, -1, 16, -1, 16, -1, 16, -1]}
HEAD = {"hidden": 32, "embed_dim": 16, "input_size": 32}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = SyntheticPatchConfig(n_classes=4, instances_per_class=8, size=32)
    return write_pair_manifest(tmp_path_factory.mktemp("pairs"), cfg)


def _cfg(data: Path, out: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        task="ranking", data=[str(data)], out_dir=str(out), steps=8, batch_size=8, workers=0,
        log_every=2, ckpt_every=4, trunk_options=TINY, network=HEAD, hard_after=3,
        tensorboard=False, lr=0.01, val_fraction=0.0,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    return dict(ck["model"])


def test_run_writes_checkpoint_metrics_and_summary(pairs: Path, tmp_path: Path) -> None:
    summary = train(_cfg(pairs, tmp_path, tensorboard=True, val_fraction=0.25))
    assert summary["steps"] == 8 and summary["val"]["val_triplets"] > 0
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if "loss" in x]
    assert [x["step"] for x in train_lines] == [2, 4, 6, 8]
    for x in train_lines:  # the collapse monitor is logged
        assert 0.0 <= x["active_hinges"] <= 1.0 and -1 <= x["neg_cos"] <= 1 and "pos_cos" in x
    assert [x["hard"] for x in train_lines] == [0.0, 0.5, 1.0, 1.0]  # switch at step 3
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    trunk = load_checkpoint_trunk(tmp_path / "checkpoint.pt")
    assert trunk.pool5_shape(32) == (16, 1, 1)


def test_kill_and_resume_equals_uninterrupted(
    pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train(_cfg(pairs, tmp_path / "straight"))
    method = methods.get("ranking")
    real = method.step

    def crash_at_6(model: Any, batch: Any, step: int, sc: Any) -> Any:
        if step == 6:
            raise KeyboardInterrupt("killed")
        return real(model, batch, step, sc)

    monkeypatch.setitem(methods.CATALOG, "ranking", replace(method, step=crash_at_6))
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(pairs, tmp_path / "killed"))
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] == 4
    monkeypatch.setitem(methods.CATALOG, "ranking", method)
    summary = train(_cfg(pairs, tmp_path / "killed"))
    assert summary["resumed_from"] == 4 and summary["steps"] == 8
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    steps_logged = [
        json.loads(x)["step"]
        for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps_logged == [2, 4, 6, 8]  # lines after the checkpoint were redone, not repeated


def test_mismatched_config_refuses_to_resume(pairs: Path, tmp_path: Path) -> None:
    train(_cfg(pairs, tmp_path, steps=4))
    with pytest.raises(ConfigMismatchError, match=r"lr: 0.01 -> 0.02.*margin: 0.5 -> 0.3"):
        train(_cfg(pairs, tmp_path, steps=8, lr=0.02, margin=0.3))
    summary = train(_cfg(pairs, tmp_path, steps=6, workers=1))  # runtime keys may change
    assert summary["resumed_from"] == 4


def test_non_finite_loss_stops_with_step_and_rows(
    pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    method = methods.get("ranking")
    real = method.step

    def nan_at_5(model: Any, batch: Any, step: int, sc: Any) -> Any:
        loss, stats = real(model, batch, step, sc)
        return (loss * float("nan"), stats) if step == 5 else (loss, stats)

    monkeypatch.setitem(methods.CATALOG, "ranking", replace(method, step=nan_at_5))
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss \(nan\) at step 5.*batch rows \[\d+(, \d+){7}\]"
    ):
        train(_cfg(pairs, tmp_path))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 4


def test_training_raises_retrieval_clearly_above_random_init(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = SyntheticPatchConfig(n_classes=4, instances_per_class=64, size=32, seed=0)
    write_pair_manifest(tmp_path / "data", data)
    write_labelled_folder(tmp_path / "eval", data, per_class=12)
    cfg = _cfg(
        tmp_path / "data", tmp_path / "out", steps=150, batch_size=32, lr=0.05, hard_after=1000,
        trunk_options={"widths": [16, -1, 32, -1, 64, -1, 64, -1, 64, -1], "batch_norm": True},
        network={"hidden": 128, "embed_dim": 64, "input_size": 32}, log_every=50, ckpt_every=150,
    )  # fmt: skip
    train(cfg)
    m = evaluate_retrieval(
        tmp_path / "eval", tmp_path / "ev", tmp_path / "out" / "checkpoint.pt", k=10
    )
    got = {k: v["precision_at_k"] for k, v in m["methods"].items()}
    # measured: trained 0.90, random init 0.33 (chance 0.23); 0.2 leaves room for BLAS noise
    assert got["checkpoint"] > got["random_init"] + 0.2, got
    assert (tmp_path / "ev" / "metrics.json").is_file() and (
        tmp_path / "ev" / "metrics.md"
    ).is_file()


def test_mask_and_context_tasks_train(tmp_path: Path) -> None:
    data = write_mask_manifest(tmp_path / "masks", n=16)
    common: dict[str, Any] = dict(
        data=[str(data)], steps=2, batch_size=4, workers=0, log_every=1, tensorboard=False,
        trunk_options=TINY, val_fraction=0.0,
    )  # fmt: skip
    s = train(TrainConfig(task="mask", out_dir=str(tmp_path / "m"), crop={"input_size": 64, "mask_size": 16},
                          network={"input_size": 64, "mask_size": 16, "reduce_channels": 8, "hidden": 16},
                          trunk="vgg16", **common))  # fmt: skip
    assert s["steps"] == 2
    line = json.loads((tmp_path / "m" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss", "iou", "precision", "recall"} <= set(line)
    s = train(TrainConfig(task="context", out_dir=str(tmp_path / "c"), crop={"patch_size": 32, "patch": 24, "gap": 8},
                          network={"input_size": 32, "fc6": 16, "fc7": 16}, **common))  # fmt: skip
    line = json.loads((tmp_path / "c" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss", "accuracy"} <= set(line)


def test_cli_with_yaml_config_flags_and_loader_workers(pairs: Path, tmp_path: Path) -> None:
    conf = tmp_path / "run.yaml"
    conf.write_text(
        f"task: ranking\ndata: [{pairs}]\nsteps: 3\nbatch_size: 8\nworkers: 2\nlog_every: 1\n"
        f"trunk_options: {json.dumps(TINY)}\nnetwork: {json.dumps(HEAD)}\ntensorboard: false\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "models.train", "--config", str(conf), "--out-dir", str(out), "--lr", "0.02"],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote" in r.stdout
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["config"]["lr"] == 0.02 and ck["config"]["workers"] == 2 and ck["step"] == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: ranking\nlearning_rate: 0.1\n")
    r = subprocess.run([sys.executable, "-m", "models.train", "--config", str(bad)],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert r.returncode != 0 and "unknown config key(s) ['learning_rate']" in r.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_channels_last_run(pairs: Path, tmp_path: Path) -> None:
    summary = train(_cfg(pairs, tmp_path, device="auto", workers=2, val_fraction=0.25))
    assert summary["device"].startswith("cuda") and summary["steps"] == 8
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isfinite(line["loss"])
    ck = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["config"]["amp"] == "auto" and ck["config"]["channels_last"] == "auto"


def test_loader_workers_fork_safely_after_opencv_threads_ran(pairs: Path, tmp_path: Path) -> None:
    # Regression: cv2.setNumThreads in a forked loader worker deadlocked once the parent's
    # OpenCV thread pool had run (it hung the test suite). Run in a child with a timeout, so
    # a hang fails instead of blocking.
    script = f"""
import cv2, numpy as np
cv2.setNumThreads(2)
for _ in range(10):
    cv2.warpAffine(np.zeros((1500, 1500, 3), np.uint8), np.eye(2, 3), (1200, 1200))
from models.config import TrainConfig
from models.train import train
train(TrainConfig(task="ranking", data=[{str(pairs)!r}], out_dir={str(tmp_path)!r}, steps=2,
      batch_size=8, workers=2, trunk_options={TINY!r}, network={HEAD!r}, tensorboard=False,
      val_fraction=0.0))
assert cv2.getNumThreads() == 2  # restored after training
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_worker_count_auto() -> None:
    from models.train import resolve_workers

    assert resolve_workers(-1, torch.device("cpu"), 1) == 2
    assert resolve_workers(3, torch.device("cpu"), 1) == 3
    cores = os.cpu_count() or 2
    assert resolve_workers(-1, torch.device("cuda", 0), 1) == max(2, min(8, cores))
    assert resolve_workers(-1, torch.device("cuda", 0), 10**6) == 2
