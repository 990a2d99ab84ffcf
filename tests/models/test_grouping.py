"""Grouping network and pixel-pair loss (Zhang & Maire 2020), edge network and its loss."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pytest
import torch

from data_manifests import schema as schemas
from models.config import TrainConfig
from models.edge_net import (
    EdgeNet,
    EdgeNetConfig,
    EdgeTargetConfig,
    balanced_edge_loss,
    edge_target,
)
from models.grouping import GroupingNet, GroupingNetConfig, pixel_pair_loss, sample_embeddings
from models.methods.masks import IGNORE
from models.synthetic_regions import write_region_manifest
from models.train import train
from models.trunks import load_checkpoint_trunk


def _unit(deg: float) -> list[float]:
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


def test_pixel_pair_loss_by_hand() -> None:
    # anchor at 0 deg; positives at 60 deg (cos 0.5) and 0 deg (cos 1), scaled (cosine ignores
    # the norm); negatives at 90 deg (cos 0) and 180 deg (cos -1).
    a = torch.tensor([_unit(0)], requires_grad=True)
    pos = torch.tensor([[[2 * v for v in _unit(60)], _unit(0)]])
    neg = torch.tensor([[_unit(90), [-3.0, 0.0]]])
    loss, st = pixel_pair_loss(a, pos, neg)
    denom_rest = math.exp(0.0) + math.exp(-1.0)
    l1 = -math.log(math.exp(0.5) / (math.exp(0.5) + denom_rest))
    l2 = -math.log(math.exp(1.0) / (math.exp(1.0) + denom_rest))
    assert loss.item() == pytest.approx((l1 + l2) / 2, abs=1e-6)
    assert st.pairs == 2 and st.pos_cos == pytest.approx(0.75, abs=1e-6)
    assert st.neg_cos == pytest.approx(-0.5, abs=1e-6) and st.accuracy == 1.0
    # temperature 0.5 divides every cosine by 0.5
    loss_t, _ = pixel_pair_loss(a, pos, neg, temperature=0.5)
    rest = math.exp(0.0) + math.exp(-2.0)
    lt1 = -math.log(math.exp(1.0) / (math.exp(1.0) + rest))
    lt2 = -math.log(math.exp(2.0) / (math.exp(2.0) + rest))
    assert loss_t.item() == pytest.approx((lt1 + lt2) / 2, abs=1e-6)


def test_pixel_pair_loss_masks_padding_and_gradient_points_to_positive() -> None:
    a = torch.tensor([_unit(0), _unit(90)], requires_grad=True)
    pos = torch.tensor([[_unit(60), _unit(170)], [_unit(90), _unit(0)]])
    neg = torch.tensor([[_unit(-60), _unit(0)], [_unit(180), _unit(45)]])
    pv = torch.tensor([[True, False], [True, False]])
    nv = torch.tensor([[True, False], [True, False]])
    loss, st = pixel_pair_loss(a, pos, neg, pv, nv)
    l0 = math.log(2.0)  # positive and negative both at cos 0.5
    l1 = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.0)))  # 90 vs 180 deg
    assert st.pairs == 2 and loss.item() == pytest.approx((l0 + l1) / 2, abs=1e-6)
    loss.backward()
    # descending the gradient turns anchor 0 (0 deg) towards its positive (60 deg), away
    # from its negative (-60 deg)
    assert a.grad is not None and float(a.grad[0, 1]) < 0.0
    # no valid pair at all: 0, finite, differentiable
    z, zst = pixel_pair_loss(a, pos, neg, torch.zeros_like(pv), nv)
    assert z.item() == 0.0 and zst.pairs == 0


def test_pixel_pair_loss_rejects_bad_shapes_and_temperature() -> None:
    with pytest.raises(ValueError, match="anchor"):
        pixel_pair_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="temperature"):
        pixel_pair_loss(torch.ones(1, 2), torch.ones(1, 1, 2), torch.ones(1, 1, 2), temperature=0)


def test_grouping_net_shape_and_trunk_layout() -> None:
    net = GroupingNet(GroupingNetConfig()).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 64, 96))
    assert out.shape == (2, 32, 16, 24)
    assert any(k.startswith("trunk.layer3.") for k in net.state_dict())
    # layer4 is unused: frozen (DDP would wait for its gradients), still in the state dict
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert not any(n.startswith("trunk.layer4.") for n in trainable)
    assert any(k.startswith("trunk.layer4.") for k in net.state_dict())
    with pytest.raises(KeyError, match="resnet18"):
        GroupingNet(GroupingNetConfig(trunk="vgg16"))


def test_sample_embeddings_reads_pixel_centres() -> None:
    # a 1/4 map whose value is the cell's column index: pixel x maps to cell (x + 0.5) / 4 - 0.5
    emb = torch.arange(4, dtype=torch.float32).view(1, 1, 1, 4).expand(1, 1, 2, 4).contiguous()
    yx = torch.tensor([[[0, 0], [0, 6], [0, 15]]])  # image 8 x 16
    got = sample_embeddings(emb, yx, (8, 16))[0, :, 0]
    expected = torch.tensor([0.0, (6 + 0.5) / 4 - 0.5, 3.0])  # border-clamped at the ends
    torch.testing.assert_close(got, expected)


def test_balanced_edge_loss_weighs_classes_equally() -> None:
    # 1 edge pixel, 3 non-edge, 1 ignored; logits 0 everywhere: each decided pixel costs log 2
    # with weights 3/4 (edge) and 1/4 (each non-edge): (3/4 + 3/4) log 2 / 4
    target = torch.tensor([[[1, 0, 0, 0, IGNORE]]], dtype=torch.uint8)
    logits = torch.zeros(1, 1, 5)
    loss = balanced_edge_loss(logits, target)
    assert loss.item() == pytest.approx(1.5 * math.log(2) / 4, abs=1e-6)
    # a confident miss of the single edge costs as much as a confident miss of all 3 non-edges
    miss_edge = balanced_edge_loss(torch.tensor([[[-20.0, -20, -20, -20, 0]]]), target)
    miss_bg = balanced_edge_loss(torch.tensor([[[20.0, 20, 20, 20, 0]]]), target)
    assert miss_edge.item() == pytest.approx(miss_bg.item(), rel=1e-3)


def test_edge_net_shape_and_target_ignore_band() -> None:
    net = EdgeNet(EdgeNetConfig()).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 48, 64))
    assert out.shape == (1, 5, 48, 64)  # fused + 4 side outputs
    s = np.zeros((9, 9), np.float32)
    s[:, 4] = 0.9
    t = edge_target(s)
    assert (t[:, 4] == 1).all() and (t[:, 2:4] == IGNORE).all() and (t[:, :2] == 0).all()


def _edge_table(n: int = 6, size: int = 64) -> pa.Table:
    """Frames with a bright square on textured noise; targets: the square's outline."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        y0, x0 = rng.integers(8, size // 2, 2)
        img[y0 : y0 + 24, x0 : x0 + 24] = 220
        edge = np.zeros((size, size), np.float32)
        edge[y0 : y0 + 24, x0 : x0 + 24] = 1.0
        inner = np.zeros_like(edge)
        inner[y0 + 1 : y0 + 23, x0 + 1 : x0 + 23] = 1.0
        tgt = edge_target(edge - inner, EdgeTargetConfig(ignore_radius=1))
        rows.append({
            "video_id": "v", "frame": i, "round": 0, "edge_share": float((tgt == 1).mean()),
            "frame_jpeg": cv2.imencode(".png", img[:, :, ::-1])[1].tobytes(),
            "target_png": cv2.imencode(".png", tgt)[1].tobytes(),
        })  # fmt: skip
    return schemas.table_from_rows(rows, schemas.get("edge_targets"))


