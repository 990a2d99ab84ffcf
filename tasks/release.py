"""ReleaseVideos(shard): free the disk a shard's downloads take once it is mined; MineAll.

DESIGN 10: disk is finite, so mining streams videos and can delete each one after its
shard's stages are done. ``ReleaseVideos`` requires every per-shard stage that reads the
video files (FetchVideos, TrackObjects (after DetectMotion), SegmentMotion); once they are
complete and ``[videomine] keep_videos`` is false, it deletes the files FetchVideos
downloaded (``videos.owned``) and their ``.url`` notes. Local inputs are never deleted,
nor anything outside ``video_dir``. The ``released_videos`` table records, per file, what
happened and why (``data_manifests/tables/released.py``).

A later stage that needs a released file (e.g. DetectMotion rerun with new parameters)
fails that video with a row saying so and how to get it back (``tasks.fetch.video_path``):
``--FetchVideos-attempt N+1`` re-downloads released files. See docs/fetch.md.

``MineAll`` is the "mine everything" command:
``luigi --module tasks MineAll --local-scheduler``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import luigi

from tasks.common import ShardTask, StageOutput, read_stage_table, shard_count, videomine

log = logging.getLogger(__name__)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def release_video(row: Mapping[str, Any], keep: bool, video_dir: Path | None) -> dict[str, Any]:
    """Delete the file of one ``ok`` ``videos`` row when it may be; the ``released_videos``
    row saying what happened. Only an owned regular file directly in ``video_dir`` is
    deleted."""
    path = Path(str(row["local_path"]))
    out = {
        "video_id": str(row["video_id"]),
        "local_path": str(path),
        "bytes": _size(path),
        "released": False,
    }
    if keep:
        return {**out, "reason": "keep_videos"}
    if not row.get("owned"):
        return {**out, "reason": "local_input"}
    if not path.is_file():
        return {**out, "reason": "already_gone"}
    if video_dir is None or path.is_symlink() or path.resolve().parent != video_dir:
        return {**out, "reason": "outside_video_dir"}
    path.unlink()
    path.with_name(path.name + ".url").unlink(missing_ok=True)
    log.info("released %s (%d bytes)", path, out["bytes"])
    return {**out, "released": True, "reason": "released"}


class ReleaseVideos(ShardTask):
    """After a shard's stages: delete its downloaded videos unless keep_videos -> table."""

    may_be_empty = ("released_videos",)  # a shard whose lines all failed or are duplicates

    def requires(self) -> dict[str, luigi.Task]:
        from tasks.fetch import FetchVideos  # lazy, like the stages themselves
        from tasks.mining import TrackObjects
        from tasks.segment import SegmentMotion

        return {
            "videos": FetchVideos(shard=self.shard),
            "tracks": TrackObjects(shard=self.shard),  # requires DetectMotion(shard)
            "masks": SegmentMotion(shard=self.shard),
        }

    def input_digest(self) -> str:
        # keep_videos=true then false must run again (and delete): it is part of the identity
        return f"keep_videos={bool(videomine().keep_videos)}"

    def produce(self, out: StageOutput) -> None:
        from tasks.fetch import video_dir

        keep = bool(videomine().keep_videos)
        try:
            vdir: Path | None = video_dir()
        except ValueError:  # not local: nothing FetchVideos wrote can be in it
            vdir = None
        videos = read_stage_table(self.requires()["videos"], "videos").to_pylist()
        rows = [
            release_video(v, keep, vdir)
            for v in videos
            if v["status"] == "ok" and v.get("local_path")
        ]
        out.write("released_videos", rows)
        for r in rows:
            out.count(r["reason"])
        out.count("bytes_released", sum(r["bytes"] for r in rows if r["released"]))
        out.count("bytes_kept", sum(r["bytes"] for r in rows if not r["released"]))
        out.note("keep_videos", keep)


class MineAll(luigi.WrapperTask):
    """Mine everything: every shard through its stages (then released unless keep_videos),
    and the graph over all of them: ``luigi --module tasks MineAll --local-scheduler``."""

    def requires(self) -> list[luigi.Task]:
        from tasks.graph import BuildGraph  # lazy: `import tasks` must not need it

        return [*(ReleaseVideos(shard=s) for s in range(shard_count())), BuildGraph()]
