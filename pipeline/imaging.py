"""Image bytes and montages: JPEG/PNG encoding of RGB arrays and contact sheets.

Tables carry images as encoded bytes so that a dataset directory is self-contained;
every stage encodes and decodes through these functions (RGB in, RGB out).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ImageDecodeError",
    "crop_resize",
    "decode_jpeg",
    "decode_png",
    "encode_jpeg",
    "encode_png",
    "montage",
    "save_png",
]

U8 = NDArray[np.uint8]


class ImageDecodeError(ValueError):
    """Bytes that are not a decodable image."""


def _to_bgr(rgb: NDArray[np.generic]) -> NDArray[np.generic]:
    if rgb.ndim == 2:
        return rgb
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB or (H, W) grey, got shape {rgb.shape}")
    return np.ascontiguousarray(rgb[:, :, ::-1])


def encode_jpeg(rgb: U8, quality: int = 90) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes. Quality 90 keeps crops faithful at ~1/10 size."""
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 image, got {rgb.dtype}")
    ok, buf = cv2.imencode(".jpg", _to_bgr(rgb), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf)


def decode_jpeg(data: bytes) -> U8:
    """JPEG (or PNG) bytes -> (H, W, 3) uint8 RGB; :class:`ImageDecodeError` if corrupt."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise ImageDecodeError(f"cannot decode image bytes ({len(data)} bytes)")
    return np.ascontiguousarray(arr[:, :, ::-1])


def encode_png(arr: NDArray[np.generic]) -> bytes:
    """(H, W) uint8/uint16 or (H, W, 3) uint8 RGB -> lossless PNG bytes."""
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16, got {arr.dtype}")
    ok, buf = cv2.imencode(".png", _to_bgr(arr))
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(buf)


def decode_png(data: bytes) -> NDArray[np.generic]:
    """PNG bytes -> the array as stored ((H, W) grey or (H, W, 3) RGB, uint8/uint16)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageDecodeError(f"cannot decode PNG bytes ({len(data)} bytes)")
    if arr.ndim == 3:
        arr = np.ascontiguousarray(arr[:, :, 2::-1])
    return arr


def crop_resize(frame: U8, box: Sequence[float], size: int) -> U8:
    """Crop ``box`` (x, y, w, h; may extend past the frame, padded by edge replication)
    from ``frame`` and resize it to ``size`` x ``size`` (area interpolation)."""
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box {tuple(box)} has no area")
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = int(np.ceil(x + w)), int(np.ceil(y + h))
    H, W = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - W, y1 - H)
    src = frame
    if pad:
        src = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = src[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _tile(img: NDArray[np.generic], tile: int) -> U8:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    s = tile / max(h, w)
    out = cv2.resize(
        img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
    )
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    oy, ox = (tile - out.shape[0]) // 2, (tile - out.shape[1]) // 2
    canvas[oy : oy + out.shape[0], ox : ox + out.shape[1]] = out
    return canvas


def montage(
    rows: Sequence[Sequence[NDArray[np.generic]]],
    tile: int = 96,
    pad: int = 4,
    labels: Sequence[str] | None = None,
) -> U8:
    """A contact sheet: each inner sequence is one row of images, scaled into
    ``tile`` x ``tile`` cells on white; ``labels`` (one per row) are written at the left."""
    if not rows:
        raise ValueError("montage needs at least one row")
    ncol = max(len(r) for r in rows)
    label_w = 0
    if labels is not None:
        if len(labels) != len(rows):
            raise ValueError(f"{len(labels)} labels for {len(rows)} rows")
        label_w = 8 + 7 * max((len(s) for s in labels), default=0)
    H = pad + len(rows) * (tile + pad)
    W = label_w + pad + ncol * (tile + pad)
    sheet = np.full((H, W, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        y = pad + i * (tile + pad)
        for j, img in enumerate(row):
            x = label_w + pad + j * (tile + pad)
            sheet[y : y + tile, x : x + tile] = _tile(np.asarray(img), tile)
        if labels is not None:
            cv2.putText(
                sheet,
                labels[i],
                (4, y + tile // 2),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    return sheet


def save_png(path: str | Path, rgb: NDArray[np.generic]) -> Path:
    """Write an image as PNG to a local path (parent directories created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(encode_png(rgb))
    return p
