"""Frames and their uNLC soft masks, as jittered crops and trimaps (Pathak et al. 2017).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

from models.images import crop_square, decode_gray, decode_rgb, first_decodable
from models.losses import IGNORE
from models.manifests import read_table, require_columns
from models.sampling import Item

log = logging.getLogger(__name__)


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
