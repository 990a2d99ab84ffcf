"""Method ``grouping``: dense pixel embeddings from region trees (Zhang & Maire 2020).

The network (``GroupingNet``: ResNet-18 layer2/layer3 projected to 256 channels each at 1/4
of the input, concatenated, 3x3 conv to 32-d) and the contrastive loss (``pixel_pair_loss``)
live in ``models.grouping``; the batch builder (``GroupingDataset``: frames with their region
trees, pixel pairs sampled by ``pipeline.pixel_pairs``) in ``models.data_grouping``.

The step reads the embeddings at the sampled pixels; each anchor's negatives are its sampled
negatives plus ``cross_negatives`` pixels drawn at random among the anchors of the *other*
images of the (local) batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from models import data_grouping as dg
from models.grouping import GroupingNet, GroupingNetConfig, pixel_pair_loss, sample_embeddings
from models.methods.base import Method, MethodData
from models.methods.ranking import negatives_generator
from models.steps import to_input

if TYPE_CHECKING:
    from models.config import TrainConfig
    from models.steps import StepContext


@dataclass(frozen=True)
class GroupingLossConfig:
    temperature: float = 1.0  # Zhang & Maire 2020: 1
    cross_negatives: int = 5  # negatives per anchor from other images (paper: 5)


def loss_config(cfg: TrainConfig) -> GroupingLossConfig:
    crop, _ = dg.split_options(cfg.crop)
    return GroupingLossConfig(cfg.temperature, crop.cross_negatives)


def cross_image_negatives(
    image_of: torch.Tensor, valid: torch.Tensor, k: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each of M pooled anchors, ``k`` random valid anchors of another image.

    ``image_of`` (M,) image index, ``valid`` (M,) bool. Returns (M, k) indices and (M, k) bool
    (False where fewer than k candidates exist)."""
    m = image_of.shape[0]
    k = min(k, m)
    if k == 0:
        return torch.zeros(m, 0, dtype=torch.int64), torch.zeros(m, 0, dtype=torch.bool)
    ok = (image_of[:, None] != image_of[None, :]) & valid[None, :]
    score = torch.rand((m, m), generator=generator).to(ok.device).masked_fill(~ok, -1.0)
    cols = torch.topk(score, k, dim=1).indices
    return cols, torch.gather(ok, 1, cols)


def grouping_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    lc = sc.loss if isinstance(sc.loss, GroupingLossConfig) else GroupingLossConfig()
    image = batch["image"]
    b, s = image.shape[0], image.shape[1]
    with sc.autocast():
        emb = model(to_input(image, sc))
    emb = emb.float()
    dev = emb.device
    anchors = batch["anchors"].to(dev)  # (B, N, 2)
    n = anchors.shape[1]
    pos, neg = batch["positives"].to(dev), batch["negatives"].to(dev)  # (B, N, P|Q, 2)
    p, q = pos.shape[2], neg.shape[2]
    ea = sample_embeddings(emb, anchors, (s, s))  # (B, N, D)
    d = ea.shape[-1]
    ep = sample_embeddings(emb, pos.reshape(b, n * p, 2), (s, s)).reshape(b * n, p, d)
    en = sample_embeddings(emb, neg.reshape(b, n * q, 2), (s, s)).reshape(b * n, q, d)
    a_valid = batch["anchor_valid"].to(dev).reshape(b * n)
    pv = batch["pos_valid"].to(dev).reshape(b * n, p)
    nv = batch["neg_valid"].to(dev).reshape(b * n, q)
    pool = ea.reshape(b * n, d)
    image_of = torch.arange(b, device=dev).repeat_interleave(n)
    gen = negatives_generator(sc.seed, step)
    cols, real = cross_image_negatives(image_of, a_valid, lc.cross_negatives, gen)
    negs = torch.cat([en, pool[cols]], dim=1)
    neg_valid = torch.cat([nv, real & a_valid[:, None]], dim=1)
    loss, st = pixel_pair_loss(pool, ep, negs, pv, neg_valid, lc.temperature)
    return loss, {
        "loss": st.loss,
        "pos_cos": st.pos_cos,
        "neg_cos": st.neg_cos,
        "pairs": float(st.pairs),
        "pair_accuracy": st.accuracy,
    }


def build_data(cfg: TrainConfig) -> MethodData:
    crop, pair_options = dg.split_options(cfg.crop)
    frames = dg.FrameColumns(table=cfg.columns.get("frames_table", dg.FrameColumns.table))
    table = dg.load_regions(cfg.data, frames=frames, registry=cfg.registry or None)
    ds = dg.GroupingDataset(table, crop, pair_options)
    return MethodData(ds, dg.collate_grouping, np.ones(len(ds)), 1)


METHOD = Method(
    name="grouping",
    network_config=GroupingNetConfig,
    network=GroupingNet,
    default_trunk="resnet18",
    build_data=build_data,
    step=grouping_step,
    loss_config=loss_config,
)
