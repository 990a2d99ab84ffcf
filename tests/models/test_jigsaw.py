"""Jigsaw++: the permutation set, puzzles, tile replacement, and a tiny run that learns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from data_manifests import schema as S
from models import dist
from models.config import TrainConfig
from models.methods.jigsaw import (
    JigsawConfig,
    JigsawDataset,
    collate_jigsaw,
    make_puzzle,
    normalise_tiles,
)
from models.methods.permutations import check_permutation_set, permutation_set
from models.steps import StepContext
from models.train import train
from pipeline.imaging import encode_jpeg

TINY = {"widths": [8, -1, 16, -1, 16, -1]}
SMALL = {"crop": 60, "cell": 20, "tile": 16, "channel_jitter": 2}


def _independent_min_distance(p: np.ndarray) -> int:
    best = 9
    for i in range(len(p)):
        d = (p[i + 1 :] != p[i]).sum(axis=1)
        if len(d):
            best = min(best, int(d.min()))
    return best


def test_permutation_set_of_701_properties() -> None:
    p = permutation_set(701, 3, 0)
    assert p.shape == (701, 9)
    assert (np.sort(p, axis=1) == np.arange(9)).all()  # orderings of the 9 tiles
    assert len({tuple(r) for r in p}) == 701  # distinct
    assert not (p == np.arange(9)).all(axis=1).any()  # identity excluded
    assert _independent_min_distance(p) >= 3
    assert np.array_equal(permutation_set(701, 3, 0), p)  # seeded: the same set again
    assert not np.array_equal(permutation_set(50, 3, 1), p[:50])  # another seed, another set


def test_permutation_set_refuses_what_it_cannot_meet() -> None:
    # orderings pairwise different in all 9 places: at most 9 exist (a Latin square)
    with pytest.raises(ValueError, match="min_distance=9"):
        permutation_set(12, 9, 0)
    bad = np.array([[1, 0, 2, 3, 4, 5, 6, 7, 8], [1, 0, 2, 3, 4, 5, 6, 8, 7]])
    with pytest.raises(ValueError, match="2 apart"):
        check_permutation_set(bad, 3)
    with pytest.raises(ValueError, match="identity"):
        check_permutation_set(np.arange(9)[None], 1)


def _cells_frame() -> np.ndarray:
    """60 x 60 frame whose 3x3 cells of 20 px are flat grey levels 20, 40, ..., 180."""
    f = np.zeros((60, 60, 3), np.uint8)
    for k in range(9):
        r, c = divmod(k, 3)
        f[r * 20 : r * 20 + 20, c * 20 : c * 20 + 20] = 20 * (k + 1)
    return f


def test_puzzle_tiles_follow_the_label() -> None:
    cfg = JigsawConfig(**SMALL, gray_share=0.0)
    perms = permutation_set(30, 3, 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        tiles, label, gray = make_puzzle(_cells_frame(), perms, cfg, rng)
        assert tiles.shape == (9, 16, 16, 3) and not gray
        # position i shows the tile of cell perms[label, i]
        assert [int(t[0, 0, 0]) // 20 - 1 for t in tiles] == list(perms[label])


def test_gray_share_grays_all_tiles_alike() -> None:
    perms = permutation_set(30, 3, 0)
    frame = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    rng = np.random.default_rng(2)
    # without the per-channel shift, a grayed puzzle has three identical channels
    gray_cfg = JigsawConfig(**{**SMALL, "channel_jitter": 0}, gray_share=0.5)
    grays = []
    for _ in range(400):
        tiles, _, gray = make_puzzle(frame, perms, gray_cfg, rng)
        grays.append(gray)
        same = (tiles[..., 0] == tiles[..., 1]).all() and (tiles[..., 1] == tiles[..., 2]).all()
        assert same == gray
    assert abs(np.mean(grays) - 0.5) < 0.08


def test_replacement_counts_are_uniform_and_labels_survive() -> None:
    rng = np.random.default_rng(0)
    frames = pa.array(
        [encode_jpeg(np.full((60, 60, 3), 30 * i, np.uint8)) for i in range(1, 7)]
    )  # flat frames of distinct grey levels: a foreign tile is recognisable
    ds = JigsawDataset(frames, JigsawConfig(**SMALL, gray_share=0.0), 30)
    counts = np.zeros(3)
    for _ in range(300):
        items = [ds[(i, int(rng.integers(1 << 30)))] for i in range(6)]
        batch = collate_jigsaw(items)
        assert batch["label"].tolist() == [it["label"] for it in items]
        n = batch["n_replaced"].numpy()
        assert n.tolist() == [it["n_replace"] for it in items]
        for i in range(6):
            own = (batch["tiles"][i].numpy() == items[i]["tiles"]).all(axis=(1, 2, 3))
            assert int((~own).sum()) == n[i]  # exactly n tiles came from another image
        np.add.at(counts, n, 1)
    share = counts / counts.sum()
    assert np.all(np.abs(share - 1 / 3) < 0.04), share


def test_tiles_are_normalised_one_by_one() -> None:
    sc = StepContext(dist.DistContext(0, 1, 0, torch.device("cpu"), None), torch.device("cpu"),
                     False, None, None, 0, False, 0)  # fmt: skip
    t = torch.randint(0, 256, (2, 9, 16, 16, 3), dtype=torch.uint8)
    t[0, 3] = t[0, 3] // 4 + 100  # a dim, low-contrast tile
    x = normalise_tiles(t, sc)
    assert x.shape == (2, 9, 3, 16, 16)
    assert torch.allclose(x.mean(dim=(2, 3, 4)), torch.zeros(2, 9), atol=1e-5)
    assert torch.allclose(x.std(dim=(2, 3, 4)), torch.ones(2, 9), atol=1e-4)


def write_radial_frames(out: Path, n: int = 32) -> Path:
    """``frames`` of a pattern whose look changes with the angle around the frame's centre, so
    each tile's place can be told from the tile alone (what a jigsaw network learns)."""
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:80].astype(float)
    rows = []
    for i in range(n):
        cy, cx = 32 + rng.uniform(-3, 3), 40 + rng.uniform(-3, 3)
        base = np.sin(np.arctan2(y - cy, x - cx)) * np.minimum(np.hypot(y - cy, x - cx) / 20, 1)
        img = np.stack([127 + 100 * base * c for c in rng.uniform(0.5, 1, 3)], -1)
        img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        blob = encode_jpeg(img)
        rows.append({"video_id": f"v{i}", "shot": 0, "frame": 0, "width": 80, "height": 64,
                     "jpeg": blob, "sha256": hashlib.sha256(blob).hexdigest()})  # fmt: skip
    ts = S.get("frames")
    S.write_parquet(S.table_from_rows(rows, ts), out / "frames.parquet", ts)
    return out


def test_tiny_jigsaw_run_lowers_the_loss_and_reports_pretext_checks(tmp_path: Path) -> None:
    data = write_radial_frames(tmp_path / "frames")
    cfg = TrainConfig(
        task="jigsaw", data=[str(data)], out_dir=str(tmp_path / "out"), steps=40,
        batch_size=16, workers=0, log_every=10, tensorboard=False, lr=0.01, trunk="vgg16",
        trunk_options=TINY, crop={**SMALL, "gray_share": 0.5}, val_fraction=0.25,
        network={"input_size": 16, "fc6": 32, "fc7": 64, "n_permutations": 4},
    )  # fmt: skip
    s = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if "loss" in x]
    assert losses[-1] < 0.5 * losses[0], losses  # from ln 4 = 1.39 at chance
    pre = s["pretext"]
    assert pre["chance"] == 0.25 and pre["puzzles"] == sum(pre["puzzles_by_replaced"].values())
    assert set(pre["accuracy_by_replaced"]) <= {"0", "1", "2"}
    assert pre["accuracy"] > pre["chance"]
    assert any("pretext" in x for x in lines)
