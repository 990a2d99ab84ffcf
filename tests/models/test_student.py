"""Knowledge-transfer student: the join, uniform-over-clusters draws, learning planted labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from data_manifests import schema
from models.config import TrainConfig
from models.methods.student import StudentCropConfig, StudentDataset, load_student_data
from models.sampling import GlobalBatchSampler
from models.synthetic import SyntheticPatchConfig, write_frames_manifest
from models.train import train

SMALL = {"widths": [16, -1, 32, -1, 64, -1, 64, -1, 64, -1], "batch_norm": True}


def test_frames_join_labels_and_refuse_unlabelled_frames(tmp_path: Path) -> None:
    data = SyntheticPatchConfig(n_classes=3, instances_per_class=4, size=32)
    d = write_frames_manifest(tmp_path / "a", data, labels=True)
    got = load_student_data([d])
    assert got.k == 3 and len(got.labels) == 24
    np.testing.assert_array_equal(np.bincount(got.labels), [8, 8, 8])
    img = StudentDataset(got, StudentCropConfig(input_size=24))[(5, 1)]["image"]
    assert img.shape == (24, 24, 3) and img.dtype == np.uint8
    # labels of other frames: nothing joins, and the message says why
    other = write_frames_manifest(tmp_path / "b", SyntheticPatchConfig(n_classes=3, seed=9))
    t = pq.read_table(d / "pseudo_labels.parquet")
    t = t.set_column(1, "video_id", schema.pa.array(["x"] * t.num_rows))
    pq.write_table(t, tmp_path / "b" / "pseudo_labels.parquet")
    with pytest.raises(ValueError, match="no frames row has a pseudo_labels row"):
        load_student_data([other])
    with pytest.raises(ValueError, match="holds table 'pseudo_labels'"):
        load_student_data([write_frames_manifest(tmp_path / "c", data)])


def test_draws_are_uniform_over_clusters_of_any_size() -> None:
    sizes = np.array([400, 40, 4])
    labels = np.repeat(np.arange(3), sizes)
    weights = 1.0 / sizes[labels]
    s = GlobalBatchSampler(weights, 50, seed=3, replacement=True)
    drawn = np.concatenate([[r for r, _ in s.batch_at(i)] for i in range(60)])
    share = np.bincount(labels[drawn], minlength=3) / drawn.size
    np.testing.assert_allclose(share, 1 / 3, atol=0.04)
    # without replacement an epoch is a permutation: shares follow the cluster sizes
    s = GlobalBatchSampler(weights, 4, seed=3)
    epoch = np.concatenate([[r for r, _ in s.batch_at(i)] for i in range(s.batches_per_epoch)])
    assert np.bincount(labels[epoch])[0] == 400


def test_student_learns_planted_pseudo_labels(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = SyntheticPatchConfig(n_classes=4, instances_per_class=40, size=40, seed=0)
    d = write_frames_manifest(tmp_path / "data", data, labels=True)
    cfg = TrainConfig(
        task="student", data=[str(d)], out_dir=str(tmp_path / "out"), steps=120, batch_size=32,
        lr=0.05, workers=0, log_every=40, ckpt_every=120, tensorboard=False, val_fraction=0.25,
        trunk="vgg16", trunk_options=SMALL, crop={"crop_fraction": 0.9, "flip": False},
        network={"input_size": 32, "hidden": 64, "n_classes": 4, "dropout": 0.0},
    )  # fmt: skip
    summary = train(cfg)
    # held-out frames (new colours; the class is the texture; no mirror, which would map
    # the 45-degree class onto the 135-degree one): measured 0.86, chance 0.25
    assert summary["val"]["val_accuracy"] > 0.6, summary["val"]
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    lines = [x for x in lines if "loss" in x]  # training lines (the last one is val_*)
    assert lines[0]["chance"] == 0.25 and lines[-1]["loss"] < lines[0]["loss"]
    with pytest.raises(ValueError, match=r"n_classes=3: set network: \{n_classes: 4\}"):
        train(TrainConfig(**{**cfg.to_dict(), "network": {"n_classes": 3, "input_size": 32},
                             "out_dir": str(tmp_path / "o2")}))  # fmt: skip
