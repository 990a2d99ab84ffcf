"""Checkpoints: written atomically, loaded without unpickling, resumed only on a matching config.

A checkpoint is a plain dict of tensors and JSON-able values (``torch.load(weights_only=True)``
reads it): ``model`` (state dict, the trunk under ``trunk.``), ``optimizer``, ``scaler``,
``step``, ``config`` (TrainConfig as a dict), ``network`` ({"kind", "config"}), ``trunk_spec``
({"name", "config"}: what ``models.trunks.load_checkpoint_trunk`` rebuilds), ``skipped_rows``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import torch

from models.config import config_diff

LATEST = "checkpoint.pt"


class ConfigMismatchError(ValueError):
    """The checkpoint in out_dir was trained with another config."""


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    """torch.save to a temporary file in the same directory, fsync, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a models.train checkpoint")
    return ckpt


def resumable(out_dir: str | Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The latest checkpoint in ``out_dir`` if its config matches ``config``; None if there is
    none; ``ConfigMismatchError`` naming every differing key otherwise."""
    path = Path(out_dir) / LATEST
    if not path.is_file():
        return None
    ckpt = load(path)
    diff = config_diff(ckpt["config"], config)
    if diff:
        raise ConfigMismatchError(
            f"refusing to resume {path}: it was trained with another config "
            f"({'; '.join(diff)}). Use another out_dir, or restore those values."
        )
    return ckpt
