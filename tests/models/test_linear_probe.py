"""Linear evaluation: the split, the classifier on known answers, the comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.linear_probe import (
    LinearProbeConfig,
    evaluate_linear,
    layer_features,
    probe,
    score,
    seeded_split,
    source_of,
)
from models.synthetic import SyntheticPatchConfig, write_labelled_folder
from models.trunks import build_trunk, trunk_spec


def test_split_keeps_sequences_on_one_side_and_is_seeded() -> None:
    names = [f"a_{i:03d}.jpg" for i in range(10)] + [f"b_{i:03d}.jpg" for i in range(6)]
    names += [f"c_{i:03d}.jpg" for i in range(8)]  # class 1 has one sequence only
    labels = np.array([0] * 16 + [1] * 8)
    tr, te = seeded_split(labels, names, 0.5, seed=0)
    assert np.array_equal(tr, seeded_split(labels, names, 0.5, seed=0)[0])
    src_tr = {source_of(names[i]) for i in tr if labels[i] == 0}
    src_te = {source_of(names[i]) for i in te if labels[i] == 0}
    assert len(src_tr) == 1 and len(src_te) == 1 and src_tr != src_te
    # the one-sequence class is split in time: its first half trains
    assert [names[i] for i in tr if labels[i] == 1] == [f"c_{i:03d}.jpg" for i in range(4)]
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(24))
    rtr, _ = seeded_split(labels, names, 0.5, seed=0, mode="random")
    assert {source_of(names[i]) for i in rtr if labels[i] == 0} == {"a", "b"}  # straddles
    with pytest.raises(ValueError, match="needs >= 2"):
        seeded_split(np.array([0, 1, 1]), ["x", "y", "z"], 0.5, 0)
    with pytest.raises(KeyError, match="valid: random, source"):
        seeded_split(labels, names, 0.5, 0, mode="bogus")


def test_score_by_hand() -> None:
    got = score(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["x", "y"])
    assert got["per_class"] == {"x": 0.5, "y": 2 / 3}
    assert got["mean_class_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert got["accuracy"] == pytest.approx(0.6)


def test_linear_classifier_separates_a_planted_direction_among_noise() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    x = rng.normal(size=(300, 20)).astype(np.float32) * 5  # loud noise dimensions
    x[:, 7] = y * 3.0 + rng.normal(size=300) * 0.3  # the class lives in one quiet direction
    split = seeded_split(y, [f"s{i}_{i}" for i in range(300)], 0.5, 0, mode="random")
    m = probe(x, y, split, ["a", "b", "c"], LinearProbeConfig())
    assert m["mean_class_accuracy"] > 0.9 and m["dim"] == 20  # chance 1/3


def test_layer_features_pool_to_max_dim_and_name_unknown_layers() -> None:
    trunk = build_trunk("vgg16", widths=[8, -1, 16, -1])
    imgs = np.zeros((3, 32, 32, 3), np.uint8)
    f = layer_features(trunk, imgs, LinearProbeConfig(layer="features.0", max_dim=8 * 4 * 4))
    assert f.shape == (3, 8 * 4 * 4)  # 8 x 32 x 32 average-pooled to 8 x 4 x 4
    assert layer_features(trunk, imgs, LinearProbeConfig()).shape == (3, 16 * 8 * 8)
    with pytest.raises(KeyError, match="valid: \\['pool5', 'features'"):
        layer_features(trunk, imgs, LinearProbeConfig(layer="fc9"))


def test_comparison_table_lists_unavailable_networks(tmp_path: Path) -> None:
    data = SyntheticPatchConfig(n_classes=3, size=32)
    root = write_labelled_folder(tmp_path / "lab", data, per_class=8)
    trunk = build_trunk("vgg16", widths=[8, -1, 8, -1, 8, -1], init_seed=4)
    ck = tmp_path / "net.pt"
    torch.save(
        {"trunk_spec": trunk_spec(trunk), "config": {}, "network": {"config": {"input_size": 32}},
         "model": {f"trunk.{k}": v for k, v in trunk.state_dict().items()}}, ck,
    )  # fmt: skip
    m = evaluate_linear(root, tmp_path / "out", {"student": ck, "counting": None})
    rows = m["methods"]
    assert rows["counting"]["status"] == "not available"
    assert rows["majority_class"]["mean_class_accuracy"] == pytest.approx(1 / 3)
    assert {"hog", "random_init", "student"} <= set(rows)
    # the random-init row is the same architecture and init as the network: same features
    assert rows["random_init"]["per_class"] == rows["student"]["per_class"]
    assert rows["student"]["input"] == 32 and rows["student"]["dim"] == 8 * 4 * 4
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert "| counting | not available |" in md
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n_test"] == 12
