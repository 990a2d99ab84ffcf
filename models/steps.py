"""What every method's step shares: the step context, input normalisation, held-out evaluation.

A step (``models.methods.<name>``'s ``Method.step``) takes a collated batch of uint8 images
(normalised here, on the device) and returns the loss to back-propagate and a dict of float
statistics (already global over ranks for the ranking loss with gathered negatives).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from models import dist
from models.trunks import MEAN, STD


@dataclass
class StepContext:
    """What a step needs besides the batch."""

    dist: dist.DistContext
    device: torch.device
    channels_last: bool
    autocast_dtype: torch.dtype | None  # None: full precision
    loss: Any  # the method's loss config (Method.loss_config), e.g. RankingLossConfig
    hard_after: int  # ranking: step from which negatives are hard
    gather_negatives: bool  # ranking under DDP: negatives from the global batch
    seed: int

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


@torch.no_grad()
def evaluate(
    task: str, model: nn.Module, batches: list[dict[str, Any]], sc: StepContext
) -> dict[str, float]:
    """Held-out metrics (single process, no gathering): mean of the per-batch statistics of
    the method's step (hard phase for ranking) and of its ``val_metrics``."""
    from models import methods

    method = methods.get(task)
    local = replace(
        sc, dist=dist.DistContext(0, 1, 0, sc.device, None), hard_after=0, gather_negatives=False
    )
    was = model.training
    model.eval()
    sums: dict[str, float] = {}
    for batch in batches:
        _, stats = method.step(model, batch, 10**9, local)
        if method.val_metrics is not None:
            stats.update(method.val_metrics(model, batch, local))
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
    model.train(was)
    return {f"val_{k}": v / max(len(batches), 1) for k, v in sums.items()}
