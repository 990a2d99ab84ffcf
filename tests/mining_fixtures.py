"""Synthetic clips for the mining tests: rendered at twice the size and area-downscaled,
so objects and camera move by fractions of a pixel as in real video (the generator draws
objects at integer positions, which flatters trackers at native scale)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.synthetic import SyntheticConfig, generate


def clip(
    height: int = 240, width: int = 320, **kw: Any
) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.int32]]:
    """(frames (T, H, W, 3) RGB, boxes (T, K, 4) xywh, shot_ids (T,)) at height x width.

    ``object_size``, ``speed`` and ``camera_pan`` are given at the output scale."""
    kw = dict(kw)
    for k in ("object_size",):
        if k in kw:
            kw[k] = int(kw[k] * 2)
    if "speed" in kw:
        kw["speed"] = float(kw["speed"]) * 2
    if "camera_pan" in kw:
        kw["camera_pan"] = tuple(2 * float(v) for v in kw["camera_pan"])
    v = generate(SyntheticConfig(height=2 * height, width=2 * width, **kw))
    frames = np.stack(
        [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in v.frames]
    )
    return frames, v.boxes / 2, v.shot_ids


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
