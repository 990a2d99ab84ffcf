"""Mask method (Pathak et al. 2017): jittered crops and trimaps, mask network, loss, step.

Network ``MaskNet``: trunk -> 1x1 conv -> fc -> s*s logits (DeepMask-style); (N, s, s)
float logits for a (N, 3, w, w) crop. Loss: per-pixel logistic loss on the trimap, ignored
pixels weigh nothing.

Frames and their uNLC soft masks, as jittered crops and trimaps:

Each kept row of the ``masks`` table gives a frame (JPEG) and a soft mask (PNG, 0..255 =
probability of foreground). The object is the bounding box of the pixels above ``fg``; the
crop is a square of ``context`` times the box's longer side around it, jittered in position
(``jitter_pos`` of the side) and scale (a factor in [1/jitter_scale, jitter_scale], log-uniform),
resampled to ``input_size`` (w = 227) for the image and ``mask_size`` (s = 56) for the mask.
The trimap (same thresholds as ``pipeline.pruning``, Pathak's run_full): 1 where the soft mask
> ``fg`` (0.7), 0 where < ``bg`` (0.4), IGNORE (255) in between.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from models.images import crop_square, decode_gray, decode_rgb, first_decodable
from models.manifests import read_table, require_columns
from models.methods.base import Method, MethodData, init_linears
from models.sampling import Item
from models.steps import StepContext, to_input
from models.trunks import build_trunk

if TYPE_CHECKING:
    from models.config import TrainConfig

log = logging.getLogger(__name__)
IGNORE = 255  # trimap value of pixels that weigh nothing


@dataclass(frozen=True)
class MaskColumns:
    table: str = "masks"
    frame: str = "frame_jpeg"  # the frame, JPEG bytes
    mask: str = "mask_png"  # the soft mask, PNG bytes (uint8 probability x 255)
    kept: str = "kept"  # rows the segmenter kept; others are not training data


@dataclass(frozen=True)
class MaskCropConfig:
    input_size: int = 227  # w: crop side fed to the network (Pathak et al. 2017)
    mask_size: int = 56  # s: target mask side (Pathak et al. 2017)
    context: float = 1.6  # crop side / object box side: the object fills ~60% of the crop
    jitter_pos: float = 0.1  # centre shift, as a fraction of the crop side (uniform, each axis)
    jitter_scale: float = 1.25  # crop side multiplied by a log-uniform factor in [1/1.25, 1.25]
    fg: float = 0.7  # soft > fg -> foreground (pipeline.pruning trimap_positive, Pathak posTh)
    bg: float = 0.4  # soft < bg -> background (trimap_negative, negTh); between: ignored


def load_masks(
    sources: str | Path | Sequence[str | Path],
    cols: MaskColumns = MaskColumns(),
    registry: str | None = None,
) -> pa.Table:
    """The kept rows (frame bytes and mask bytes) of the ``masks`` table."""
    t = read_table(sources, cols.table, registry)
    require_columns(t, cols.table, [cols.frame, cols.mask])
    if cols.kept in t.column_names:
        t = t.filter(pc.fill_null(t.column(cols.kept), False))
    if t.num_rows == 0:
        raise ValueError(f"table {cols.table!r} has no kept rows to train on")
    return t.select([cols.frame, cols.mask])


def object_box(soft: npt.NDArray[np.uint8], fg: float) -> tuple[float, float, float] | None:
    """(cx, cy, side) of the foreground's bounding box (side = the longer edge), or None."""
    ys, xs = np.nonzero(soft > fg * 255.0)
    if ys.size == 0:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, float(max(x1 - x0, y1 - y0))


def trimap(soft: npt.NDArray[np.uint8], fg: float, bg: float) -> npt.NDArray[np.uint8]:
    """(s, s) uint8 soft mask -> (s, s) uint8 trimap {0, 1, IGNORE}."""
    out = np.full(soft.shape, IGNORE, dtype=np.uint8)
    out[soft > fg * 255.0] = 1
    out[soft < bg * 255.0] = 0
    return out


