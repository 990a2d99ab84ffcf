"""Image bytes -> arrays inside loader workers, and the geometric helpers the datasets share."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_SKIP = 64  # consecutive undecodable rows tolerated before the table is declared broken


class UndecodableError(ValueError):
    """A row's image bytes do not decode (truncated, not an image, empty)."""


def first_decodable(
    row: int, n: int, load: Callable[[int], T], what: str
) -> tuple[int, T, list[int]]:
    """From ``row`` on (wrapping at ``n``), the first row whose ``load`` does not raise
    :class:`UndecodableError`: (that row, its value, the rows skipped on the way). Skipped
    rows are counted by the trainer, never fatal, up to ``MAX_SKIP`` in a row."""
    skipped: list[int] = []
    for k in range(MAX_SKIP):
        r = (row + k) % n
        try:
            return r, load(r), skipped
        except UndecodableError as e:
            log.debug("%s row %d: %s", what, r, e)
            skipped.append(r)
    raise RuntimeError(
        f"{MAX_SKIP} consecutive {what} rows from {row} do not decode: the table is broken"
    )


def decode_rgb(data: bytes | None) -> U8:
    """JPEG/PNG bytes -> (H, W, 3) uint8 RGB; grayscale is expanded to 3 channels."""
    if not data:
        raise UndecodableError("empty image bytes")
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise UndecodableError(f"{len(data)} bytes do not decode as an image")
    return np.ascontiguousarray(img[:, :, ::-1])


def decode_gray(data: bytes | None) -> U8:
    """PNG/JPEG bytes -> (H, W) uint8 (a soft mask: 0..255 = probability of foreground)."""
    if not data:
        raise UndecodableError("empty mask bytes")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UndecodableError(f"{len(data)} bytes do not decode as a mask")
    if img.ndim == 3:
        img = img[:, :, 0]
    if img.dtype != np.uint8:
        img = (img.astype(np.float64) * (255.0 / max(float(img.max()), 1.0))).astype(np.uint8)
    return np.ascontiguousarray(img)


def resize(img: U8, size: int, interpolation: int = cv2.INTER_AREA) -> U8:
    """Square resize (no-op when already ``size`` x ``size``)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=interpolation))


def crop_square(
    img: U8, cx: float, cy: float, side: float, size: int, interpolation: int = cv2.INTER_LINEAR
) -> U8:
    """Square crop of ``side`` pixels centred at (cx, cy), resampled to ``size``; the part
    outside the image is filled by edge replication (an affine warp, one pass)."""
    s = size / side
    m = np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)
    out = cv2.warpAffine(img, m, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out)
