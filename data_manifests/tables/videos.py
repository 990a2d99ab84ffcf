"""``videos``: one row per line of the input list (FetchVideos, DESIGN 4.1).

Every input line becomes exactly one row, whatever happened to it: ``ok`` (downloaded,
probed, usable), ``failed`` (the reason in ``error``; ``retryable`` says whether fetching
again may help) or ``duplicate`` (the same normalised URL appeared earlier in the list;
``duplicate_of`` names that row's ``video_id``). Only ``ok`` rows carry file and probe
columns. ``attempts``, ``reused`` and ``wall_time_s`` describe how this run got the file
and differ between reruns; every other column is deterministic.

Version 2 (additive) adds ``rotation``: the display matrix read at probe time. Frames are
delivered upright by every backend, and ``width`` / ``height`` are the upright size.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

VIDEOS = register(
    TableSchema(
        name="videos",
        version=2,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("line", pa.int64(), nullable=False),
                pa.field("url", pa.string(), nullable=False),
                pa.field("given_id", pa.string()),
                pa.field("licence", pa.string()),
                pa.field("status", pa.string(), nullable=False),
                pa.field("error", pa.string()),
                pa.field("retryable", pa.bool_(), nullable=False),
                pa.field("duplicate_of", pa.string()),
                pa.field("warning", pa.string()),
                pa.field("method", pa.string()),
                pa.field("local_path", pa.string()),
                pa.field("owned", pa.bool_()),
                pa.field("bytes", pa.int64()),
                pa.field("sha256", pa.string()),
                pa.field("n_frames", pa.int64()),
                pa.field("header_frames", pa.int64()),
                pa.field("fps", pa.float64()),
                pa.field("header_fps", pa.float64()),
                pa.field("width", pa.int32()),
                pa.field("height", pa.int32()),
                pa.field("duration", pa.float64()),
                pa.field("codec", pa.string()),
                pa.field("pix_fmt", pa.string()),
                pa.field("backend", pa.string()),
                pa.field("rotation", pa.int32()),
                pa.field("attempt_of_run", pa.int32(), nullable=False),
                pa.field("attempts", pa.int32(), nullable=False),
                pa.field("reused", pa.bool_(), nullable=False),
                pa.field("wall_time_s", pa.float64(), nullable=False),
                pa.field("traceback", pa.string()),
            ]
        ),
        description="every input video: status, reason, local file, checksum and probe",
        key=("video_id",),
        column_docs={
            "video_id": "stable, file-name-safe id: the given one, or v + 16 hex of sha256(url); "
            "rows that are not fetched under their own id get <default id>-L<line>",
            "line": "1-based line (or Parquet row) of the input list",
            "url": "the URL or path as listed",
            "given_id": "the list's video_id column as written (null when absent)",
            "licence": "the list's licence column",
            "status": "ok | failed | duplicate",
            "error": "why the video failed (names the input and the reason); null when ok",
            "retryable": "true when the failure was transient (network, timeout, 5xx, 429): "
            "a retry attempt (FetchVideos attempt=N+1) fetches it again",
            "duplicate_of": "video_id of the earlier line with the same normalised URL",
            "warning": "a problem that does not make the video unusable (a container header "
            "that lies about its frame count)",
            "method": "local | http | ytdlp | fsspec",
            "local_path": "absolute path of the decodable file",
            "owned": "true when FetchVideos wrote the file (it may be deleted when "
            "keep_videos is off); false for local inputs, which are never deleted",
            "bytes": "file size in bytes",
            "sha256": "hex sha256 of the file's bytes",
            "n_frames": "frames, verified by decoding (never the header's claim)",
            "header_frames": "frame count the container header states (null: none)",
            "fps": "frame rate from the frame timestamps",
            "header_fps": "average frame rate the container states",
            "width": "native width in pixels, upright (after the display rotation)",
            "height": "native height in pixels, upright (after the display rotation)",
            "duration": "seconds = n_frames / fps",
            "codec": "video codec (ffmpeg decoder name)",
            "pix_fmt": "pixel format (e.g. yuv420p, gray)",
            "backend": "reader that decoded it (decord | pyav); later stages open it with this",
            "rotation": "degrees the container's display matrix turns the coded picture "
            "counterclockwise (0, 90, 180, 270; a phone held upright writes 270); frames "
            "are delivered turned upright. Null in v1 files",
            "attempt_of_run": "the FetchVideos attempt whose fetch produced this row",
            "attempts": "download attempts this run made (0: reused or copied from an "
            "earlier attempt)",
            "reused": "the file was already complete from an earlier run",
            "wall_time_s": "seconds spent on this row in this run",
            "traceback": "formatted exception chain of a failure",
        },
    )
)
