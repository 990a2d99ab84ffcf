"""Training entry point for every method of the catalog (``models.methods``).

    python -m models.train --config run.yaml
    python -m models.train --task ranking --data DIR --out-dir OUT --steps 2000
    torchrun --nproc-per-node 4 -m models.train --config run.yaml

Runs unchanged on CPU, one GPU or under torchrun (DDP over NCCL or gloo). Skeleton after
DINO / torchvision references: get_args_parser -> train -> train_one_epoch -> evaluate.
Only rank 0 logs (metrics.jsonl, TensorBoard) and saves; checkpoints are atomic and resumed
automatically when the config matches (``models.checkpoint``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from models import checkpoint as ckpt_io
from models import dist, methods, steps
from models.config import TrainConfig, add_config_flags, build_config
from models.sampling import GlobalBatchSampler, weighted_order
from models.trunks import trunk_spec

log = logging.getLogger("models.train")
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the batch rows."""


@dataclass
class Data:
    dataset: Any
    collate: Any
    weights: np.ndarray
    val_batches: list[dict[str, Any]] = field(default_factory=list)
    images_per_sample: int = 2
    replacement: bool = False  # epochs draw rows with replacement (MethodData.replacement)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser("models.train", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=None, help="JSON or YAML file of TrainConfig keys")
    p.add_argument("--backend", default=None, help="force a process-group backend (gloo/nccl)")
    add_config_flags(p)
    return p


