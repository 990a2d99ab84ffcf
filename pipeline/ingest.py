"""From a URL list to `videos` rows: ids, duplicates, download and probe of one video.

:func:`plan_entries` decides, over the WHOLE list (so duplicates across shards are seen),
what each line becomes:

- ``fetch``: the first line with a given normalised URL (for a local path: the file it
  names, :func:`~pipeline.video_ids.duplicate_key`); ``video_id`` is the given id or the
  default hash id of the URL as written (:mod:`pipeline.video_ids`);
- ``duplicate``: a later line with the same normalised URL (or the same local file); it
  is not fetched again and ``duplicate_of`` names the first line's id;
- ``invalid_id``: the given id is not file-name safe (the reason says why);
- ``id_conflict``: the given id is already used by an earlier line with another URL.

Rows that are not ``fetch`` keep their given id when it is valid and unused, else get
``<default id>-L<line>`` so that ``video_id`` stays unique within the table.

:func:`fetch_one` downloads and probes one planned video and returns the row fields;
:class:`~pipeline.download.DownloadError`, :class:`~pipeline.video_io.VideoError` and
:class:`Rejected` are per-video failures for the caller's shard loop to record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.download import DownloadConfig, download, route
from pipeline.isolation import ChildCrashed, ChildTimedOut, call_isolated
from pipeline.url_list import UrlEntry
from pipeline.video_ids import default_video_id, duplicate_key, id_problem
from pipeline.video_io import VideoError, VideoInfo, probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeConfig:
    probe_count: Literal["packets", "decode"] = "packets"  # demux count + end frames: cheap, exact
    probe_backend: Literal["auto", "decord", "pyav"] = "auto"  # decord, PyAV if it fails
    min_frames: int = 2  # one frame shows no motion: nothing downstream can use it
    max_pixels: int = 3840 * 2160  # 4K UHD: larger costs decode time and is rare web video
    probe_isolated: bool = True  # probe in a child: a decoder crash costs one row, not the shard
    probe_timeout_s: float = 600.0  # a probe (decoding 2 frames) past 10 min is a hung decoder


class Rejected(Exception):
    """A video that decodes but is unusable (too few frames, too large); permanent."""


@dataclass(frozen=True)
class Planned:
    line: int
    url: str
    given_id: str | None
    licence: str | None
    video_id: str
    action: Literal["fetch", "duplicate", "invalid_id", "id_conflict"]
    duplicate_of: str | None = None
    error: str | None = None


def plan_entries(entries: Sequence[UrlEntry], base_dir: str | None = None) -> list[Planned]:
    """One Planned per entry, in list order (see the module docstring).

    ``base_dir`` is the list file's directory: relative local paths are resolved against it
    to find duplicates (without it, local paths are compared as written).
    """
    first_by_url: dict[str, Planned] = {}
    used: dict[str, int] = {}  # video_id -> line that took it
    out: list[Planned] = []
    for e in entries:
        norm = duplicate_key(e.url, base_dir)
        fallback = f"{default_video_id(e.url)}-L{e.line}"
        problem = id_problem(e.video_id) if e.video_id is not None else None
        wanted = e.video_id if e.video_id is not None and problem is None else None

        def mk(
            vid: str, action: Any, dup: str | None = None, err: str | None = None, e: UrlEntry = e
        ) -> Planned:
            return Planned(e.line, e.url, e.video_id, e.licence, vid, action, dup, err)

        if problem is not None:
            p = mk(fallback, "invalid_id", err=problem)
        elif norm in first_by_url:
            vid = wanted if wanted is not None and wanted not in used else fallback
            p = mk(vid, "duplicate", dup=first_by_url[norm].video_id)
        else:
            vid = wanted if wanted is not None else default_video_id(e.url)
            if vid in used:
                reason = f"video_id {vid!r} is already used by line {used[vid]} (another URL)"
                p = mk(fallback, "id_conflict", err=reason)
            else:
                p = mk(vid, "fetch")
                first_by_url[norm] = p
        used.setdefault(p.video_id, e.line)
        out.append(p)
    return out


def check_info(info: Any, cfg: ProbeConfig) -> str | None:
    """Raise Rejected for unusable videos; return a warning for a lying header."""
    if info.n_frames < cfg.min_frames:
        raise Rejected(f"only {info.n_frames} frame(s); min_frames={cfg.min_frames}")
    if info.width * info.height > cfg.max_pixels:
        raise Rejected(f"resolution {info.width}x{info.height} exceeds max_pixels={cfg.max_pixels}")
    if info.header_mismatch:
        return (
            f"container header claims {info.header_frames} frames, {info.n_frames} found "
            "(n_frames is the verified count)"
        )
    return None


# imported once by the fork server, not by every probe's child (pipeline.isolation)
_PROBE_PRELOAD = ("pipeline.video_io", "pipeline._decord_source")  # cv2, then decord


def probe_untrusted(path: Path, cfg: ProbeConfig) -> tuple[VideoInfo, str | None]:
    """Probe a file that may crash a native decoder: (info, warning or None).

    With ``probe_isolated`` the probe runs in a child process (pipeline.isolation). When
    the child dies with ``probe_backend="auto"`` the file is probed again with PyAV alone,
    and the row gets a warning (the backend recorded is then ``pyav``, which later stages
    use); a crash with PyAV too, a crash with a forced backend, or a hang is a VideoError.
    """
    kw: dict[str, Any] = {"count": cfg.probe_count, "preload": _PROBE_PRELOAD}
    if not cfg.probe_isolated:
        return probe(path, backend=cfg.probe_backend, count=cfg.probe_count), None
    try:
        return call_isolated(
            probe, path, backend=cfg.probe_backend, timeout_s=cfg.probe_timeout_s,
            what=f"probe ({cfg.probe_backend})", **kw,
        ), None  # fmt: skip
    except ChildTimedOut as e:
        raise VideoError(path, f"the decoder hung: {e}") from e
    except ChildCrashed as e:
        if cfg.probe_backend != "auto":
            raise VideoError(path, f"the {cfg.probe_backend} decoder crashed: {e}") from e
        first = e
    try:
        info = call_isolated(
            probe, path, backend="pyav", timeout_s=cfg.probe_timeout_s, what="probe (pyav)", **kw
        )
    except (ChildCrashed, ChildTimedOut) as e:
        raise VideoError(path, f"every decoder failed natively: {first}; then {e}") from e
    return info, f"decord crashed while probing it ({first.how}); read with PyAV"


def fetch_one(
    item: Planned,
    video_dir: Path,
    dl_cfg: DownloadConfig,
    probe_cfg: ProbeConfig,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Download and probe one planned video; returns the `videos` row fields it fills.

    Raises DownloadError / VideoError / Rejected for per-video failures. A file this
    function downloaded and that then fails the probe is deleted (local sources never are).
    """
    t0 = time.perf_counter()
    got = download(item.url, video_dir / item.video_id, dl_cfg, sleep=sleep)
    try:
        info, crash_note = probe_untrusted(got.path, probe_cfg)
        warning = "; ".join(w for w in (crash_note, check_info(info, probe_cfg)) if w) or None
    except (VideoError, Rejected):
        if got.owned:
            got.path.unlink(missing_ok=True)
            got.path.with_name(got.path.name + ".url").unlink(missing_ok=True)
        raise
    return {
        "status": "ok",
        "method": route(item.url),
        "attempts": got.attempts,
        "reused": got.method == "cached",
        "local_path": str(got.path),
        "owned": got.owned,
        "bytes": got.n_bytes,
        "sha256": got.sha256,
        "n_frames": info.n_frames,
        "header_frames": info.header_frames,
        "fps": info.fps,
        "header_fps": info.header_fps,
        "width": info.width,
        "height": info.height,
        "duration": info.duration,
        "codec": info.codec,
        "pix_fmt": info.pix_fmt,
        "backend": info.backend,
        "rotation": info.rotation,
        "warning": warning,
        "wall_time_s": round(time.perf_counter() - t0, 4),
    }
