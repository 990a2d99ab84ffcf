"""Training stages: the shared base, TrainTracking, TrainMasks, TrainContext (DESIGN 4.6).

``TrainTransitive`` lives in ``tasks.train_transitive`` (it needs BuildGraph, which needs
this module for its feature models: the modules import one way only).

Each launches ``python -m models.train`` (``torchrun --standalone`` when ``--nproc`` > 1)
on its inputs, then checks what it wrote and commits ``checkpoint.pt``, ``summary.json``,
``metrics.jsonl``, ``config.json`` and the TensorBoard events into the stage's output dir.

Inputs: ``--dataset`` (``name@version`` of a published dataset, or manifest paths, comma-
separated) or, when empty, the upstream stages:

| task | network | upstream (every shard) | pairs |
|---|---|---|---|
| TrainTracking | ranking (Wang & Gupta 2015) | TrackObjects: tracks + patches | intra only |
| TrainTransitive | ranking (Wang, He & Gupta 2017) | BuildGraph: pairs + nodes | every type |
| TrainMasks | mask (Pathak et al. 2017) | SegmentMotion: masks | - |
| TrainContext | context (Doersch et al. 2015) | SegmentMotion: mined frames | - |

Training runs in ``<output>.work/`` (kept across reruns, so a killed run resumes from its
last checkpoint); the output dir appears, with ``_SUCCESS``, only when training finished.
Numeric defaults come from ``models.config.TrainConfig``; other TrainConfig keys go in
``--options '{"trunk_options": {"batch_norm": true}}'``.
"""

from __future__ import annotations

import abc
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import luigi
import torch

from models.config import TrainConfig
from tasks.common import StageOutput, StageTask, shard_count, videomine

_D = TrainConfig()  # every default lives in the dataclass
OUTPUT_FILES = ("checkpoint.pt", "summary.json", "metrics.jsonl", "config.json")


def _plain(v: Any) -> Any:
    """luigi's frozen dicts/tuples -> JSON-able dicts/lists."""
    return json.loads(json.dumps(v, default=lambda o: dict(o) if hasattr(o, "items") else list(o)))


