"""The small distributed helper (after DINO's ``utils`` / torchvision references).

The same training code runs on CPU, one GPU or under ``torchrun``: :func:`init` reads the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and otherwise returns a
single-process context. NCCL when CUDA is there, gloo otherwise (or ``backend=`` forced).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' asked for but CUDA is not available")
        return torch.device("cuda", local_rank)
    if requested != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    return torch.device("cpu")


def init(device: str = "auto", backend: str | None = None, timeout_s: int = 1800) -> DistContext:
    """Join the process group torchrun describes, or run as a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world <= 1:
        return DistContext(0, 1, 0, dev, None)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    chosen = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(
            chosen,
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=dev if chosen == "nccl" else None,
        )
    return DistContext(rank, world, local_rank, dev, chosen)


def cleanup(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(ctx: DistContext, t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place and returned); identity in a single process."""
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient of the gathered tensor and hands
    each rank its own slice: the gradient of a loss computed from the global batch.
    all_reduce + slice works on gloo too (gloo has no reduce_scatter)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(ctx: DistContext, x: torch.Tensor) -> torch.Tensor:
    """(n, ...) on each rank -> (world * n, ...) in rank order, differentiable.

    Every rank must pass the same n (the sampler guarantees equal batch sizes).
    """
    if not ctx.distributed:
        return x
    out: torch.Tensor = _GatherWithGrad.apply(x)  # type: ignore[no-untyped-call]
    return out


def gather(ctx: DistContext, x: torch.Tensor) -> torch.Tensor:
    """Non-differentiable all_gather, concatenated in rank order."""
    if not ctx.distributed:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)
