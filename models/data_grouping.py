"""Training items for the edge network and the grouping network (Zhang & Maire 2020).

Both take a random square crop of a frame (side ``min(H, W)`` times a uniform factor in
[``min_crop``, 1], anywhere in the frame), resized to ``input_size``, flipped left-right with
probability 1/2.

- ``EdgeDataset``: rows of ``edge_targets`` (frame JPEG + target PNG {0, 1, IGNORE}); the
  target is cropped the same way (nearest).
- ``GroupingDataset``: rows of the ``regions`` table joined with their frames. Pixel pairs are
  sampled on the full-resolution region tree (``pipeline.pixel_pairs``) and mapped into the
  crop; a pixel that leaves the crop is masked out (``*_valid``), so every item has the
  same shapes. With ``two_views`` (default, Zhang & Maire 2020: the same pixels mapped through
  an augmentation give more pairs) a second crop is drawn independently and the same pixels
  are mapped into it too (keys suffixed ``2``). Negatives from other images are drawn in the
  training step (the batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import torch
from torch.utils.data import Dataset

from models.images import decode_gray, decode_rgb, first_decodable
from models.manifests import has_table, read_table, require_columns
from models.methods.masks import IGNORE
from models.sampling import Item

if TYPE_CHECKING:
    from pipeline.pixel_pairs import PixelPairs

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class CropConfig:
    input_size: int = 224  # crop side fed to the network (ResNet's usual 224)
    min_crop: float = 0.6  # crop side >= 0.6 x the frame's shorter side: objects stay whole
    flip: bool = True  # left-right flip with probability 1/2
    cross_negatives: int = 5  # grouping: negatives per anchor from other images (paper: 5)
    two_views: bool = True  # grouping: a second crop of the same frame (paper); False = one


@dataclass(frozen=True)
class FrameColumns:
    """Where the frames live (one helper, so the source can be switched to SampleFrames)."""

    table: str = "masks"  # SegmentMotion's frames of kept shots; "frames" for SampleFrames
    image: str = "frame_jpeg"
    video: str = "video_id"
    frame: str = "frame"


@dataclass(frozen=True)
class Crop:
    y0: float
    x0: float
    side: float
    size: int
    flip: bool

    def matrix(self) -> npt.NDArray[np.float64]:
        """(2, 3) affine, OpenCV convention (frame pixel -> crop pixel), the flip included."""
        s = self.size / self.side
        m = np.array([[s, 0.0, -s * self.x0], [0.0, s, -s * self.y0]], dtype=np.float64)
        if self.flip:
            m[0] = [-s, 0.0, self.size - 1 + s * self.x0]
        return m

    def apply(self, img: U8, interpolation: int) -> U8:
        out = cv2.warpAffine(img, self.matrix(), (self.size, self.size), flags=interpolation,
                             borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        return np.ascontiguousarray(out)

    def map_points(
        self, yx: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """(..., 2) frame pixels -> (..., 2) crop pixels (clipped) and whether inside."""
        from pipeline.pixel_pairs import map_pixels

        out, inside = map_pixels(yx, self.matrix(), (self.size, self.size))
        return np.clip(out, 0, self.size - 1), inside


def random_crop(h: int, w: int, cfg: CropConfig, rng: np.random.Generator) -> Crop:
    side = min(h, w) * rng.uniform(cfg.min_crop, 1.0)
    y0 = rng.uniform(0.0, max(h - side, 0.0))
    x0 = rng.uniform(0.0, max(w - side, 0.0))
    return Crop(y0, x0, side, cfg.input_size, bool(cfg.flip and rng.random() < 0.5))


def load_frame_table(
    sources: str | Path | Sequence[str | Path],
    cols: FrameColumns = FrameColumns(),
    registry: str | None = None,
) -> pa.Table:
    """(video_id, frame, frame_jpeg) of the frame sources among ``sources``."""
    src = [s for s in ([sources] if isinstance(sources, str | Path) else sources)]
    mine = [s for s in src if has_table([s], cols.table, registry)]
    if not mine:
        raise ValueError(f"no source among {[str(s) for s in src]} holds frames ({cols.table!r})")
    t = read_table(mine, cols.table, registry)
    require_columns(t, cols.table, [cols.video, cols.frame, cols.image])
    t = t.select([cols.video, cols.frame, cols.image])
    return t.rename_columns(["video_id", "frame", "frame_jpeg"])


class EdgeDataset(Dataset[dict[str, Any]]):
    """Item -> image (S, S, 3) uint8, target (S, S) uint8 {0, 1, IGNORE}, row, skipped."""

    def __init__(self, table: pa.Table, cfg: CropConfig = CropConfig()) -> None:
        require_columns(table, "edge_targets", ["frame_jpeg", "target_png"])
        if table.num_rows == 0:
            raise ValueError("table 'edge_targets' has no rows to train on")
        self.frames = table.column("frame_jpeg").combine_chunks()
        self.targets = table.column("target_png").combine_chunks()
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: Item) -> dict[str, Any]:
        row, seed = item

        def load(i: int) -> tuple[U8, U8]:
            return decode_rgb(self.frames[i].as_py()), decode_gray(self.targets[i].as_py())

        r, (frame, target), skipped = first_decodable(row, len(self), load, "edge target")
        h, w = frame.shape[:2]
        if target.shape != (h, w):
            target = cv2.resize(target, (w, h), interpolation=cv2.INTER_NEAREST)
        crop = random_crop(h, w, self.cfg, np.random.default_rng(seed))
        img = crop.apply(frame, cv2.INTER_AREA if crop.side > crop.size else cv2.INTER_LINEAR)
        # an edge pixel must survive downsampling: max-pool the edge class, then nearest
        edge = (target == 1).astype(np.uint8)
        k = max(int(math.ceil(crop.side / crop.size)), 1)
        if k > 1:
            edge = cv2.dilate(edge, np.ones((k, k), np.uint8))
        tgt = np.where(edge > 0, 1, np.where(target == IGNORE, IGNORE, 0)).astype(np.uint8)
        return {"image": img, "target": crop.apply(tgt, cv2.INTER_NEAREST), "row": r,
                "skipped": skipped}  # fmt: skip


def collate_edges(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.from_numpy(np.stack([it["image"] for it in items])),
        "target": torch.from_numpy(np.stack([it["target"] for it in items])),
        "row": torch.tensor([it["row"] for it in items], dtype=torch.int64),
        "skipped": [r for it in items for r in it["skipped"]],
    }


@dataclass(frozen=True)
class RegionColumns:
    table: str = "regions"  # ComputeRegions' trees
    leaves: str = "leaves_png"  # (H, W) leaf labels 0..L-1 as PNG
    parent: str = "parent"  # (2L-1,) int32, -1 at the root
    height: str = "merge_height"  # (2L-1,) float32 merge heights


def load_regions(
    sources: str | Path | Sequence[str | Path],
    cols: RegionColumns = RegionColumns(),
    frames: FrameColumns = FrameColumns(),
    registry: str | None = None,
) -> pa.Table:
    """Region trees joined with their frames on (video_id, frame): one row per tree with
    ``frame_jpeg``, ``leaves_png``, ``parent``, ``height``. Trees without a frame are an error
    (a frame source is missing from ``sources``)."""
    src = [s for s in ([sources] if isinstance(sources, str | Path) else sources)]
    mine = [s for s in src if has_table([s], cols.table, registry)]
    if not mine:
        raise ValueError(f"no source among {[str(s) for s in src]} holds {cols.table!r}")
    t = read_table(mine, cols.table, registry)
    require_columns(t, cols.table, ["video_id", "frame", cols.leaves, cols.parent, cols.height])
    t = t.select(["video_id", "frame", cols.leaves, cols.parent, cols.height])
    t = t.rename_columns(["video_id", "frame", "leaves_png", "parent", "height"])
    if "frame_jpeg" not in t.column_names:
        f = load_frame_table(src, frames, registry)
        t = _attach_frames(t, f, frames.table, [str(s) for s in src])
    if t.num_rows == 0:
        raise ValueError(f"table {cols.table!r} has no region trees to train on")
    return t


def _attach_frames(t: pa.Table, f: pa.Table, frame_table: str, src: list[str]) -> pa.Table:
    """``t`` plus the ``frame_jpeg`` of ``f`` with the same (video_id, frame), in ``t``'s
    order. (Arrow joins cannot carry list columns, so the join is on row numbers.)"""
    keys = ["video_id", "frame"]
    left = t.select(keys).append_column("_t", pa.array(np.arange(t.num_rows)))
    right = f.select(keys).append_column("_f", pa.array(np.arange(f.num_rows)))
    j = left.join(right, keys=keys, join_type="left outer").sort_by("_t")
    rows = j.column("_f").to_numpy(zero_copy_only=False)
    missing = np.isnan(rows.astype(np.float64)) if rows.dtype.kind == "f" else np.zeros(0, bool)
    if j.num_rows != t.num_rows or missing.any():
        raise ValueError(
            f"{int(missing.sum())} of {t.num_rows} region trees have no frame in the "
            f"{frame_table!r} table of {src} (or a frame is there twice)"
        )
    return t.append_column("frame_jpeg", f.column("frame_jpeg").take(rows.astype(np.int64)))


def decode_labels(data: bytes | None) -> npt.NDArray[np.int32]:
    """Leaf-label PNG (8 or 16 bit) -> (H, W) int32, values kept as stored."""
    from models.images import UndecodableError

    if not data:
        raise UndecodableError("empty leaf-label bytes")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 2:
        raise UndecodableError(f"{len(data)} bytes do not decode as a label image")
    return img.astype(np.int32)


def _view(frame: U8, crop: Crop, pp: PixelPairs, suffix: str = "") -> dict[str, Any]:
    """One augmented view: the crop's image and the sampled pixels mapped into it. Validity is
    per pixel (inside the crop; a negative also needs its tree to have one); the step ANDs an
    anchor's own validity into its pairs."""
    img = crop.apply(frame, cv2.INTER_AREA if crop.side > crop.size else cv2.INTER_LINEAR)
    a, a_in = crop.map_points(np.asarray(pp.anchors, np.int64))
    p, p_in = crop.map_points(np.asarray(pp.positives, np.int64))
    n, n_in = crop.map_points(np.asarray(pp.negatives, np.int64))
    out = {"image": img, "anchors": a, "positives": p, "negatives": n, "anchor_valid": a_in,
           "pos_valid": p_in, "neg_valid": n_in & pp.neg_valid}  # fmt: skip
    return {k + suffix: v for k, v in out.items()}


