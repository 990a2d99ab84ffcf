"""A decoded video frame whose conversions are made on demand (DetectMotion's frames).

DetectMotion looks at every frame only through a 64-px-high grey thumbnail (the shot-cut
test), and at the full working-scale RGB picture only for the pairs it analyses (one in
``frame_step``). Converting every decoded picture to RGB at 448 px costs as much CPU as
decoding it (dev tracking clips: H.264 decode 7.9 s, decode + RGB at 448 15.7 s for 3657
frames), so :class:`pipeline.video_io.VideoReader` can hand out frames that convert
only when asked: :meth:`Decoded.rgb` gives the picture ``get_batch`` would (same scaler,
same pixels) and :meth:`Decoded.luma_thumbnail` a thumbnail read straight from the
decoder's luma plane. :class:`RGBFrame` wraps an RGB array already in memory.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray


class Decoded(Protocol):
    """One decoded frame: ``size`` is the (width, height) of :meth:`rgb`."""

    @property
    def size(self) -> tuple[int, int]: ...

    def rgb(self) -> NDArray[np.uint8]:
        """(H, W, 3) uint8 RGB at the reader's output size (converted once, then kept)."""
        ...

    def luma_thumbnail(self, height: int) -> NDArray[np.uint8]:
        """(height, ~W*height/H) uint8 grey thumbnail (luma; its range may be video's
        16..235: use it only where a gain and offset do not matter, as in a correlation)."""
        ...


def thumbnail(grey: NDArray[np.uint8], height: int) -> NDArray[np.uint8]:
    """Area-downscaled (height, ~W*height/H) uint8 thumbnail of a grey frame."""
    h, w = grey.shape
    size = (max(int(round(w * height / h)), 1), height)
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA))


def strided_thumbnail(grey: NDArray[np.uint8], height: int) -> NDArray[np.uint8]:
    """Thumbnail of a large grey picture, cheaply: a strided view about twice the
    thumbnail's size, copied, then an area resize."""
    s = max(1, grey.shape[0] // (2 * height))
    return thumbnail(np.ascontiguousarray(grey[::s, ::s]), height)


class RGBFrame:
    """A frame already decoded to an RGB array."""

    __slots__ = ("_rgb",)

    def __init__(self, rgb: NDArray[np.uint8]) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        self._rgb = rgb

    @property
    def size(self) -> tuple[int, int]:
        return int(self._rgb.shape[1]), int(self._rgb.shape[0])

    def rgb(self) -> NDArray[np.uint8]:
        return self._rgb

    def luma_thumbnail(self, height: int) -> NDArray[np.uint8]:
        s = max(1, self._rgb.shape[0] // (2 * height))
        small = np.ascontiguousarray(self._rgb[::s, ::s])
        return thumbnail(np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)), height)
