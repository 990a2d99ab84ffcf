"""FetchVideos(shard): download and probe one shard of the URL list -> ``videos`` table.

Every line of the shard becomes one row (``data_manifests/tables/videos.py``): ``ok``,
``failed`` (with the reason and whether it is retryable) or ``duplicate``. Files land in
``[videomine] video_dir`` (default ``<root>/videos``) as ``<video_id>.<ext>``; local inputs
are read in place. The shard fails only when more than ``max_failure_rate`` of its
(non-duplicate) videos fail, or on a bug.

Retrying failed videos: run again with ``attempt=N+1`` (``--FetchVideos-attempt 2`` or
``[FetchVideos] attempt=2``). Attempt N+1 requires attempt N, copies its ``ok``,
``duplicate`` and permanently failed rows, and fetches only the retryable failures (all
failures with ``retry_permanent``), plus ``ok`` rows whose downloaded file was released
(keep_videos=false, tasks/release.py). See docs/fetch.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import luigi
import pyarrow as pa

from pipeline.download import DownloadConfig, DownloadError
from pipeline.ingest import Planned, ProbeConfig, Rejected, fetch_one, plan_entries
from pipeline.url_list import shard_slice
from pipeline.video_ids import resolve_local, url_scheme
from pipeline.video_io import Backend, VideoError
from tasks.common import (
    ShardTask,
    StageOutput,
    config_from_params,
    input_list_digest,
    read_stage_table,
    shard_count,
    stage_params,
    video_entries,
    videomine,
)

log = logging.getLogger(__name__)

_PER_VIDEO_ERRORS = (DownloadError, VideoError, Rejected)


def video_dir() -> Path:
    """Local directory for downloaded videos: ``[videomine] video_dir`` or <root>/videos."""
    cfg = videomine()
    d = cfg.video_dir or f"{cfg.root.rstrip('/')}/videos"
    if url_scheme(d) not in ("", "file"):
        raise ValueError(
            f"video_dir {d!r} is not local: decoders need local files; set [videomine] "
            "video_dir to a local directory when root is an object store"
        )
    return Path(d.removeprefix("file://")).expanduser().resolve()


def _in_video_dir(path: str) -> bool | None:
    try:
        return Path(path).resolve().parent == video_dir()
    except ValueError:
        return None


def video_path(row: Mapping[str, Any]) -> str:
    """The local file of an ``ok`` row of a ``videos`` table, checked to exist.

    Stages open videos through this so that a missing file fails the video (a row) with
    the reason: a file FetchVideos downloaded (``owned``; unknown: it lies in
    ``video_dir``) was most likely released by ReleaseVideos under keep_videos=false, and
    the error says how to get it back; a local input is never deleted by videomine.
    """
    path = str(row["local_path"])
    if os.path.exists(path):
        return path
    vid = row.get("video_id") or "?"
    owned = row.get("owned")
    if owned is None:
        owned = _in_video_dir(path)
    if owned:
        raise FileNotFoundError(
            f"video {vid}: downloaded file {path} is gone: ReleaseVideos deletes downloaded "
            "files after their shard's stages when [videomine] keep_videos=false (see its "
            "released_videos table), or it was deleted by hand. To get it back, rerun "
            "FetchVideos with the next attempt (--FetchVideos-attempt N+1 re-downloads "
            "released files), and set keep_videos=true to keep files for reruns; see "
            "docs/fetch.md, 'Freeing disk: keep_videos'"
        )
    raise FileNotFoundError(
        f"video {vid}: local input {path} no longer exists (videomine never deletes local "
        "inputs): restore the file or edit the video list"
    )


def usable_videos(videos: pa.Table) -> list[dict[str, Any]]:
    """Rows of a ``videos`` table that fetched fine (status ok, with a local file): video_id,
    local_path, owned, status, width, height, backend where the table has them."""
    missing = {"video_id", "local_path", "status"} - set(videos.column_names)
    if missing:
        raise KeyError(f"videos table lacks columns {sorted(missing)}")
    cols = [
        c
        for c in ("video_id", "local_path", "owned", "status", "width", "height", "backend")
        if c in videos.column_names
    ]
    return [
        r
        for r in videos.select(cols).to_pylist()
        if str(r.get("status", "ok")) == "ok" and r.get("local_path")
    ]


def recorded_backend(row: Mapping[str, Any]) -> Backend:
    """The reader FetchVideos probed the file with (``videos.backend``), for later stages
    to open it with: "auto" would try decord first, which a file PyAV had to read may
    crash (docs/fetch.md). Rows without one (tables from before it was kept) get "auto"."""
    b = row.get("backend")
    return b if b in ("decord", "pyav") else "auto"


def _released(row: Mapping[str, Any]) -> bool:
    """An ``ok`` row whose downloaded file is gone (released under keep_videos=false)."""
    path = row.get("local_path")
    return bool(row.get("owned")) and bool(path) and not os.path.exists(str(path))


def _base_row(item: Planned, attempt: int) -> dict[str, Any]:
    return {
        "video_id": item.video_id,
        "line": item.line,
        "url": item.url,
        "given_id": item.given_id,
        "licence": item.licence,
        "duplicate_of": item.duplicate_of,
        "attempt_of_run": attempt,
        "attempts": 0,
        "reused": False,
        "wall_time_s": 0.0,
        "retryable": False,
    }


def _failure(item: Planned, attempt: int, e: BaseException, t0: float) -> dict[str, Any]:
    return {
        **_base_row(item, attempt),
        "status": "failed",
        "error": str(e),
        "retryable": bool(isinstance(e, DownloadError) and e.retryable),
        "attempts": e.attempts if isinstance(e, DownloadError) else 1,
        "traceback": "".join(traceback.format_exception(e)),
        "wall_time_s": round(time.perf_counter() - t0, 4),
    }


def _list_dir() -> str:
    """The list file's directory: relative local paths in the list are relative to it
    (where they are read from, and which entries name the same file)."""
    return str(Path(videomine().video_list).resolve().parent)


@stage_params(DownloadConfig, ProbeConfig)
class FetchVideos(ShardTask):
    """Download + probe one shard of the URL list -> ``videos`` table."""

    attempt = luigi.IntParameter(
        default=1, description="1: first fetch; N>1: refetch the failures of attempt N-1"
    )
    retry_permanent = luigi.BoolParameter(
        default=False, description="with attempt>1, refetch permanent failures too"
    )
    chunk_size = luigi.IntParameter(
        default=DownloadConfig.chunk_size,
        significant=False,
        description="download write size (bytes); does not change outputs",
    )

    def requires(self) -> Any:
        if self.attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {self.attempt}")
        if self.attempt == 1:
            return []
        # retry_permanent applies to this attempt only: the previous one is the plain one
        return self.clone(attempt=self.attempt - 1, retry_permanent=False)

    def input_digest(self) -> str:
        return input_list_digest()  # ids and duplicates are decided over the whole list

    def _plan(self) -> list[Planned]:
        entries = video_entries()  # the whole list is validated before any work starts
        return plan_entries(entries, base_dir=_list_dir())[
            shard_slice(len(entries), videomine().videos_per_shard, self.shard)
        ]

    def _previous(self) -> dict[int, dict[str, Any]]:
        if self.attempt == 1:
            return {}
        table = read_stage_table(self.requires(), "videos")
        return {int(r["line"]): r for r in table.to_pylist()}

    def _keep(self, prev: dict[str, Any] | None, item: Planned) -> bool:
        if prev is None or prev["video_id"] != item.video_id:
            return False
        if prev["status"] != "failed":
            return not _released(prev)  # a released download is fetched again
        return not (prev["retryable"] or self.retry_permanent)

    def fetch(
        self, item: Planned, dl_cfg: DownloadConfig, probe_cfg: ProbeConfig
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        row = _base_row(item, self.attempt)
        if item.action == "duplicate":
            return {**row, "status": "duplicate"}
        if item.action != "fetch":  # invalid or conflicting id: a clear permanent failure
            return {**row, "status": "failed", "error": f"line {item.line}: {item.error}"}
        source = dataclasses.replace(item, url=resolve_local(item.url, _list_dir()))
        try:
            got = fetch_one(source, video_dir(), dl_cfg, probe_cfg)
        except _PER_VIDEO_ERRORS as e:
            log.warning("%s (line %d): %s", item.video_id, item.line, e)
            return _failure(item, self.attempt, e, t0)
        return {**row, **got}

    def produce(self, out: StageOutput) -> None:
        dl_cfg = config_from_params(self, DownloadConfig)
        probe_cfg = config_from_params(self, ProbeConfig)
        planned = self._plan()
        previous = self._previous()
        rows = []
        for k, item in enumerate(planned):
            self.progress(
                k, len(planned), f"shard {self.shard}: {item.video_id} ({k}/{len(planned)})"
            )
            prev = previous.get(item.line)
            if self._keep(prev, item):
                assert prev is not None
                rows.append(
                    {**prev, "attempts": 0, "reused": prev["status"] == "ok", "wall_time_s": 0.0}
                )
            else:
                rows.append(self.fetch(item, dl_cfg, probe_cfg))
            out.count(rows[-1]["status"])
        out.write("videos", rows)
        failed = sum(r["status"] == "failed" for r in rows)
        considered = sum(r["status"] != "duplicate" for r in rows)
        out.count("retryable", sum(bool(r["retryable"]) for r in rows))
        out.count("frames", sum(r.get("n_frames") or 0 for r in rows if r["status"] == "ok"))
        out.count("bytes", sum(r.get("bytes") or 0 for r in rows if r["status"] == "ok"))
        self.progress(len(planned), len(planned), f"shard {self.shard}: {failed} failed")
        self.check_failure_rate(failed, considered)


class FetchAllVideos(luigi.WrapperTask):
    """Every shard of the list: ``luigi --module tasks FetchAllVideos``."""

    def requires(self) -> list[FetchVideos]:
        return [FetchVideos(shard=s) for s in range(shard_count())]