class TrainBase(StageTask):
    kind: ClassVar[str] = "ranking"
    fixed: ClassVar[dict[str, Any]] = {}  # TrainConfig keys this task pins

    dataset = luigi.Parameter(
        default="", description="name@version or manifest path(s), comma-separated; '' = upstream"
    )
    trunk = luigi.Parameter(default="", description="vgg16 | alexnet | resnet18; '' = paper's")
    steps = luigi.IntParameter(default=_D.steps, description="optimiser steps")
    batch_size = luigi.IntParameter(default=_D.batch_size, description="global batch")
    lr = luigi.FloatParameter(default=_D.lr, description="SGD learning rate")
    momentum = luigi.FloatParameter(default=_D.momentum)
    weight_decay = luigi.FloatParameter(default=_D.weight_decay)
    seed = luigi.IntParameter(default=_D.seed)
    amp = luigi.Parameter(default=_D.amp, description="auto | bf16 | fp16 | off")
    options = luigi.DictParameter(default={}, description="other TrainConfig keys (JSON)")
    nproc = luigi.IntParameter(default=1, significant=False, description="processes; >1: torchrun")
    device = luigi.Parameter(default=_D.device, significant=False)
    # not `workers`: a root task's parameters become bare flags, and Luigi owns --workers
    loader_workers = luigi.IntParameter(
        default=_D.workers,
        significant=False,
        description="JPEG-decoding loader processes per rank (TrainConfig.workers; -1 = auto)",
    )

    @property
    def resources(self) -> dict[str, int]:
        return {"gpu": max(int(self.nproc), 1)} if torch.cuda.is_available() else {}

    @abc.abstractmethod
    def upstream(self) -> list[luigi.Task]:
        """The stage outputs this network trains on when no ``dataset`` is given."""

    def requires(self) -> list[luigi.Task]:
        return [] if self.dataset else self.upstream()

    def sources(self) -> list[str]:
        if self.dataset:
            return [s.strip() for s in str(self.dataset).split(",") if s.strip()]
        return [str(t.output().local_path()) for t in self.requires()]

    def work_dir(self) -> Path:
        return Path(self.output().local_path().as_posix() + ".work")

    def checkpoint_path(self) -> Path:
        """The trained network (after the task is complete)."""
        return self.output().local_path() / "checkpoint.pt"

    def train_config(self) -> TrainConfig:
        values: dict[str, Any] = {**_plain(self.options), **self.fixed}
        values.update(
            task=self.kind, data=self.sources(), out_dir=str(self.work_dir()), trunk=self.trunk,
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, seed=self.seed, amp=self.amp, device=self.device,
            workers=self.loader_workers, registry=str(videomine().registry),
        )  # fmt: skip
        return TrainConfig(**values)

    def command(self, config_file: Path) -> list[str]:
        entry = ["-m", "models.train", "--config", str(config_file)]
        if int(self.nproc) > 1:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={int(self.nproc)}", *entry]  # fmt: skip
        return [sys.executable, *entry]

    def produce(self, out: StageOutput) -> None:
        cfg = self.train_config()
        work = self.work_dir()
        work.mkdir(parents=True, exist_ok=True)
        config_file = work / "config.json"
        config_file.write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
        self.set_status_message(f"training {self.kind} in {work}")
        log_path = work / "train.log"
        with open(log_path, "a") as log:
            proc = subprocess.run(
                self.command(config_file),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if proc.returncode != 0:
            tail = log_path.read_text()[-3000:]
            raise RuntimeError(f"{self.task_id}: models.train exited {proc.returncode}:\n{tail}")
        summary = self.check_outputs(work, cfg)
        for name in OUTPUT_FILES:
            shutil.copy2(work / name, out.path / name)
        if (work / "tensorboard").is_dir():
            shutil.copytree(work / "tensorboard", out.path / "tensorboard")
        shutil.copy2(log_path, out.path / "train.log")
        out.note("train_summary", summary)
        out.count("steps", int(summary["steps"]))
        out.count("skipped_rows", int(summary["skipped_rows"]))

    def check_outputs(self, work: Path, cfg: TrainConfig) -> dict[str, Any]:
        """The run finished: summary at the asked step, a loadable checkpoint, metrics."""
        for name in OUTPUT_FILES:
            if not (work / name).is_file():
                raise RuntimeError(f"{self.task_id}: models.train did not write {work / name}")
        summary: dict[str, Any] = json.loads((work / "summary.json").read_text())
        ck = torch.load(work / "checkpoint.pt", map_location="cpu", weights_only=True)
        if summary["steps"] != cfg.steps or ck["step"] != cfg.steps:
            raise RuntimeError(
                f"{self.task_id}: training stopped at step {ck['step']}, expected {cfg.steps}"
            )
        if ck["network"]["kind"] != self.kind:
            raise RuntimeError(f"{self.task_id}: checkpoint holds a {ck['network']['kind']} net")
        if not (work / "metrics.jsonl").read_text().strip():
            raise RuntimeError(f"{self.task_id}: empty metrics.jsonl")
        return summary

    def run(self) -> None:
        super().run()
        shutil.rmtree(self.work_dir(), ignore_errors=True)  # committed; resume state not needed


def _track_objects() -> list[luigi.Task]:
    from tasks.mining import TrackObjects  # lazy: importing tasks.train must not need mining

    return [TrackObjects(shard=i) for i in range(shard_count())]


def _segment_motion() -> list[luigi.Task]:
    from tasks.segment import SegmentMotion

    return [SegmentMotion(shard=i) for i in range(shard_count())]


class TrainTracking(TrainBase):
    """Wang & Gupta 2015: the ranking network on intra-instance (tracking) pairs only."""

    kind = "ranking"
    fixed = {"pair_types": ["intra"]}

    def upstream(self) -> list[luigi.Task]:
        return _track_objects()


class TrainMasks(TrainBase):
    """Pathak et al. 2017: the mask network on uNLC trimaps."""

    kind = "mask"

    def upstream(self) -> list[luigi.Task]:
        return _segment_motion()


class TrainContext(TrainBase):
    """Doersch et al. 2015 context prediction on mined frames (a feature source)."""

    kind = "context"

    def upstream(self) -> list[luigi.Task]:
        return _segment_motion()
