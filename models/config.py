"""One training config for every method of the catalog: defaults with reasons, file + flag loading,
and the comparison that decides whether a checkpoint may be resumed.

Precedence: dataclass defaults < config file (JSON or YAML) < command-line flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Keys that do not change what is learned: a run may be resumed with other values.
RUNTIME_KEYS = frozenset(
    {
        "out_dir",
        "steps",
        "workers",
        "log_every",
        "ckpt_every",
        "eval_every",
        "device",
        "tensorboard",
        "registry",
    }
)


@dataclass
class TrainConfig:
    task: str = "ranking"  # a models.methods name: ranking | mask | context | ...
    data: list[str] = field(default_factory=list)  # manifest dirs / Parquet files / name@version
    registry: str = ""  # where name@version lives; "" = $VIDEOMINE_REGISTRY or luigi.cfg
    out_dir: str = "train_output"  # checkpoints, metrics.jsonl, TensorBoard events
    # network
    trunk: str = ""  # "" = the task's paper default: vgg16 (ranking, context), alexnet (mask)
    trunk_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"batch_norm": true}
    network: dict[str, Any] = field(default_factory=dict)  # head options (hidden, embed_dim..)
    # data
    pair_types: list[str] | None = None  # None = every type; ["intra"] = the 2015 method
    type_weights: dict[str, float] = field(default_factory=dict)  # per pair type, default 1
    crop: dict[str, Any] = field(default_factory=dict)  # MaskCropConfig / ContextConfig fields
    columns: dict[str, str] = field(default_factory=dict)  # column-name overrides (rare)
    epoch_size: int | None = None  # rows drawn per epoch; None = every usable row
    val_fraction: float = 0.05  # rows held out for evaluate(); 0 disables
    # optimisation (Wang & Gupta 2015 / Wang, He & Gupta 2017)
    batch_size: int = 100  # global: pairs (ranking), crops, patch pairs
    lr: float = 0.001  # SGD, both papers
    momentum: float = 0.9  # both papers
    weight_decay: float = 5e-4  # both papers
    steps: int = 1000  # optimiser steps to run (extendable on resume)
    margin: float = 0.5  # ranking hinge margin (both papers)
    temperature: float = 1.0  # grouping: contrastive-loss temperature (Zhang & Maire 2020: 1)
    negatives: int = 4  # K negatives per pair (2015: top K = 4 when hard)
    hard_after: int = 0  # step from which negatives are hard; before: random (phase 1)
    video_fallback: bool = False  # pairs with no other-parent candidate use other videos'
    gather_negatives: bool = True  # DDP: pick negatives from the global batch (== 1 process)
    seed: int = 0  # data order, jitter and random negatives; init is the trunk's init_seed
    # runtime
    device: str = "auto"  # auto = CUDA when available
    amp: str = "auto"  # auto = bf16 autocast on CUDA, off on CPU | bf16 | fp16 | off
    channels_last: str = "auto"  # auto = on for CUDA (tensor-core friendly), off on CPU
    # loader processes per rank; -1 = auto: 2 on CPU (decoding is cheap next to CPU training,
    # more would take its cores), min(8, cores per rank) on CUDA (~1,800 JPEG pairs/s each)
    workers: int = -1
    log_every: int = 10  # steps between metrics lines
    ckpt_every: int = 100  # steps between checkpoints (and at the end)
    eval_every: int = 0  # steps between evaluations; 0 = only at the end
    tensorboard: bool = True  # rank 0 writes TensorBoard events beside metrics.jsonl

    def __post_init__(self) -> None:
        from models import methods  # the catalog: every method name is a task

        method = methods.get(self.task)  # KeyError listing the valid names
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp must be auto, bf16, fp16 or off, got {self.amp!r}")
        if self.channels_last not in ("auto", "on", "off"):
            raise ValueError(f"channels_last must be auto, on or off, got {self.channels_last!r}")
        if self.batch_size < 2 or self.steps < 0 or self.negatives < 1:
            raise ValueError("batch_size >= 2, steps >= 0 and negatives >= 1 are required")
        if not self.trunk:
            self.trunk = method.default_trunk

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def learning_keys(self) -> dict[str, Any]:
        """The keys a resumed run must share with its checkpoint."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_KEYS}


def config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: saved -> current`` for each learning key that differs."""
    keys = sorted((set(saved) | set(current)) - RUNTIME_KEYS)
    return [
        f"{k}: {saved.get(k, '<absent>')!r} -> {current.get(k, '<absent>')!r}"
        for k in keys
        if json.dumps(saved.get(k), sort_keys=True) != json.dumps(current.get(k), sort_keys=True)
    ]


def load_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML mapping of TrainConfig fields; unknown keys are an error."""
    p = Path(path)
    text = p.read_text()
    data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping of config keys, got {type(data).__name__}")
    valid = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise KeyError(f"{p}: unknown config key(s) {unknown}; valid: {sorted(valid)}")
    return data


def _parse_value(text: str) -> Any:
    """Flag values are YAML scalars/collections: 0.1, true, [a, b], {intra: 2}."""
    return yaml.safe_load(text)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--key`` flag per TrainConfig field (values parsed as YAML), all default None."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = str(hints[f.name]).replace("typing.", "")
        if f.name == "data":
            parser.add_argument(flag, nargs="+", default=None, help="manifest sources")
            continue
        kind = str if hint == "str" else _parse_value
        parser.add_argument(flag, type=kind, default=None, help=hint)


def build_config(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_file(args.config))
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    if isinstance(values.get("data"), str):
        values["data"] = [values["data"]]
    return TrainConfig(**values)