def test_edges_task_trains_through_models_train_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "edge_targets.parquet"
    schemas.write_parquet(_edge_table(), data, schemas.get("edge_targets"), {})
    cfg: dict[str, Any] = dict(
        task="edges", data=[str(data)], out_dir=str(tmp_path / "run"), steps=4, batch_size=2,
        workers=0, log_every=2, ckpt_every=2, tensorboard=False, lr=0.01, val_fraction=0.0,
        crop={"input_size": 48}, device="cpu",
    )  # fmt: skip
    summary = train(TrainConfig(**cfg))
    assert summary["steps"] == 4
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(x["loss"]) and 0 < x["edge_share"] < 0.5 for x in lines)
    summary = train(TrainConfig(**{**cfg, "steps": 6}))  # resumes from step 4
    assert summary["resumed_from"] == 4 and summary["steps"] == 6
    trunk = load_checkpoint_trunk(tmp_path / "run" / "checkpoint.pt")
    assert trunk.name == "resnet18"


def test_grouping_task_learns_region_pairs_and_resumes(tmp_path: Path) -> None:
    data = write_region_manifest(tmp_path / "data", n=8, size=64)
    cfg: dict[str, Any] = dict(
        task="grouping", data=[str(data)], out_dir=str(tmp_path / "run"), steps=30,
        batch_size=4, workers=0, log_every=10, ckpt_every=10, tensorboard=False, lr=0.05,
        val_fraction=0.0, crop={"input_size": 64, "min_crop": 0.9}, device="cpu",
    )  # fmt: skip
    train(TrainConfig(**{**cfg, "steps": 10}))
    summary = train(TrainConfig(**cfg))  # resumes at 10
    assert summary["resumed_from"] == 10 and summary["steps"] == 30
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [10, 20, 30]
    assert all(x["pairs"] > 0 for x in lines)
    # learning: the contrastive loss falls and positives end up closer than negatives
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert lines[-1]["pos_cos"] > lines[-1]["neg_cos"]


