"""The one module that opens media files: probing and frame reading.

Two backends, chosen per file:

- ``decord`` (first choice): builds a packet index when it opens a file, so ``len()``,
  timestamps and frame-exact random access (``get_batch``) come cheap.
- ``pyav`` (fallback for files decord rejects, e.g. a file whose tail is missing but whose
  header is intact): demuxes the file once to index packet timestamps, then decodes with
  keyframe seeks. Chosen over OpenCV because it reports timestamps and decode errors and
  handles grey pixel formats; ``benchmarks/bench_fetch.py`` measures both decoders.

An auto-chosen decord reader that fails while decoding switches to PyAV (when PyAV
indexes the same frame count) and carries on; an explicitly chosen backend never switches.
Later stages open a file with the backend its probe recorded (``videos.backend``).

decord sizes its index from the header's frame count and aborts the process on an absurd
one (an AVI claiming 2**31-1 frames: ``std::bad_alloc``). A header claiming more frames
than the file has bytes is therefore never given to decord (:func:`implausible_header`):
``auto`` reads it with PyAV, a forced ``decord`` raises VideoError. FetchVideos also probes
in a child process (``pipeline.isolation``) for crashes no check foresees.

Rotation: the display matrix (phone videos) is read from the first frame's side data;
frames come out upright from both backends and sizes are the upright ones. A file with no
video stream (audio only) raises VideoError("no video stream ...") before any backend runs.

Frame count: the number of video packets indexed by demuxing (what both backends expose),
and :func:`probe` decodes the first and the last frame so a count that includes undecodable
packets is caught; ``probe(..., count="decode")`` counts by decoding every frame. The
container header's own count is kept as ``header_frames`` and is never trusted. fps comes
from the frame timestamps, not the header.

Frames are (H, W, 3) uint8 RGB; grey videos come out as 3 equal channels. Sizes are
``(height, width)`` like ``frame.shape[:2]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pipeline import _pyav_source
from pipeline._decord_source import DECODE_THREADS, DecordSourceError
from pipeline._decord_source import DecordSource as _DecordSource
from pipeline.decoded import Decoded, RGBFrame

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
BACKENDS = ("auto", "decord", "pyav")
MIN_BYTES_PER_FRAME = 1  # every frame is stored in at least one byte: more is a lie


class VideoError(RuntimeError):
    """A media file that cannot be used: names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str], dict[str, object]]:  # from a child
        return (type(self), (self.path, self.reason), self.__dict__)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    n_frames: int  # frames indexed by demuxing (and verified), or counted by decoding
    header_frames: int | None  # what the container header claims (None: not stated)
    fps: float  # from frame timestamps; header rate for a one-frame video
    header_fps: float | None  # the container's stated average rate
    width: int
    height: int
    duration: float  # seconds = n_frames / fps
    codec: str  # decoder name, e.g. "h264"
    pix_fmt: str  # e.g. "yuv420p", "gray"
    backend: str  # "decord" or "pyav": the backend that read it
    rotation: int = 0  # display matrix, degrees counterclockwise; width/height are upright

    @property
    def header_mismatch(self) -> bool:
        """True when the container header states a frame count other than the real one."""
        return self.header_frames is not None and self.header_frames != self.n_frames


def output_size(src_hw: tuple[int, int], height: int | None, width: int | None) -> tuple[int, int]:
    """(height, width) of output frames: both given, or height only (keeps the aspect)."""
    h, w = src_hw
    if height is None and width is None:
        return h, w
    if height is None:
        assert width is not None
        return max(1, round(width * h / w)), width
    if height < 1 or (width is not None and width < 1):
        raise ValueError(f"height/width must be >= 1, got {height}x{width}")
    return height, width if width is not None else max(1, round(height * w / h))


def implausible_header(path: str, meta: _pyav_source.HeaderMeta | None) -> str | None:
    """Why the container header cannot be true (None: plausible). decord sizes its index
    from the header's frame count: an AVI claiming 2**31-1 frames aborts the process."""
    if meta is None or meta.frames is None:
        return None
    size = Path(path).stat().st_size
    if meta.frames * MIN_BYTES_PER_FRAME > size:
        return f"its header claims {meta.frames} frames in a {size}-byte file"
    return None


