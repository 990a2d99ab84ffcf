"""``frames`` and ``frame_shots``: frames to learn from (SampleFrames, DESIGN 4.7).

``frames`` has one row per sampled frame (every n-th frame of the moving shots of a shard's
ok videos, capped per video) with its JPEG bytes at a set size, so the table alone is a
training set for the single-frame methods (counting, Jigsaw++, knowledge transfer).
``frame_shots`` has one row per shot of every video (sampled, static or too short) and one
per video that failed to decode, with the reason; it says where every frame went.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

FRAMES = register(
    TableSchema(
        name="frames",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("shot", pa.int32(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("width", pa.int32(), nullable=False),
                pa.field("height", pa.int32(), nullable=False),
                pa.field("jpeg", pa.binary(), nullable=False),
                pa.field("sha256", pa.string(), nullable=False),
            ]
        ),
        description="sampled frames of moving shots (JPEG at a set shorter side)",
        key=("video_id", "frame"),
        column_docs={
            "video_id": "the video (videos.video_id)",
            "shot": "shot index within the video, from 0 (frame_shots.shot)",
            "frame": "frame index in the video (0-based, decoded order)",
            "width": "stored width in px",
            "height": "stored height in px; min(width, height) is the task's frame_size",
            "jpeg": "the RGB frame as JPEG at width x height (the task's jpeg_quality)",
            "sha256": "hex sha256 of the jpeg bytes",
        },
    )
)

FRAME_SHOTS = register(
    TableSchema(
        name="frame_shots",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("shot", pa.int32(), nullable=False),
                pa.field("start", pa.int64(), nullable=False),
                pa.field("stop", pa.int64(), nullable=False),
                pa.field("status", pa.string(), nullable=False),
                pa.field("motion_score", pa.float32(), nullable=True),
                pa.field("n_sampled", pa.int32(), nullable=False),
                pa.field("detail", pa.string(), nullable=False),
            ]
        ),
        description="one row per shot (or failed video) of SampleFrames: status and reason",
        key=("video_id", "shot"),
        column_docs={
            "shot": "shot index within the video; -1 for a video that failed as a whole",
            "start": "first frame of the shot",
            "stop": "one past the last frame of the shot",
            "status": "sampled / static / too_short / failed",
            "motion_score": "median share of thumbnail pixels moving beyond the camera "
            "motion (DetectMotion's pre-filter score); null when no pair was scored",
            "n_sampled": "rows of this shot in frames",
            "detail": "'' or the error type and traceback of a failed video",
        },
    )
)
