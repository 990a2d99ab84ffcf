"""Context method (Doersch, Gupta & Efros 2015): patch pairs, network, loss, step.

Network ``ContextNet``: shared trunk on two patches -> fc6 each -> concat -> fc7 -> 8-way
logits; cross-entropy over the 8 relative positions.

Context prediction pairs from mined frames:

A frame is cut into a 3x3 grid of ``patch`` x ``patch`` cells separated by ``gap`` pixels
(so edges and textures cannot simply continue across the border); the centre patch and one of
its 8 neighbours (the label, 0..7 in reading order) are taken, each shifted by up to
``jitter`` pixels independently. Frames smaller than the grid are handled by scaling the
geometry down (the patches are then resampled to ``patch_size``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from models.images import crop_square, decode_rgb, first_decodable
from models.manifests import read_table, require_columns
from models.methods.base import Method, MethodData, flat_dim, init_linears
from models.sampling import Item
from models.steps import StepContext, to_input
from models.trunks import build_trunk

if TYPE_CHECKING:
    from models.config import TrainConfig

log = logging.getLogger(__name__)
# (dx, dy) of the 8 neighbours in reading order: label k <-> OFFSETS[k]
OFFSETS = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))


@dataclass(frozen=True)
class ContextColumns:
    table: str = "masks"  # SegmentMotion's rows carry the mined frames as JPEG
    image: str = "frame_jpeg"


@dataclass(frozen=True)
class ContextConfig:
    patch_size: int = 96  # network input side, same as the mined patches the features describe
    patch: int = 96  # cell side in frame pixels (Doersch: 96)
    gap: int = 48  # pixels between cells (Doersch: 48) so low-level cues do not cross
    jitter: int = 7  # independent shift per patch, up to +-7 px (Doersch: 7)


def load_frames(
    sources: str | Path | Sequence[str | Path],
    cols: ContextColumns = ContextColumns(),
    registry: str | None = None,
) -> pa.Array:
    t = read_table(sources, cols.table, registry)
    require_columns(t, cols.table, [cols.image])
    if t.num_rows == 0:
        raise ValueError(f"table {cols.table!r} has no frames")
    return t.column(cols.image).combine_chunks()


def context_pair(
    frame: npt.NDArray[np.uint8], cfg: ContextConfig, rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], int]:
    """-> (centre patch, neighbour patch, label) with patches (patch_size, patch_size, 3)."""
    h, w = frame.shape[:2]
    span = 3 * cfg.patch + 2 * cfg.gap + 2 * cfg.jitter
    scale = min(1.0, h / span, w / span)
    p, g, j = cfg.patch * scale, cfg.gap * scale, cfg.jitter * scale
    step = p + g
    # centre of the middle cell, anywhere the whole grid fits
    cx = rng.uniform(1.5 * p + g + j, max(w - 1.5 * p - g - j, 1.5 * p + g + j))
    cy = rng.uniform(1.5 * p + g + j, max(h - 1.5 * p - g - j, 1.5 * p + g + j))
    label = int(rng.integers(0, 8))
    dx, dy = OFFSETS[label]
    ja, jb = rng.uniform(-j, j, size=2), rng.uniform(-j, j, size=2)
    a = crop_square(frame, cx + ja[0], cy + ja[1], p, cfg.patch_size)
    b = crop_square(frame, cx + dx * step + jb[0], cy + dy * step + jb[1], p, cfg.patch_size)
    return a, b, label


class FrameDataset(Dataset[dict[str, Any]]):
    """Base of the single-frame methods' datasets (context, counting, Jigsaw++): one item per
    row of an array of encoded frames; ``frame(row)`` decodes it, or the next decodable row
    (the rows skipped are reported with the item)."""

    def __init__(self, frames: pa.Array) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, row: int) -> tuple[int, npt.NDArray[np.uint8], list[int]]:
        """(row used, (H, W, 3) uint8 RGB frame, rows skipped as undecodable)."""
        return first_decodable(
            row, len(self), lambda i: decode_rgb(self.frames[i].as_py()), "frame"
        )


class ContextDataset(FrameDataset):
    """Item ``(row, sample_seed)`` -> a, b (S, S, 3) uint8, label (0..7), row, skipped."""

    def __init__(self, frames: pa.Array, cfg: ContextConfig = ContextConfig()) -> None:
        super().__init__(frames)
        self.cfg = cfg

    def __getitem__(self, item: Item) -> dict[str, Any]:
        row, seed = item
        r, frame, skipped = self.frame(row)
        a, b, label = context_pair(frame, self.cfg, np.random.default_rng(seed))
        return {"a": a, "b": b, "label": label, "row": r, "skipped": skipped}


def collate_context(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "a": torch.from_numpy(np.stack([it["a"] for it in items])),
        "b": torch.from_numpy(np.stack([it["b"] for it in items])),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.int64),
        "row": torch.tensor([it["row"] for it in items], dtype=torch.int64),
        "skipped": [r for it in items for r in it["skipped"]],
    }


@dataclass(frozen=True)
class ContextNetConfig:
    trunk: str = "vgg16"  # the feature source clusters with a VGG16-style pool5
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 96  # patch side, same as the mined patches the features describe
    fc6: int = 1024  # per-patch fc (Doersch uses 4096 with larger patches; 1024 halves memory)
    fc7: int = 4096  # fc on the concatenated pair (Doersch et al. 2015)
    n_classes: int = 8  # 8 relative positions of the second patch around the first


class ContextHead(nn.Module):
    """Two (N, C, h, w) pool5 maps -> (N, n_classes) relative-position logits."""

    def __init__(self, in_features: int, fc6: int, fc7: int, n_classes: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, fc6)
        self.fc7 = nn.Linear(2 * fc6, fc7)
        self.fc8 = nn.Linear(fc7, n_classes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, pool5_a: torch.Tensor, pool5_b: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.fc6(pool5_a.flatten(1)))
        b = self.relu(self.fc6(pool5_b.flatten(1)))
        return self.fc8(self.relu(self.fc7(torch.cat([a, b], dim=1))))


class ContextNet(nn.Module):
    def __init__(self, cfg: ContextNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        dim = flat_dim(self.trunk, cfg.input_size)
        self.head = ContextHead(dim, cfg.fc6, cfg.fc7, cfg.n_classes)
        init_linears(self.head, self.trunk.config.init_seed + 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # one trunk pass over both patches: half the kernel launches, same result
        both = self.trunk.pool5(torch.cat([a, b], dim=0))
        return self.head(both[: a.shape[0]], both[a.shape[0] :])


def context_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy over the 8 relative positions; returns (loss, accuracy)."""
    loss = F.cross_entropy(logits.float(), labels)
    acc = float((logits.argmax(1) == labels).float().mean())
    return loss, acc


def context_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    with sc.autocast():
        logits = model(to_input(batch["a"], sc), to_input(batch["b"], sc))
    loss, acc = context_loss(logits, batch["label"].to(sc.device))
    return loss, {"loss": float(loss.detach()), "accuracy": acc}


def build_data(cfg: TrainConfig) -> MethodData:
    frames = load_frames(cfg.data, ContextColumns(**cfg.columns), cfg.registry or None)
    ds = ContextDataset(frames, ContextConfig(**cfg.crop))
    return MethodData(ds, collate_context, np.ones(len(ds)), 2)


METHOD = Method(
    name="context",
    network_config=ContextNetConfig,
    network=ContextNet,
    default_trunk="vgg16",  # the 2017 paper clusters VGG16 pool5 features of it
    build_data=build_data,
    step=context_step,
)
