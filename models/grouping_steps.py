"""Training steps of the edge network and the grouping network (``models.steps.STEPS``).

``edges_step``: HED deep supervision with the class-balanced loss (``models.edge_net``).
``grouping_step``: embeddings read at the sampled pixels; each anchor's negatives are its
sampled negatives plus ``cross_negatives`` pixels drawn at random among the anchors of the
*other* images of the (local) batch; then ``models.grouping.pixel_pair_loss``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from models.edge_net import edge_net_loss, edge_stats
from models.grouping import pixel_pair_loss, sample_embeddings

if TYPE_CHECKING:
    from models.steps import StepContext


def _side_weight(model: nn.Module) -> float:
    net: Any = model.module if hasattr(model, "module") else model  # DDP-wrapped or bare
    return float(net.config.side_weight)


def edges_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    from models.steps import to_input

    with sc.autocast():
        out = model(to_input(batch["image"], sc))
    target = batch["target"].to(sc.device)
    loss = edge_net_loss(out.float(), target, _side_weight(model))
    with torch.no_grad():
        stats = {"loss": float(loss.detach()), **edge_stats(out[:, 0].detach(), target)}
    return loss, stats


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
    from models.steps import negatives_generator, to_input

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
    k = int(getattr(sc, "cross_negatives", 5))
    cols, real = cross_image_negatives(image_of, a_valid, k, negatives_generator(sc.seed, step))
    negs = torch.cat([en, pool[cols]], dim=1)
    neg_valid = torch.cat([nv, real & a_valid[:, None]], dim=1)
    loss, st = pixel_pair_loss(pool, ep, negs, pv, neg_valid, sc.temperature)
    return loss, {
        "loss": st.loss,
        "pos_cos": st.pos_cos,
        "neg_cos": st.neg_cos,
        "pairs": float(st.pairs),
        "pair_accuracy": st.accuracy,
    }