def jittered_crop(
    frame: npt.NDArray[np.uint8],
    soft: npt.NDArray[np.uint8],
    cfg: MaskCropConfig,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """-> ((w, w, 3) uint8 crop, (s, s) uint8 trimap) around the moving object."""
    h, w = frame.shape[:2]
    if soft.shape != (h, w):
        soft = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    box = object_box(soft, cfg.fg)
    cx, cy, side = (w / 2.0, h / 2.0, float(max(h, w))) if box is None else box
    side = max(side * cfg.context, 8.0) * math.exp(
        rng.uniform(-math.log(cfg.jitter_scale), math.log(cfg.jitter_scale))
    )
    cx += rng.uniform(-cfg.jitter_pos, cfg.jitter_pos) * side
    cy += rng.uniform(-cfg.jitter_pos, cfg.jitter_pos) * side
    img = crop_square(frame, cx, cy, side, cfg.input_size)
    m = crop_square(soft, cx, cy, side, cfg.mask_size)
    return img, trimap(m, cfg.fg, cfg.bg)


class MaskDataset(Dataset[dict[str, Any]]):
    """Item ``(row, sample_seed)`` -> image (w, w, 3) uint8, trimap (s, s) uint8, row,
    skipped (rows passed over because the frame or mask did not decode)."""

    def __init__(self, table: pa.Table, cfg: MaskCropConfig = MaskCropConfig()) -> None:
        self.frames = table.column(0).combine_chunks()
        self.masks = table.column(1).combine_chunks()
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: Item) -> dict[str, Any]:
        row, seed = item

        def load(i: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
            return decode_rgb(self.frames[i].as_py()), decode_gray(self.masks[i].as_py())

        r, (frame, soft), skipped = first_decodable(row, len(self), load, "mask")
        img, tri = jittered_crop(frame, soft, self.cfg, np.random.default_rng(seed))
        return {"image": img, "trimap": tri, "row": r, "skipped": skipped}


def collate_masks(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.from_numpy(np.stack([it["image"] for it in items])),
        "trimap": torch.from_numpy(np.stack([it["trimap"] for it in items])),
        "row": torch.tensor([it["row"] for it in items], dtype=torch.int64),
        "skipped": [r for it in items for r in it["skipped"]],
    }


@dataclass(frozen=True)
class MaskNetConfig:
    trunk: str = "alexnet"  # Pathak et al. 2017 trained AlexNet
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 227  # w: crop side (Pathak et al. 2017)
    mask_size: int = 56  # s: predicted mask side (Pathak et al. 2017)
    reduce_channels: int = 512  # 1x1 conv before the fc, as in DeepMask
    hidden: int = 512  # fc before the s*s output, as in DeepMask


class MaskHead(nn.Module):
    """(N, C, h, w) pool5 -> (N, s, s) logits: 1x1 conv -> ReLU -> fc -> ReLU -> fc s*s."""

    def __init__(self, c_in: int, hw: int, reduce: int, hidden: int, mask_size: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c_in, reduce, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(reduce * hw, hidden)
        self.out = nn.Linear(hidden, mask_size * mask_size)
        self.mask_size = mask_size

    def forward(self, pool5: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.reduce(pool5)).flatten(1)
        x = self.out(self.relu(self.fc(x)))
        return x.reshape(-1, self.mask_size, self.mask_size)


class MaskNet(nn.Module):
    def __init__(self, cfg: MaskNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        c, h, w = self.trunk.pool5_shape(cfg.input_size)
        self.head = MaskHead(c, h * w, cfg.reduce_channels, cfg.hidden, cfg.mask_size)
        init_linears(self.head, self.trunk.config.init_seed + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pool5(x))


def trimap_loss(logits: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Per-pixel logistic loss, mean over the non-ignored pixels.

    ``logits`` (N, s, s) float; ``trimap`` (N, s, s) uint8 with 0 background, 1 foreground,
    ``IGNORE`` (255) ignored: those pixels weigh nothing. All-ignored batches give 0.
    """
    if logits.shape != trimap.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and trimap {tuple(trimap.shape)} differ")
    keep = trimap != IGNORE
    target = (trimap == 1).to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * keep).sum() / keep.sum().clamp(min=1)


def mask_stats(logits: torch.Tensor, trimap: torch.Tensor) -> dict[str, float]:
    """IoU / precision / recall of ``logits > 0`` against the trimap's decided pixels."""
    keep = trimap != IGNORE
    pred = (logits > 0) & keep
    gt = (trimap == 1) & keep
    inter = float((pred & gt).sum())
    union = float((pred | gt).sum())
    return {
        "iou": inter / union if union else 1.0,
        "precision": inter / float(pred.sum()) if pred.any() else 1.0,
        "recall": inter / float(gt.sum()) if gt.any() else 1.0,
    }


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


def build_data(cfg: TrainConfig) -> MethodData:
    ds = MaskDataset(
        load_masks(cfg.data, MaskColumns(**cfg.columns), cfg.registry or None),
        MaskCropConfig(**cfg.crop),
    )
    return MethodData(ds, collate_masks, np.ones(len(ds)), 1)


METHOD = Method(
    name="mask",
    network_config=MaskNetConfig,
    network=MaskNet,
    default_trunk="alexnet",  # Pathak et al. 2017
    build_data=build_data,
    step=mask_step,
)
