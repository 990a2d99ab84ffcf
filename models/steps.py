"""Forward + loss of one batch for each task, and the held-out evaluation of each.

A step takes a collated batch of uint8 images (normalised here, on the device) and returns
the loss to back-propagate and a dict of float statistics (already global over ranks for
the ranking loss with gathered negatives).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models import dist
from models.grouping_steps import edges_step, grouping_step
from models.losses import (
    RankingLossConfig,
    context_loss,
    mask_stats,
    ranking_loss,
    trimap_loss,
)
from models.trunks import MEAN, STD


@dataclass
class StepContext:
    """What a step needs besides the batch."""

    dist: dist.DistContext
    device: torch.device
    channels_last: bool
    autocast_dtype: torch.dtype | None  # None: full precision
    ranking: RankingLossConfig
    hard_after: int
    gather_negatives: bool
    seed: int
    temperature: float = 1.0  # grouping loss
    cross_negatives: int = 5  # grouping: negatives per anchor from other images

    def autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )


def to_input(images: torch.Tensor, sc: StepContext) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float normalised on the device."""
    x = images.to(sc.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=sc.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=sc.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    fmt = torch.channels_last if sc.channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)


def negatives_generator(seed: int, step: int) -> torch.Generator:
    """Same random negatives on every rank and on resume: a function of (seed, step)."""
    s = int(np.random.SeedSequence([seed, step, 7]).generate_state(1)[0])
    return torch.Generator().manual_seed(s)


def ranking_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    n = batch["a"].shape[0]
    with sc.autocast():
        emb = model(to_input(torch.cat([batch["a"], batch["b"]]), sc))
    anchor, positive = emb[:n].float(), emb[n:].float()
    parent = batch["parent"].to(sc.device)
    video = batch["video"].to(sc.device)
    phase = "hard" if step >= sc.hard_after else "random"
    gen = negatives_generator(sc.seed, step)
    ctx = sc.dist
    if sc.gather_negatives and ctx.distributed:
        anchor = dist.gather_with_grad(ctx, anchor)
        positive = dist.gather_with_grad(ctx, positive)
        parent, video = dist.gather(ctx, parent), dist.gather(ctx, video)
        rows = slice(ctx.rank * n, (ctx.rank + 1) * n)
        loss, st = ranking_loss(
            anchor, positive, parent, video, sc.ranking, phase, gen, rows, float(ctx.world_size)
        )
    else:
        loss, st = ranking_loss(anchor, positive, parent, video, sc.ranking, phase, gen)
    stats = {
        "loss": st.loss,
        "active_hinges": st.active_hinges,
        "pos_cos": st.pos_cos,
        "neg_cos": st.neg_cos,
        "triplets": float(st.n_triplets),
        "pairs_without_negative": float(st.pairs_without_negative),
        "hard": float(phase == "hard"),
    }
    return loss, stats


def mask_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    with sc.autocast():
        logits = model(to_input(batch["image"], sc))
    tri = batch["trimap"].to(sc.device)
    loss = trimap_loss(logits.float(), tri)
    with torch.no_grad():
        stats = {"loss": float(loss.detach()), **mask_stats(logits.detach(), tri)}
    return loss, stats


def context_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    with sc.autocast():
        logits = model(to_input(batch["a"], sc), to_input(batch["b"], sc))
    loss, acc = context_loss(logits, batch["label"].to(sc.device))
    return loss, {"loss": float(loss.detach()), "accuracy": acc}


StepFn = Callable[
    [nn.Module, dict[str, Any], int, StepContext], tuple[torch.Tensor, dict[str, float]]
]
STEPS: dict[str, StepFn] = {
    "ranking": ranking_step,
    "mask": mask_step,
    "context": context_step,
    "edges": edges_step,
    "grouping": grouping_step,
}


@torch.no_grad()
def evaluate(
    task: str, model: nn.Module, batches: list[dict[str, Any]], sc: StepContext
) -> dict[str, float]:
    """Held-out metrics (single process, no gathering): mean of the per-batch statistics;
    for ranking also the share of anchors whose positive beats every valid negative."""
    local = StepContext(
        dist.DistContext(0, 1, 0, sc.device, None), sc.device, sc.channels_last,
        sc.autocast_dtype, sc.ranking, 0, False, sc.seed, sc.temperature, sc.cross_negatives,
    )  # fmt: skip
    was = model.training
    model.eval()
    sums: dict[str, float] = {}
    for batch in batches:
        _, stats = STEPS[task](model, batch, 10**9, local)  # hard phase for ranking
        if task == "ranking":
            stats["top1"] = _pair_top1(model, batch, local)
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
    model.train(was)
    return {f"val_{k}": v / max(len(batches), 1) for k, v in sums.items()}


def _pair_top1(model: nn.Module, batch: dict[str, Any], sc: StepContext) -> float:
    from models.losses import valid_negatives

    n = batch["a"].shape[0]
    with sc.autocast():
        emb = model(to_input(torch.cat([batch["a"], batch["b"]]), sc)).float()
    emb = nn.functional.normalize(emb, dim=1)
    a, p = emb[:n], emb[n:]
    cos = a @ emb.T  # (n, 2n)
    valid = valid_negatives(
        batch["parent"].to(sc.device), batch["video"].to(sc.device), sc.ranking.video_fallback
    )
    best_neg = cos.masked_fill(~valid, float("-inf")).max(dim=1).values
    return float(((a * p).sum(1) > best_neg).float().mean())
