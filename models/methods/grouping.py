"""Method ``grouping``: dense pixel embeddings from region trees (Zhang & Maire 2020).

The network (``GroupingNet``: ResNet-18 layer2/layer3 projected to 256 channels each at 1/4
of the input, concatenated, 3x3 conv to 32-d) and the contrastive loss (``pixel_pair_loss``)
live in ``models.grouping``; the batch builder (``GroupingDataset``: frames with their region
trees, pixel pairs sampled by ``pipeline.pixel_pairs``) in ``models.data_grouping``.

The step reads the embeddings at the sampled pixels; each anchor's negatives are its sampled
negatives plus ``cross_negatives`` pixels drawn at random among the anchors of the *other*
images of the (local) batch. With two views (``CropConfig.two_views``, the default: the same
pixels mapped through two independent crops) the anchors of both views are used, and an
anchor's positives also come from the other view (its own pixel and its positives there),
its negatives from both views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

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


class ViewEmbeddings(NamedTuple):
    """One view's embeddings at the sampled pixels, flattened over (image, anchor)."""

    anchor: torch.Tensor  # (B*N, D)
    pos: torch.Tensor  # (B*N, P, D)
    neg: torch.Tensor  # (B*N, Q, D)
    anchor_valid: torch.Tensor  # (B*N,) pixel inside the view
    pos_valid: torch.Tensor  # (B*N, P)
    neg_valid: torch.Tensor  # (B*N, Q)


def view_embeddings(emb: torch.Tensor, batch: dict[str, Any], suffix: str) -> ViewEmbeddings:
    """Reads ``emb`` (B, D, h, w) at the view's pixels (``anchors{suffix}``, ...)."""
    b, dev = emb.shape[0], emb.device
    s = batch["image" + suffix].shape[1]
    anchors = batch["anchors" + suffix].to(dev)  # (B, N, 2)
    n = anchors.shape[1]
    pos, neg = batch["positives" + suffix].to(dev), batch["negatives" + suffix].to(dev)
    p, q = pos.shape[2], neg.shape[2]
    ea = sample_embeddings(emb, anchors, (s, s))  # (B, N, D)
    d = ea.shape[-1]
    return ViewEmbeddings(
        ea.reshape(b * n, d),
        sample_embeddings(emb, pos.reshape(b, n * p, 2), (s, s)).reshape(b * n, p, d),
        sample_embeddings(emb, neg.reshape(b, n * q, 2), (s, s)).reshape(b * n, q, d),
        batch["anchor_valid" + suffix].to(dev).reshape(b * n),
        batch["pos_valid" + suffix].to(dev).reshape(b * n, p),
        batch["neg_valid" + suffix].to(dev).reshape(b * n, q),
    )


def view_pairs(
    views: list[ViewEmbeddings], u: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positives and negatives (with validity) of view ``u``'s anchors: its own view's, plus,
    with a second view ``v``, the anchor pixel and its positives in ``v`` (positives) and its
    negatives in ``v``. A pair counts only where the anchor is inside view ``u``."""
    me = views[u]
    pos, pv, neg, nv = [me.pos], [me.pos_valid], [me.neg], [me.neg_valid]
    for v in (x for i, x in enumerate(views) if i != u):
        pos += [v.anchor[:, None], v.pos]
        pv += [v.anchor_valid[:, None], v.pos_valid]
        neg.append(v.neg)
        nv.append(v.neg_valid)
    a = me.anchor_valid[:, None]
    return torch.cat(pos, 1), torch.cat(pv, 1) & a, torch.cat(neg, 1), torch.cat(nv, 1) & a


def grouping_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    lc = sc.loss if isinstance(sc.loss, GroupingLossConfig) else GroupingLossConfig()
    suffixes = ("", "2") if "image2" in batch else ("",)
    b = batch["image"].shape[0]
    with sc.autocast():  # both views in one pass (one set of BatchNorm statistics)
        emb = model(to_input(torch.cat([batch["image" + x] for x in suffixes]), sc))
    chunks = emb.float().split(b)
    views = [view_embeddings(e, batch, x) for e, x in zip(chunks, suffixes, strict=True)]
    dev = chunks[0].device
    pool = torch.cat([v.anchor for v in views])  # (V*B*N, D): every view's anchors
    a_valid = torch.cat([v.anchor_valid for v in views])
    n = views[0].anchor.shape[0] // b
    image_of = torch.arange(b, device=dev).repeat_interleave(n).repeat(len(views))
    gen = negatives_generator(sc.seed, step)
    cols, real = cross_image_negatives(image_of, a_valid, lc.cross_negatives, gen)
    pairs = [view_pairs(views, u) for u in range(len(views))]
    pos = torch.cat([x[0] for x in pairs])
    pv = torch.cat([x[1] for x in pairs])
    negs = torch.cat([torch.cat([x[2] for x in pairs]), pool[cols]], dim=1)
    neg_valid = torch.cat([torch.cat([x[3] for x in pairs]), real & a_valid[:, None]], dim=1)
    loss, st = pixel_pair_loss(pool, pos, negs, pv, neg_valid, lc.temperature)
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