VIEW_KEYS = (("anchors", 0), ("positives", 0), ("negatives", 0),
             ("anchor_valid", False), ("pos_valid", False), ("neg_valid", False))  # fmt: skip


class GroupingDataset(Dataset[dict[str, Any]]):
    """Item -> image (S, S, 3) uint8; anchors (N, 2), positives (N, P, 2), negatives (N, Q, 2)
    int64 crop pixels with (N,), (N, P), (N, Q) per-pixel validity; the same for the second
    view with suffix ``2`` (``image2``, ``anchors2``, ...) when ``cfg.two_views``; row;
    skipped."""

    def __init__(
        self, table: pa.Table, cfg: CropConfig = CropConfig(), pairs: dict[str, Any] | None = None
    ) -> None:
        from pipeline.pixel_pairs import PairConfig

        self.frames = table.column("frame_jpeg").combine_chunks()
        self.leaves = table.column("leaves_png").combine_chunks()
        self.parent = table.column("parent").combine_chunks()
        self.height = table.column("height").combine_chunks()
        self.cfg = cfg
        self.pair_cfg = PairConfig(**(pairs or {}))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: Item) -> dict[str, Any]:
        from pipeline.pixel_pairs import sample_pixel_pairs
        from pipeline.regions import RegionTree

        row, seed = item

        def load(i: int) -> tuple[U8, Any]:
            leaves = decode_labels(self.leaves[i].as_py())
            tree = RegionTree(
                leaves=leaves,
                parent=np.asarray(self.parent[i].as_py(), np.int32),
                height=np.asarray(self.height[i].as_py(), np.float32),
            )
            return decode_rgb(self.frames[i].as_py()), tree

        r, (frame, tree), skipped = first_decodable(row, len(self), load, "region tree")
        rng = np.random.default_rng(seed)
        h, w = frame.shape[:2]
        if tree.leaves.shape != (h, w):
            raise ValueError(f"row {r}: leaves {tree.leaves.shape} do not match frame {(h, w)}")
        pp = sample_pixel_pairs(tree, self.pair_cfg, rng)
        out = _view(frame, random_crop(h, w, self.cfg, rng), pp)
        if self.cfg.two_views:  # drawn after the first, so view 1 is today's single view
            out.update(_view(frame, random_crop(h, w, self.cfg, rng), pp, "2"))
        return {**out, "row": r, "skipped": skipped}


def _pad(arrays: list[npt.NDArray[Any]], n: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full((len(arrays), n, *arrays[0].shape[1:]), fill, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
    return out


def collate_grouping(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pads the anchor dimension to the batch's largest (padding is invalid)."""
    n = max(max(it["anchors"].shape[0] for it in items), 1)
    batch: dict[str, Any] = {}
    for suffix in ("", "2") if "image2" in items[0] else ("",):
        batch["image" + suffix] = torch.from_numpy(np.stack([it["image" + suffix] for it in items]))
        for key, fill in VIEW_KEYS:
            batch[key + suffix] = torch.from_numpy(
                _pad([it[key + suffix] for it in items], n, fill)
            )
    batch["row"] = torch.tensor([it["row"] for it in items], dtype=torch.int64)
    batch["skipped"] = [r for it in items for r in it["skipped"]]
    return batch


def split_options(options: dict[str, Any]) -> tuple[CropConfig, dict[str, Any]]:
    """TrainConfig.crop -> (CropConfig, the rest: pixel-pair sampling options)."""
    names = {f.name for f in fields(CropConfig)}
    crop = CropConfig(**{k: v for k, v in options.items() if k in names})
    return crop, {k: v for k, v in options.items() if k not in names}