def build_data(cfg: TrainConfig) -> Data:
    """Dataset, collate, per-row sampling weights (0 for held-out rows) and val batches."""
    md = methods.get(cfg.task).build_data(cfg)
    ds, collate, weights, per = md.dataset, md.collate, md.weights, md.images_per_sample
    usable = np.flatnonzero(weights > 0)
    n_val = min(int(round(cfg.val_fraction * usable.size)), 4 * cfg.batch_size)
    val_batches: list[dict[str, Any]] = []
    if n_val >= 4:
        val_rows = usable[weighted_order(np.ones(usable.size), n_val, cfg.seed + 12345)]
        weights = weights.copy()
        weights[val_rows] = 0.0
        items = [ds[(int(r), int(r))] for r in val_rows]
        # balanced batches (sizes differ by at most 1), never a 1-image tail: methods that
        # contrast images of a batch (counting's y != x, cross-image negatives) need >= 2
        n_batches = -(-n_val // cfg.batch_size)
        bounds = np.linspace(0, n_val, n_batches + 1).round().astype(int)
        val_batches = [collate(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return Data(ds, collate, weights, val_batches, per, md.replacement)


def build_model(cfg: TrainConfig) -> tuple[nn.Module, dict[str, Any]]:
    net_cfg = methods.network_config(
        cfg.task, trunk=cfg.trunk, trunk_options=cfg.trunk_options, **cfg.network
    )
    model = methods.build_network(net_cfg)
    spec = {
        "kind": cfg.task,
        "config": {k: getattr(net_cfg, k) for k in net_cfg.__dataclass_fields__},
    }
    return model, spec


@contextlib.contextmanager
def serial_opencv(enabled: bool = True) -> Iterator[None]:
    """Make OpenCV single-threaded in this (parent) process while loader workers fork from it.

    A forked worker inherits OpenCV's thread pool without its threads; reconfiguring it there
    (``cv2.setNumThreads`` in a worker_init_fn) deadlocks in pthread_cond_destroy, and using
    it may too. Serial in the parent before the fork: the workers inherit a serial OpenCV
    (one decode per worker is the parallelism we want). torch sets 1 thread in workers itself.
    """
    if not enabled:
        yield
        return
    old = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


def resolve_workers(requested: int, device: torch.device, world_size: int) -> int:
    """``workers`` = -1: 2 on CPU, min(8, CPU cores per rank) on CUDA; else as given."""
    if requested >= 0:
        return requested
    if device.type != "cuda":
        return 2
    return max(2, min(8, (os.cpu_count() or 2) // max(world_size, 1)))


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    amp = cfg.amp
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]


class MetricsLog:
    """Rank 0: JSON lines (appended across resumes) and TensorBoard scalars."""

    def __init__(self, out_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.path = out_dir / METRICS
        self.tb: Any = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint's step (they are redone)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = [ln for ln in self.path.read_text().splitlines() if json.loads(ln)["step"] <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(ln + "\n" for ln in keep))
        tmp.replace(self.path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, int | float) and k != "step":
                    self.tb.add_scalar(k, v, record["step"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


@dataclass
class State:
    cfg: TrainConfig
    ctx: dist.DistContext
    model: nn.Module  # possibly DDP-wrapped
    raw: nn.Module  # the bare network (saved, evaluated)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sc: steps.StepContext
    metrics: MetricsLog
    network_spec: dict[str, Any]
    step: int = 0
    skipped: set[int] = field(default_factory=set)
    images_per_sample: int = 2
    val_batches: list[dict[str, Any]] = field(default_factory=list)
    window: dict[str, float] = field(default_factory=dict)  # stats since the last log line
    window_t0: float = field(default_factory=time.perf_counter)


def save(state: State) -> None:
    if not state.ctx.is_main:
        return
    trunk = state.raw.trunk
    ckpt_io.save_atomic(
        {
            "model": state.raw.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scaler": state.scaler.state_dict(),
            "step": state.step,
            "config": state.cfg.to_dict(),
            "network": state.network_spec,
            "trunk_spec": trunk_spec(trunk),  # type: ignore[arg-type]
            "skipped_rows": sorted(state.skipped),
        },
        Path(state.cfg.out_dir) / ckpt_io.LATEST,
    )


def train_one_epoch(state: State, loader_iter: Any, n_steps: int) -> None:
    """Run ``n_steps`` optimiser steps from ``state.step``; log, check, checkpoint."""
    cfg, ctx = state.cfg, state.ctx
    step_fn = methods.get(cfg.task).step
    acc = state.window
    for _ in range(n_steps):
        batch = next(loader_iter)
        state.skipped.update(batch["skipped"])
        loss, stats = step_fn(state.model, batch, state.step, state.sc)
        flag = torch.tensor([float(loss.detach()), 0.0], device=ctx.device)
        flag[1] = 0.0 if math.isfinite(float(flag[0])) else 1.0
        dist.all_reduce_sum(ctx, flag)
        if flag[1] > 0 or not math.isfinite(stats.get("loss", 0.0)):
            rows = dist.gather(ctx, batch["row"].to(ctx.device)).tolist()
            raise NonFiniteLossError(
                f"non-finite loss ({float(loss.detach())}) at step {state.step}: stopping; "
                f"batch rows {rows}; the last checkpoint in {cfg.out_dir} is untouched"
            )
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.step += 1
        acc["_images"] = acc.get("_images", 0.0) + (
            batch["row"].shape[0] * ctx.world_size * state.images_per_sample
        )
        for k, v in stats.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc = acc.get("_n", 0.0) + 1.0
        acc["_n"] = n_acc
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            mean = {k: v / n_acc for k, v in acc.items() if not k.startswith("_")}
            dt = time.perf_counter() - state.window_t0
            state.metrics.write(
                {
                    "step": state.step,
                    "lr": state.optimizer.param_groups[0]["lr"],
                    "images_per_s": acc["_images"] / dt if dt > 0 else 0.0,
                    "skipped_rows": len(state.skipped),
                    **mean,
                }
            )
            if mean.get("pairs_without_negative", 0.0) > 0.5 * cfg.batch_size:
                log.warning(
                    "step %d: %.0f of %d pairs found no negative (another parent or video) in "
                    "the batch; the loss ignores them (one parent cluster? see video_fallback)",
                    state.step, mean["pairs_without_negative"], cfg.batch_size,
                )  # fmt: skip
            acc.clear()
            state.window_t0 = time.perf_counter()
        if state.step % cfg.ckpt_every == 0 or state.step == cfg.steps:
            save(state)
            dist.barrier(ctx)
        if cfg.eval_every and state.step % cfg.eval_every == 0:
            run_evaluation(state, state.val_batches)


def run_evaluation(state: State, val_batches: list[dict[str, Any]]) -> dict[str, float]:
    if not state.ctx.is_main or not val_batches:
        return {}
    res = steps.evaluate(state.cfg.task, state.raw, val_batches, state.sc)
    state.metrics.write({"step": state.step, **res})
    return res


def run_pretext_checks(state: State, val_batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank 0: the method's pretext checks on the held-back batches (``{}`` when it has
    none), written to metrics.jsonl as one ``pretext`` record and returned for the summary."""
    check = methods.get(state.cfg.task).pretext_checks
    if not state.ctx.is_main or check is None:
        return {}
    if not val_batches:
        return {"skipped": "no held-back rows (val_fraction x rows < 4)"}
    res = check(state.raw, val_batches, state.sc)
    state.metrics.write({"step": state.step, "pretext": res})
    return res


def train(cfg: TrainConfig, backend: str | None = None) -> dict[str, Any]:
    """Train to ``cfg.steps`` (resuming from out_dir when the config matches)."""
    ctx = dist.init(cfg.device, backend)
    try:
        return _train(cfg, ctx)
    finally:
        dist.cleanup(ctx)


def _train(cfg: TrainConfig, ctx: dist.DistContext) -> dict[str, Any]:
    out = Path(cfg.out_dir)
    resume = ckpt_io.resumable(out, cfg.to_dict())  # refuses a mismatched config
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    data = build_data(cfg)
    model, net_spec = build_model(cfg)
    cl = cfg.channels_last == "on" or (cfg.channels_last == "auto" and ctx.device.type == "cuda")
    model = model.to(ctx.device)
    if cl:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    adt = _autocast_dtype(cfg, ctx.device)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=adt == torch.float16)
    start = 0
    skipped: set[int] = set()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scaler.load_state_dict(resume["scaler"])
        start, skipped = int(resume["step"]), set(resume["skipped_rows"])
        log.info("resuming %s at step %d", out / ckpt_io.LATEST, start)
    wrapped: nn.Module = model
    if ctx.distributed:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=ids)
    sc = steps.StepContext(
        ctx, ctx.device, cl, adt, methods.get(cfg.task).loss_config(cfg),
        cfg.hard_after, cfg.gather_negatives, cfg.seed,
    )  # fmt: skip
    metrics = MetricsLog(out, ctx.is_main, cfg.tensorboard)
    metrics.truncate_after(start)
    state = State(
        cfg, ctx, wrapped, model, optimizer, scaler, sc, metrics, net_spec,
        start, skipped, data.images_per_sample, data.val_batches,
    )  # fmt: skip
    sampler = GlobalBatchSampler(
        data.weights,
        cfg.batch_size,
        ctx.rank,
        ctx.world_size,
        cfg.seed,
        start,
        cfg.steps,
        cfg.epoch_size,
        data.replacement,
    )
    workers = resolve_workers(cfg.workers, ctx.device, ctx.world_size)
    loader = DataLoader(
        data.dataset,
        batch_sampler=sampler,
        collate_fn=data.collate,
        num_workers=workers,
        pin_memory=ctx.device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    t0 = time.perf_counter()
    with serial_opencv(workers > 0):
        try:
            it = iter(loader)
            while state.step < cfg.steps:
                n = min(
                    sampler.batches_per_epoch - state.step % sampler.batches_per_epoch,
                    cfg.steps - state.step,
                )
                train_one_epoch(state, it, n)
            if start == cfg.steps and ctx.is_main and not (out / ckpt_io.LATEST).exists():
                save(state)
            final = run_evaluation(state, data.val_batches)
            pretext = run_pretext_checks(state, data.val_batches)
        finally:
            metrics.close()
    summary = {
        "task": cfg.task,
        "steps": state.step,
        "resumed_from": start,
        "world_size": ctx.world_size,
        "workers": workers,
        "device": str(ctx.device),
        "checkpoint": str(out / ckpt_io.LATEST),
        "skipped_rows": len(state.skipped),
        "wall_s": round(time.perf_counter() - t0, 3),
        "val": final,
        "pretext": pretext,
    }
    if ctx.is_main:
        tmp = out / f".{SUMMARY}.tmp"
        tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
        tmp.replace(out / SUMMARY)
        print(f"models.train: wrote {out / ckpt_io.LATEST} and {out / SUMMARY}")
    dist.barrier(ctx)
    return summary


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = get_args_parser().parse_args(argv)
    cfg = build_config(args)
    if not cfg.data:
        raise SystemExit(
            "models.train: no --data given (manifest dirs, Parquet files or name@version)"
        )
    summary = train(cfg, args.backend)
    if summary.get("world_size", 1) > 1:
        # Every output is written (atomically) and the process group is destroyed. Skip
        # interpreter finalisation: tearing down gloo/loader threads there aborted a finished
        # rank once under load (SIGABRT, "terminate called without an active exception"),
        # which torchrun reports as a failed run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
