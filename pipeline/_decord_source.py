"""decord frame source behind :class:`pipeline.video_io.VideoReader` (private module).

decord builds a packet index when it opens a file, so ``len()``, timestamps and
frame-exact random access (``get_batch``) come cheap. It applies the container's display
matrix itself (a phone video with a 90 degree rotation comes out upright, and the
``height``/``width`` it is asked for are the upright ones), so frames need no rotation here.

decord trusts the container header: an AVI claiming 2**31-1 frames makes it abort the
process (``std::bad_alloc``), which is why ``VideoReader`` refuses implausible headers
before this class sees them and FetchVideos probes in a child process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import cv2  # noqa: F401  before decord: see _LOAD_ORDER
import numpy as np
from numpy.typing import NDArray

# decord's wheel bundles its own libpng/zlib; loaded before OpenCV, it shadows OpenCV's and
# cv2.imdecode fails on every PNG ("libpng error: bad parameters to zlib": masks unreadable).
# Importing cv2 first, here where decord is imported, keeps OpenCV's libraries.
_LOAD_ORDER = ("cv2", "decord")

DECODE_THREADS = 1  # DESIGN 10: two processes scale better than two decoder threads
_CHUNK = 16  # frames per decord batch when streaming: bounded memory, few calls


class DecordSourceError(RuntimeError):
    """decord could not open or decode the file (the message is the reason)."""


def first_line(e: BaseException) -> str:
    """First line of an error, without decord's "[time] source.cc:123: " prefix."""
    text = str(e).strip().splitlines()
    return re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", text[0])[:300] if text else type(e).__name__


class DecordSource:
    name = "decord"

    def __init__(self, path: str, out_hw: tuple[int, int] | None) -> None:
        import decord

        kw = {} if out_hw is None else {"height": out_hw[0], "width": out_hw[1]}
        try:
            self.vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=DECODE_THREADS, **kw)
        except (RuntimeError, decord.DECORDError) as e:
            raise DecordSourceError(f"decord cannot open it ({first_line(e)})") from e
        self.path = path
        self.n = len(self.vr)
        self.header_fps = float(self.vr.get_avg_fps()) or None
        self.times = np.zeros(0)
        if self.n:
            ts = np.asarray(self.vr.get_frame_timestamp(np.arange(self.n))[:, 0], np.float64)
            self.times = ts - ts[0]

    @property
    def src_hw(self) -> tuple[int, int]:
        """Native upright (height, width); decord only tells by decoding a frame."""
        if not self.n:
            return (0, 0)
        h, w = self.get_batch([0]).shape[1:3]
        return int(h), int(w)

    def get_batch(self, idx: Sequence[int]) -> NDArray[np.uint8]:
        import decord

        try:
            return np.asarray(self.vr.get_batch(list(idx)).asnumpy(), np.uint8)
        except (RuntimeError, decord.DECORDError) as e:
            raise DecordSourceError(f"decode failed: {first_line(e)}") from e

    def iter(self, start: int, stop: int, step: int) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        idx = list(range(start, stop, step))
        for i in range(0, len(idx), _CHUNK):
            chunk = idx[i : i + _CHUNK]
            yield from zip(chunk, self.get_batch(chunk), strict=True)

    def close(self) -> None:
        del self.vr
