"""PyAV frame source behind :class:`pipeline.video_io.VideoReader` (private module).

Opened for files decord rejects. The file is demuxed once to index the presentation
timestamps (pts) of the video packets: the sorted pts give each frame its index and the
keyframe pts the seek points, so random access is frame exact (seek to the keyframe at or
before the target, decode forward, match pts). Streams without timestamps fall back to
decode order from the start.

Rotation: PyAV decodes the coded picture and ignores the container's display matrix (a
phone video filmed upright comes out lying on its side). :func:`header` reads the matrix's
rotation and :class:`PyAVSource` turns every frame upright, as decord does itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import av
import numpy as np
from numpy.typing import NDArray

from pipeline.decoded import strided_thumbnail

log = logging.getLogger(__name__)


class PyAVSourceError(RuntimeError):
    """PyAV could not open or decode the file (the message is the reason)."""


class NoVideoStream(PyAVSourceError):
    """The container opens but holds no video stream (e.g. an audio-only .mp4)."""


@dataclass(frozen=True)
class HeaderMeta:
    frames: int | None  # frame count stated by the container (None: not stated)
    fps: float | None  # stated average rate
    width: int
    height: int
    codec: str
    pix_fmt: str
    rotation: int = 0  # display matrix: degrees counterclockwise, 0 / 90 / 180 / 270


def normalise_rotation(degrees: float) -> int:
    """A display-matrix angle (counterclockwise, [-180, 180]) as 0, 90, 180 or 270: the
    nearest quarter turn (other angles do not occur in camera files)."""
    return int(round(degrees / 90.0)) % 4 * 90


def upright(arr: NDArray[np.uint8], rotation: int) -> NDArray[np.uint8]:
    """A coded (H, W, C) picture turned as its display matrix says (np.rot90 turns
    counterclockwise, like the matrix's angle)."""
    k = rotation // 90 % 4
    return arr if k == 0 else np.ascontiguousarray(np.rot90(arr, k))


def coded_hw(hw: tuple[int, int], rotation: int) -> tuple[int, int]:
    """The coded (height, width) of an upright (height, width), and back: a quarter turn
    swaps them."""
    return (hw[1], hw[0]) if rotation % 180 == 90 else hw


_ROTATION_PACKETS = 64  # packets tried for a first frame: a corrupt file is not scanned whole


def _first_frame_rotation(c: av.container.InputContainer, st: av.VideoStream) -> int:
    """The display matrix rotation, which PyAV exposes on decoded frames: decode one."""
    try:
        for k, pkt in enumerate(c.demux(st)):
            for frame in pkt.decode():
                return normalise_rotation(float(frame.rotation))
            if k >= _ROTATION_PACKETS:
                break
    except (av.FFmpegError, ValueError) as e:
        log.debug("no frame to read the rotation from: %s", e)
    return 0


def header(path: str) -> HeaderMeta | None:
    """What the container header says about its first video stream; None if unreadable.

    Raises :class:`NoVideoStream` when the container opens but has no video stream.
    """
    try:
        with av.open(path) as c:
            if not c.streams.video:
                kinds = [f"{s.type} ({s.codec_context.name})" for s in c.streams] or ["none"]
                raise NoVideoStream(f"no video stream (its streams: {', '.join(kinds)})")
            st = c.streams.video[0]
            cc = st.codec_context
            rate = st.average_rate or st.guessed_rate
            return HeaderMeta(
                frames=int(st.frames) or None,
                fps=float(rate) if rate else None,
                width=int(cc.width),
                height=int(cc.height),
                codec=str(cc.name),
                pix_fmt=str(cc.pix_fmt or "unknown"),
                rotation=_first_frame_rotation(c, st),
            )
    except (av.FFmpegError, OSError, ValueError) as e:
        log.debug("%s: PyAV cannot read the header: %s", path, e)
        return None


class PyAVSource:
    name = "pyav"

    def __init__(
        self, path: str, out_hw: tuple[int, int] | None, threads: int, rotation: int = 0
    ) -> None:
        """``out_hw``: upright output size (None: native); ``rotation``: the display
        matrix's, from :func:`header` (frames come out turned upright)."""
        self.path = path
        try:
            self.container = av.open(path)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise PyAVSourceError(f"cannot open it ({e})") from e
        if not self.container.streams.video:
            self.container.close()
            raise PyAVSourceError("finds no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.codec_context.thread_count = threads
        self.out_hw = out_hw
        self.rotation = rotation
        self._coded_out = None if out_hw is None else coded_hw(out_hw, rotation)
        cc = self.stream.codec_context
        self.src_hw = coded_hw((int(cc.height), int(cc.width)), rotation)
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.header_fps = float(rate) if rate else None
        self._index()

    def _index(self) -> None:
        """Demux every video packet once: pts in presentation order and keyframes."""
        pts: list[int | None] = []
        keys: list[bool] = []
        try:
            for pkt in self.container.demux(self.stream):
                if pkt.size == 0:  # the flush packet at the end
                    continue
                pts.append(pkt.pts if pkt.pts is not None else pkt.dts)
                keys.append(bool(pkt.is_keyframe))
        except av.FFmpegError as e:  # a truncated file: keep what was demuxed
            log.info("%s: demux stopped after %d packets: %s", self.path, len(pts), e)
        self.n = len(pts)
        self.timed = all(p is not None for p in pts)
        tb = float(self.stream.time_base or 0.0)
        if self.timed and self.n:
            arr = np.asarray(pts, np.int64)
            order = np.argsort(arr, kind="stable")
            self.pts = arr[order]
            self.pts_to_index = {int(p): i for i, p in enumerate(self.pts)}
            self.key_index = np.flatnonzero(np.asarray(keys)[order])
            self.times = (self.pts - self.pts[0]).astype(np.float64) * tb
        else:
            self.pts = np.zeros(0, np.int64)
            self.pts_to_index = {}
            self.key_index = np.zeros(0, np.int64)
            self.times = np.zeros(0) if not self.header_fps else np.arange(self.n) / self.header_fps

    def _rgb(self, frame: av.VideoFrame) -> NDArray[np.uint8]:
        if self._coded_out is None:
            arr = frame.to_ndarray(format="rgb24")
        else:
            h, w = self._coded_out
            arr = frame.to_ndarray(format="rgb24", height=h, width=w)
        return upright(np.asarray(arr, np.uint8), self.rotation)

    def _decode_from(
        self, index: int, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decoded (frame index, frame) from the keyframe at or before `index` onwards.

        ``wanted``: frames it rejects may be left out, and are when nothing refers to them:
        their packets go to the decoder with ``skip_frame = NONREF``, which drops a
        non-reference picture (about half of an x264 stream's) without decoding it; every
        picture another one refers to is decoded, so the wanted ones are the same pixels."""
        cc = self.stream.codec_context
        cc.skip_frame = "DEFAULT"
        if not self.timed:
            index = 0
            wanted = None  # no pts: packets cannot be matched to frame indices
        k = 0
        if len(self.key_index):
            pos = int(np.searchsorted(self.key_index, index, side="right")) - 1
            k = int(self.key_index[max(pos, 0)])
        try:
            if self.timed and self.n:
                self.container.seek(int(self.pts[k]), stream=self.stream, backward=True)
            else:
                self.container.seek(0)
            self.stream.codec_context.flush_buffers()
            counter = 0
            skipping = False
            for pkt in self.container.demux(self.stream):
                if wanted is not None:
                    j = None if pkt.pts is None else self.pts_to_index.get(int(pkt.pts))
                    skip = j is not None and not wanted(j)
                    if skip != skipping:
                        cc.skip_frame = "NONREF" if skip else "DEFAULT"
                        skipping = skip
                for frame in pkt.decode():
                    if self.timed:
                        i = self.pts_to_index.get(-1 if frame.pts is None else int(frame.pts))
                        if i is None:
                            continue  # a frame outside the index (should not happen)
                    else:
                        i, counter = counter, counter + 1
                    yield i, frame
        except av.FFmpegError as e:
            raise PyAVSourceError(f"decode failed: {e}") from e
        finally:
            cc.skip_frame = "DEFAULT"

    def get_batch(self, idx: Sequence[int]) -> NDArray[np.uint8]:
        """Frames at sorted, unique `idx`: seek only when decoding forward costs more."""
        h, w = self.out_hw or self.src_hw
        out = np.empty((len(idx), h, w, 3), np.uint8)
        gen: Iterator[tuple[int, av.VideoFrame]] | None = None
        pos = -1
        for j, target in enumerate(idx):
            if gen is None or target <= pos or self._key_before(target) > pos:
                gen = self._decode_from(target)
            for i, frame in gen:
                pos = i
                if i == target:
                    out[j] = self._rgb(frame)
                    break
                if i > target:
                    raise PyAVSourceError(f"frame {target} was skipped by the decoder")
            else:
                raise PyAVSourceError(
                    f"frame {target} does not decode (the stream ends at frame {pos})"
                )
        return out

    def _key_before(self, index: int) -> int:
        if not self.timed or not len(self.key_index):
            return 0
        pos = int(np.searchsorted(self.key_index, index, side="right")) - 1
        return int(self.key_index[max(pos, 0)])

    def iter(self, start: int, stop: int, step: int) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        for i, frame in self.iter_decoded(start, stop, step):
            yield i, self._rgb(frame)

    def iter_lazy(
        self, start: int, stop: int, step: int, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, AVFrame]]:
        """Like :meth:`iter`, but each frame converts to RGB only when asked; ``wanted``:
        see :meth:`_decode_from` (frames it rejects may be missing)."""
        for i, frame in self.iter_decoded(start, stop, step, wanted):
            yield i, AVFrame(self, frame)

    def iter_decoded(
        self, start: int, stop: int, step: int, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        last = -1
        if start >= stop:
            return
        for i, frame in self._decode_from(start, wanted):
            if i >= stop:
                return
            last = i
            if i >= start and (i - start) % step == 0:
                yield i, frame
        if last < stop - 1 and (wanted is None or wanted(stop - 1)):
            raise PyAVSourceError(f"decoding ended at frame {last}, expected {stop - 1}")

    def close(self) -> None:
        self.container.close()


# 8-bit pixel formats whose first plane is the picture's luma at full resolution.
_LUMA8 = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p",
     "yuvj440p", "yuv411p", "yuv410p", "nv12", "nv21", "nv16", "gray"}
)  # fmt: skip


class AVFrame:
    """A decoded PyAV frame (:class:`pipeline.decoded.Decoded`): RGB made on demand by
    the same conversion as :meth:`PyAVSource.get_batch`, thumbnails from the luma plane."""

    __slots__ = ("_src", "_frame", "_rgb")

    def __init__(self, src: PyAVSource, frame: av.VideoFrame) -> None:
        self._src, self._frame = src, frame
        self._rgb: NDArray[np.uint8] | None = None

    @property
    def size(self) -> tuple[int, int]:
        h, w = self._src.out_hw or self._src.src_hw
        return w, h

    def rgb(self) -> NDArray[np.uint8]:
        if self._rgb is None:
            self._rgb = self._src._rgb(self._frame)
        return self._rgb

    def luma_thumbnail(self, height: int) -> NDArray[np.uint8]:
        f = self._frame
        if f.format.name in _LUMA8:
            plane = f.planes[0]
            buf = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
            luma = buf[:, : plane.width]
        else:  # anything else (RGB, 10-bit, paletted): let the scaler make it grey
            luma = np.asarray(f.to_ndarray(format="gray"), np.uint8)
        return strided_thumbnail(upright(luma, self._src.rotation), height)
