"""Training throughput with the real loader vs the same model fed from memory, per trunk.

For each trunk at its default size (96x96 patches, fc 4096 -> 1024, batch 100 pairs; quick:
16 pairs) ranking steps (forward, loss with in-batch negatives, backward, SGD) are timed in
interleaved rounds (memory, loader, memory, loader; best round of each, since a shared
machine's noise only ever slows a round down), after a warm-up step:

- *memory*: one collated batch of decoded uint8 pairs reused every step (the ceiling);
- *loader*: ``models.train``'s DataLoader over a synthetic ``pairs``/``nodes`` manifest with
  the default worker count (JPEG decoding in the workers, GlobalBatchSampler);
- *loader alone*: the same DataLoader iterated without a model: the rate it can feed, against
  which the training rate is tiny on CPU (the loader is never the bottleneck there), and the
  figure that matters on a GPU.

The loader is efficient when loader/memory >= 95%. Device: CUDA with bf16 autocast and
channels-last when available (what ``models.train`` does), else CPU.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from models import dist, steps
from models.config import TrainConfig
from models.methods.ranking import RankingLossConfig, ranking_step
from models.methods.ranking_pairs import PairDataset, collate_pairs, load_pairs
from models.sampling import GlobalBatchSampler
from models.synthetic import SyntheticPatchConfig, write_pair_manifest
from models.train import _autocast_dtype, build_model, resolve_workers, serial_opencv

TRUNKS = ("vgg16", "alexnet", "resnet18")


def _step_context(cfg: TrainConfig, device: torch.device) -> steps.StepContext:
    ctx = dist.DistContext(0, 1, 0, device, None)
    return steps.StepContext(
        ctx, device, device.type == "cuda", _autocast_dtype(cfg, device),
        RankingLossConfig(), 0, True, 0,
    )  # fmt: skip


def _run(
    model: torch.nn.Module, opt: torch.optim.Optimizer, it: Any, n: int, sc: steps.StepContext
) -> float:
    """Seconds for ``n`` optimiser steps drawing batches from the iterator ``it``."""
    if sc.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(n):
        loss, _ = ranking_step(model, next(it), 100 + i, sc)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    if sc.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _forever(batch: dict[str, Any]) -> Any:
    while True:
        yield batch


def _loader(
    ds: PairDataset, data: Any, batch: int, workers: int, device: torch.device
) -> DataLoader[Any]:
    """models.train's loader: GlobalBatchSampler, decoding workers, uint8 batches."""
    sampler = GlobalBatchSampler(data.weights({}, None), batch, seed=1)
    return DataLoader(
        ds, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=workers,
        prefetch_factor=4 if workers else None, pin_memory=device.type == "cuda",
    )  # fmt: skip


def main(quick: bool = False) -> str:
    batch, n_steps, rounds = (16, 2, 3) if quick else (100, 2, 2)
    device = dist.pick_device("auto")
    workers = resolve_workers(TrainConfig.workers, device, 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, serial_opencv():
        data_dir = write_pair_manifest(
            Path(tmp), SyntheticPatchConfig(n_classes=8, instances_per_class=max(batch, 32))
        )
        data = load_pairs(data_dir)
        ds = PairDataset(data, 96)
        mem_batch = collate_pairs([ds[(i, i)] for i in range(batch)])
        feed = iter(_loader(ds, data, batch, workers, device))
        next(feed)
        t0 = time.perf_counter()
        for _ in range(10):
            next(feed)
        feed_rate = 2 * batch * 10 / (time.perf_counter() - t0)
        del feed
        for trunk in TRUNKS:
            cfg = TrainConfig(task="ranking", trunk=trunk, batch_size=batch, workers=workers)
            model, _ = build_model(cfg)
            model = model.to(device)
            sc = _step_context(cfg, device)
            if sc.channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
            mem_it, load_it = _forever(mem_batch), iter(_loader(ds, data, batch, workers, device))
            _run(model, opt, load_it, 1, sc)  # warm-up: workers started, buffers allocated
            # interleaved rounds, best of each: the machine is shared, noise only slows down
            mem_s = load_s = float("inf")
            for _ in range(rounds):
                mem_s = min(mem_s, _run(model, opt, mem_it, n_steps, sc))
                load_s = min(load_s, _run(model, opt, load_it, n_steps, sc))
            images = 2 * batch * n_steps
            mem_rate, load_rate = images / mem_s, images / load_s
            rows.append(
                f"| {trunk} | {device.type} | {batch} | {mem_rate:.1f} | {load_rate:.1f} "
                f"| {100 * load_rate / mem_rate:.0f}% | {workers} |"
            )
            print(rows[-1], flush=True)
    head = [
        f"Ranking step (forward + loss + backward + SGD): best of {rounds} interleaved rounds of "
        f"{n_steps} steps per feed, after a warm-up step. The loader alone ({workers} workers) "
        f"feeds {feed_rate:.0f} images/s.",
        "",
        "| trunk | device | batch (pairs) | memory images/s | loader images/s | loader/memory "
        "| workers |",
        "|---|---|---|---|---|---|---|",
    ]
    table = "\n".join(head + rows)
    print(table)
    return table


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