def test_crop_maps_pixels_where_the_image_puts_them() -> None:
    from models.data_grouping import Crop

    img = np.zeros((40, 60), np.uint8)
    img[10, 30] = 255  # one marked pixel
    for flip in (False, True):
        crop = Crop(y0=4.0, x0=20.0, side=20.0, size=40, flip=flip)  # 2x zoom
        out = crop.apply(img, cv2.INTER_NEAREST)
        (yx,), inside = crop.map_points(np.array([[10, 30]]))
        assert inside.all() and out[yx[0], yx[1]] == 255
    (_,), inside = crop.map_points(np.array([[0, 0]]))
    assert not inside.any()


def _gradient_regions(h: int = 64, w: int = 96) -> pa.Table:
    """One frame whose colour encodes its pixel (R = 2x, G = 2y, B = 0), four quadrant leaves
    under the synthetic tree."""
    from models.synthetic_regions import HEIGHT, PARENT

    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([2 * xx, 2 * yy, np.zeros_like(xx)], axis=-1).astype(np.uint8)
    leaves = ((yy >= h // 2) * 2 + (xx >= w // 2)).astype(np.uint8)
    return pa.table({
        "frame_jpeg": [cv2.imencode(".png", img[:, :, ::-1])[1].tobytes()],
        "leaves_png": [cv2.imencode(".png", leaves)[1].tobytes()],
        "parent": [PARENT], "height": [HEIGHT],
    })  # fmt: skip


def test_two_views_map_the_same_pixels_to_the_same_content_and_mask_the_rest() -> None:
    from models.data_grouping import CropConfig, GroupingDataset, collate_grouping

    ds = GroupingDataset(_gradient_regions(), CropConfig(input_size=48, min_crop=0.3))
    moved = masked_in_2 = checked = 0
    for seed in range(12):
        it = ds[(0, seed)]
        assert it["image2"].shape == it["image"].shape == (48, 48, 3)
        for kind in ("anchors", "positives", "negatives"):
            valid = "anchor_valid" if kind == "anchors" else kind[:3] + "_valid"
            yx1, yx2 = it[kind].reshape(-1, 2), it[kind + "2"].reshape(-1, 2)
            v1, v2 = it[valid].reshape(-1), it[valid + "2"].reshape(-1)
            if kind == "negatives":  # four leaves: every sampled negative is real
                assert v1.any()
            c1 = it["image"][yx1[:, 0], yx1[:, 1]].astype(int)
            c2 = it["image2"][yx2[:, 0], yx2[:, 1]].astype(int)
            both = v1 & v2
            # the same frame pixel shows the same colour in both views (rounding: < 2.5 px)
            assert (np.abs(c1[both] - c2[both]) <= 5).all()
            checked += int(both.sum())
            moved += int((yx1[both] != yx2[both]).any(axis=1).sum())
            # a pixel seen in view 1 lies inside view 2 exactly when view 2's colours cover
            # it: the frame pixel is read off view 1, view 2's extent off its own colours
            rg2 = it["image2"].reshape(-1, 3)[:, :2].astype(int)
            lo, hi = rg2.min(0), rg2.max(0)
            rg = c1[v1][:, :2]
            well_in = ((rg >= lo + 6) & (rg <= hi - 6)).all(axis=1)
            well_out = ((rg < lo - 6) | (rg > hi + 6)).any(axis=1)
            assert v2[v1][well_in].all() and not v2[v1][well_out].any()
            masked_in_2 += int(well_out.sum())
    # the views are different crops, and small crops leave pixels out of one view
    assert checked > 100 and moved > checked // 2 and masked_in_2 > 0
    batch = collate_grouping([ds[(0, 1)], ds[(0, 2)]])
    assert batch["image2"].shape == (2, 48, 48, 3) and batch["anchors2"].shape[0] == 2
    one = GroupingDataset(_gradient_regions(), CropConfig(input_size=48, two_views=False))
    assert "image2" not in one[(0, 1)] and "image2" not in collate_grouping([one[(0, 1)]])


def test_grouping_step_with_two_views_uses_cross_view_pairs(tmp_path: Path) -> None:
    data = write_region_manifest(tmp_path / "data", n=4, size=64)
    cfg: dict[str, Any] = dict(
        task="grouping", data=[str(data)], steps=1, batch_size=4, workers=0, log_every=1,
        ckpt_every=1, tensorboard=False, lr=0.01, val_fraction=0.0, device="cpu",
    )  # fmt: skip
    lines = {}
    for two in (False, True):
        out = tmp_path / f"run{two}"
        crop = {"input_size": 64, "min_crop": 0.9, "two_views": two}
        train(TrainConfig(**cfg, out_dir=str(out), crop=crop))
        lines[two] = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isfinite(lines[True]["loss"]) and lines[True]["loss"] != lines[False]["loss"]
    # each view's anchors pair with their own and the other view's pixels (same pixel too):
    # with crops of 0.9 x the frame most of them are inside both, so more than 3 x the pairs
    assert lines[True]["pairs"] > 3 * lines[False]["pairs"] > 0