def _fps_from_times(times: NDArray[np.float64], header: float | None) -> float:
    """Average frame rate from presentation times (seconds, sorted). The header's exact
    rational rate is kept when the timestamps agree with it to 0.1% (decord's float32
    timestamps would otherwise turn 25 into 25.000001)."""
    if len(times) >= 2 and times[-1] > times[0]:
        fps = float((len(times) - 1) / (times[-1] - times[0]))
        return header if header and abs(fps - header) <= 1e-3 * header else fps
    return float(header) if header else 0.0


_SIGNATURES = (  # (offset, magic bytes, container) of formats ffmpeg reads
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MOV"),
    (4, b"mdat", "MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "AVI/RIFF"),
    (0, b"FLV", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMV"),
    (0, b"\x47", "MPEG-TS"),
)


def sniff_container(path: str | Path) -> str | None:
    """The container family named by the file's first bytes, or None if unrecognised."""
    with open(path, "rb") as f:
        head = f.read(16)
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _unreadable(path: str, details: str) -> VideoError:
    """The error for a file no backend opens: not a video, or a broken container."""
    kind = sniff_container(path)
    if kind is None:
        with open(path, "rb") as f:
            head = f.read(12)
        return VideoError(path, f"not a video (unrecognised content starting {head!r}): {details}")
    return VideoError(path, f"corrupt or truncated {kind} file: {details}")


class VideoReader:
    """Frames of one video at a requested size.

    height only: keep the aspect ratio (448 -> a 4:3 video gives 448x597); height and
    width: exactly that size; neither: native size. ``backend="auto"`` tries decord, then
    PyAV. ``len()`` is the frame count, ``.fps`` the timestamp-based rate, ``.size`` the
    output ``(height, width)``, ``.backend`` the backend in use.
    """

    def __init__(
        self,
        path: str | Path,
        height: int | None = None,
        width: int | None = None,
        backend: Backend = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = str(path)
        if not Path(self.path).is_file():
            raise VideoError(self.path, "no such file")
        if Path(self.path).stat().st_size == 0:
            raise VideoError(self.path, "empty file (0 bytes)")
        try:
            meta = _pyav_source.header(self.path)  # None when PyAV cannot parse the header
        except _pyav_source.NoVideoStream as e:  # the real reason, before any backend's
            raise VideoError(self.path, str(e)) from e
        self.header_frames = meta.frames if meta else None
        self.codec = meta.codec if meta else "unknown"
        self.pix_fmt = meta.pix_fmt if meta else "unknown"
        self.rotation = meta.rotation if meta else 0
        src_hw = None  # upright (height, width): what frames come out as
        if meta is not None:
            src_hw = _pyav_source.coded_hw((meta.height, meta.width), self.rotation)
        out_hw = None
        if src_hw is not None and (height is not None or width is not None):
            out_hw = output_size(src_hw, height, width)
        self._src: _DecordSource | _pyav_source.PyAVSource
        names: tuple[str, ...] = ("decord", "pyav") if backend == "auto" else (backend,)
        errors = []
        lie = implausible_header(self.path, meta)
        if lie is not None and "decord" in names:
            if backend == "decord":
                raise VideoError(self.path, f"refused to open with decord: {lie}")
            names, errors = ("pyav",), [f"decord not tried: {lie}"]
        for name in names:
            try:
                if name == "decord":
                    self._src = _DecordSource(self.path, out_hw)
                else:
                    self._src = _pyav_source.PyAVSource(
                        self.path, out_hw, DECODE_THREADS, self.rotation
                    )
                break
            except DecordSourceError as e:
                errors.append(str(e))
            except _pyav_source.PyAVSourceError as e:
                errors.append(f"pyav {e}")
        else:
            raise _unreadable(self.path, "; ".join(errors))
        if meta is None and (height is not None or width is not None):
            raise VideoError(self.path, "cannot resize: PyAV cannot read the header")
        self.backend = self._src.name
        self._auto, self._out_hw = backend == "auto", out_hw
        self.source_size = src_hw if src_hw else self._src.src_hw
        self.size = out_hw if out_hw else self.source_size
        self.header_fps = meta.fps if meta and meta.fps else self._src.header_fps
        self.fps = _fps_from_times(self._src.times, self.header_fps)

    def __len__(self) -> int:
        return int(self._src.n)

    def get_batch(self, indices: Sequence[int] | NDArray[np.integer]) -> NDArray[np.uint8]:
        """(N, H, W, 3) uint8 RGB frames at `indices` (any order, repeats allowed)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: frame indices must lie in [0, {len(self)})")
        if idx.size == 0:
            return np.zeros((0, *self.size, 3), np.uint8)
        uniq, inverse = np.unique(idx, return_inverse=True)
        wanted = [int(i) for i in uniq]
        try:
            frames = self._src.get_batch(wanted)
        except _pyav_source.PyAVSourceError as e:
            raise VideoError(self.path, str(e)) from e
        except (VideoError, DecordSourceError) as e:
            err = e if isinstance(e, VideoError) else VideoError(self.path, str(e))
            if not self._fall_back(err):
                raise err from e
            return self.get_batch(idx)
        return frames[inverse]

    def _fall_back(self, err: VideoError) -> bool:
        """After a decord decode error, switch an auto-chosen reader to PyAV when PyAV
        indexes the same number of frames (so indices keep their meaning)."""
        if not self._auto or self.backend != "decord":
            return False
        try:
            src = _pyav_source.PyAVSource(self.path, self._out_hw, DECODE_THREADS, self.rotation)
        except _pyav_source.PyAVSourceError:
            return False
        if src.n != self._src.n:
            src.close()
            return False
        log.warning("%s: decord failed (%s); continuing with PyAV", self.path, err.reason)
        self._src.close()
        self._src, self.backend = src, src.name
        return True

    def iter_frames(
        self, start: int = 0, stop: int | None = None, step: int = 1
    ) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        """Yield (index, (H, W, 3) uint8 RGB) for frames start, start+step, ... < stop."""
        stop = len(self) if stop is None else min(stop, len(self))
        if step < 1 or start < 0:
            raise ValueError(f"need start >= 0 and step >= 1, got {start}, {step}")
        return self._iter(start, stop, step)

    def iter_decoded(
        self,
        start: int = 0,
        stop: int | None = None,
        wanted: Callable[[int], bool] | None = None,
    ) -> Iterator[tuple[int, Decoded]]:
        """Yield (index, frame) for frames start .. stop - 1, each a
        :class:`pipeline.decoded.Decoded`: with PyAV, a frame converts to RGB only when its
        ``rgb()`` is called (the same pixels as :meth:`iter_frames`), and its luma thumbnail
        comes from the decoder's own luma plane; with decord, frames come as RGB arrays.

        ``wanted(index)``: with PyAV, frames it rejects that no other frame refers to are
        not decoded at all (and not yielded); every frame it accepts is."""
        stop = len(self) if stop is None else min(stop, len(self))
        if start < 0:
            raise ValueError(f"need start >= 0, got {start}")
        return self._iter(start, stop, 1, lazy=True, wanted=wanted)

    def _iter(
        self,
        start: int,
        stop: int,
        step: int,
        lazy: bool = False,
        wanted: Callable[[int], bool] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        nxt = start
        while True:
            try:
                src = self._src
                frames: Iterator[tuple[int, Any]]
                if not lazy:
                    frames = src.iter(nxt, stop, step)
                elif isinstance(src, _pyav_source.PyAVSource):
                    frames = src.iter_lazy(nxt, stop, step, wanted)
                else:
                    frames = ((i, RGBFrame(f)) for i, f in src.iter(nxt, stop, step))
                for i, frame in frames:
                    nxt = i + step
                    yield i, frame
                return
            except _pyav_source.PyAVSourceError as e:
                raise VideoError(self.path, str(e)) from e
            except (VideoError, DecordSourceError) as e:
                err = e if isinstance(e, VideoError) else VideoError(self.path, str(e))
                if not self._fall_back(err):
                    raise err from e

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def scan_reader(path: str | Path, height: int | None, backend: Backend = "auto") -> VideoReader:
    """A reader for :meth:`VideoReader.iter_decoded` whose frames convert to RGB on demand.

    That needs PyAV. A file recorded as decord's (or ``auto``) is read with PyAV only when
    PyAV indexes as many frames as decord (frame numbers mean the same to the stages that
    read it with decord) and gives decord's first frame bit for bit at this size (both scale
    with FFmpeg's swscale; on the dev clips every frame is identical, but on some files,
    e.g. our synthetic H.264, the two scaled pictures differ); else the recorded backend is
    used (its frames are then RGB arrays, converted as before)."""
    if backend == "pyav":
        return VideoReader(path, height, backend="pyav")
    reader = VideoReader(path, height, backend=backend)
    if reader.backend != "decord" or len(reader) == 0:
        return reader
    try:
        lazy = VideoReader(path, height, backend="pyav")
        same = len(lazy) == len(reader) and lazy.size == reader.size
        same = same and np.array_equal(lazy.get_batch([0]), reader.get_batch([0]))
    except VideoError:
        return reader
    if same:
        reader.close()
        return lazy
    lazy.close()
    return reader


class _CheckFailed(VideoError):
    """The file opened with `backend` but failed a probe check."""

    def __init__(self, path: str, reason: str, backend: str) -> None:
        super().__init__(path, reason)
        self.backend = backend

    def __reduce__(self) -> tuple[type, tuple[str, str, str], dict[str, object]]:  # type: ignore[override]
        return (type(self), (self.path, self.reason, self.backend), self.__dict__)


def _probe_once(path: str, backend: Backend, count: str) -> VideoInfo:
    with VideoReader(path, backend=backend) as vr:
        n = len(vr)
        if n == 0:
            claim = f" (the header claims {vr.header_frames})" if vr.header_frames else ""
            raise _CheckFailed(path, f"zero decodable video frames{claim}", vr.backend)
        claim = f"header claims {vr.header_frames} frames, " if vr.header_frames else ""
        try:
            if count == "decode":  # decoding every frame checks the first and last too
                n = sum(1 for _ in vr.iter_frames())
            else:
                vr.get_batch([0, n - 1])  # first and last frame must decode
        except VideoError as e:
            reason = f"truncated or corrupt: {claim}{n} packets indexed; {e.reason}"
            raise _CheckFailed(path, reason, vr.backend) from e
        h, w = vr.source_size
        fps = vr.fps
        return VideoInfo(
            path=path,
            n_frames=n,
            header_frames=vr.header_frames,
            fps=fps,
            header_fps=vr.header_fps,
            width=int(w),
            height=int(h),
            duration=n / fps if fps > 0 else 0.0,
            codec=vr.codec,
            pix_fmt=vr.pix_fmt,
            backend=vr.backend,
            rotation=vr.rotation,
        )


def probe(
    path: str | Path, backend: Backend = "auto", count: Literal["packets", "decode"] = "packets"
) -> VideoInfo:
    """Open, count and check a video: first and last frames must decode.

    count="packets": frames indexed by demuxing (cheap: no decoding besides the two end
    frames); "decode": decode every frame and count them. With backend="auto" a file
    that decord opens but cannot decode is retried with PyAV. Raises VideoError.
    """
    if count not in ("packets", "decode"):
        raise ValueError(f"count must be 'packets' or 'decode', got {count!r}")
    p = str(path)
    try:
        return _probe_once(p, backend, count)
    except _CheckFailed as first:
        if backend != "auto" or first.backend != "decord":
            raise
        try:
            return _probe_once(p, "pyav", count)
        except _CheckFailed as second:
            raise _CheckFailed(p, f"{second.reason} (decord: {first.reason})", "pyav") from second
