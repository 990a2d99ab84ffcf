"""``released_videos``: what ReleaseVideos did with each video file of a shard.

One row per ``ok`` row of the shard's ``videos`` table (the rows that have a file), written
after every per-shard stage that reads the files (DetectMotion, TrackObjects,
SegmentMotion) is complete. With ``[videomine] keep_videos=false`` the files FetchVideos
downloaded (``owned``) are deleted with their ``.url`` note; local inputs never are.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

RELEASED_VIDEOS = register(
    TableSchema(
        name="released_videos",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("local_path", pa.string(), nullable=False),
                pa.field("bytes", pa.int64(), nullable=False),
                pa.field("released", pa.bool_(), nullable=False),
                pa.field("reason", pa.string(), nullable=False),
            ]
        ),
        description="per video file of a shard: deleted after mining (keep_videos=false) or kept, and why",
        key=("video_id",),
        column_docs={
            "video_id": "the video (key of the videos table)",
            "local_path": "the file FetchVideos recorded (videos.local_path)",
            "bytes": "bytes freed when released; else the file's size on disk (0 when it is "
            "already gone)",
            "released": "true when this task deleted the file (and its .url note)",
            "reason": "released: deleted (keep_videos=false, a FetchVideos download) | "
            "keep_videos: kept because [videomine] keep_videos=true | local_input: the "
            "list named a local file, never deleted | outside_video_dir: owned but not in "
            "the current video_dir, left alone | already_gone: no file to delete (released "
            "by an earlier run or removed by hand)",
        },
    )
)
