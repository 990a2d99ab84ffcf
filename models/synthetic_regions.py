"""Synthetic frames with known region trees (tests and the grouping benchmark).

Each frame: a textured background (leaf 0) and three flat-coloured rectangles (leaves 1, 2,
3) at random places; the tree merges 1+2 at height 0.3, then 3 at 0.6, then the background
at 1.0. Rows follow the declared ``regions`` schema (ComputeRegions'), and the frames go in a
``masks`` table (SegmentMotion's, the default frame source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data_manifests import schema as schemas

PARENT = [6, 4, 4, 5, 5, 6, -1]  # leaves 0..3, then merges 4 = {1, 2}, 5 = {4, 3}, 6 = root
HEIGHT = [0.0, 0.0, 0.0, 0.0, 0.3, 0.6, 1.0]
COLOURS = ((220, 40, 40), (40, 200, 60), (50, 80, 230))


def region_frame(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """-> ((size, size, 3) uint8 RGB frame, (size, size) uint8 leaf labels 0..3)."""
    img = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    leaves = np.zeros((size, size), np.uint8)
    side = size // 3
    for k, colour in enumerate(COLOURS, start=1):
        y, x = rng.integers(0, size - side, 2)
        free = leaves[y : y + side, x : x + side] == 0
        img[y : y + side, x : x + side][free] = colour
        leaves[y : y + side, x : x + side][free] = k
    for k in range(4):  # a leaf fully covered by later rectangles: give it one pixel back
        if not (leaves == k).any():
            leaves[k, 0] = k
    return img, leaves


def write_region_manifest(out: Path, n: int = 8, size: int = 64, seed: int = 0) -> Path:
    """``out/regions.parquet`` and ``out/masks.parquet`` (frames); returns ``out``."""
    rng = np.random.default_rng(seed)
    regions: list[dict[str, Any]] = []
    frames: list[dict[str, Any]] = []
    for i in range(n):
        img, leaves = region_frame(size, rng)
        key = {"video_id": f"v{i % 2}", "frame": i}
        regions.append({
            **key, "shot": 0, "width": size, "height": size, "edge_source": "synthetic",
            "n_leaves": 4, "leaves_png": cv2.imencode(".png", leaves)[1].tobytes(),
            "parent": PARENT, "merge_height": HEIGHT,
        })  # fmt: skip
        frames.append({
            **key, "shot": 0, "width": size, "height": size, "fg_share": 0.0,
            "frame_jpeg": cv2.imencode(".png", img[:, :, ::-1])[1].tobytes(),
            "mask_png": cv2.imencode(".png", np.zeros_like(leaves))[1].tobytes(),
            "border_share": 0.0, "kept": True, "reason": "",
        })  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("regions", regions), ("masks", frames)):
        ts = schemas.get(name)
        schemas.write_parquet(schemas.table_from_rows(rows, ts), out / f"{name}.parquet", ts, {})
    return out
