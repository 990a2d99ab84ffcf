"""Synthetic clips for the mining tests: rendered at twice the size and area-downscaled,
so objects and camera move by fractions of a pixel as in real video (the generator draws
objects at integer positions, which flatters trackers at native scale)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.synthetic import generate_subpixel


def clip(
    height: int = 240, width: int = 320, **kw: Any
) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.int32]]:
    """(frames (T, H, W, 3) RGB, boxes (T, K, 4) xywh, shot_ids (T,)) at height x width,
    rendered at 2x (``pipeline.synthetic.generate_subpixel``).

    ``object_size``, ``speed`` and ``camera_pan`` are given at the output scale."""
    v = generate_subpixel(height, width, 2, **kw)
    return v.frames, v.boxes, v.shot_ids


def resize_height(frames: NDArray[np.uint8], height: int) -> NDArray[np.uint8]:
    h, w = frames.shape[1:3]
    size = (int(round(w * height / h)), height)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])


def iou(a: Any, b: Any) -> float:
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - iw * ih
    return iw * ih / union if union > 0 else 0.0
