"""``masks`` and ``mask_shots``: uNLC motion masks (SegmentMotion, DESIGN 4.4).

``masks`` has one row per frame uNLC segmented (kept or pruned), with the frame and its
soft mask as image bytes, so the table alone is a training set (filter ``kept``).
``mask_shots`` has one row per shot of every video of the shard, including shots that
produced no mask (too short, rejected by motion saliency) and videos that failed to open,
with the reason; it is small and says where every frame went.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

MASKS = register(
    TableSchema(
        name="masks",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("shot", pa.int32(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("width", pa.int32(), nullable=False),
                pa.field("height", pa.int32(), nullable=False),
                pa.field("frame_jpeg", pa.binary(), nullable=False),
                pa.field("mask_png", pa.binary(), nullable=False),
                pa.field("fg_share", pa.float32(), nullable=False),
                pa.field("border_share", pa.float32(), nullable=False),
                pa.field("kept", pa.bool_(), nullable=False),
                pa.field("reason", pa.string(), nullable=False),
            ]
        ),
        description="uNLC soft motion masks per segmented frame, with pruning verdicts",
        key=("video_id", "frame"),
        column_docs={
            "video_id": "the video (videos.video_id)",
            "shot": "shot index within the video, from 0 (mask_shots.shot)",
            "frame": "frame index in the video (0-based, decoded order)",
            "width": "stored frame width in px (longer side <= 650)",
            "height": "stored frame height in px",
            "frame_jpeg": "the RGB frame as JPEG (quality 90) at width x height",
            "mask_png": "soft mask as 8-bit grey PNG: round(255 x score), score in [0, 1]; "
            "trimap: < 0.4 x 255 background, > 0.7 x 255 foreground, else ignored",
            "fg_share": "share of the frame whose uNLC score is > 0.7 (the foreground the frame "
            "was judged on; the stored mask keeps only scores > confident_positive as > 0.7)",
            "border_share": "foreground in the 5% border band: share of the band (rule "
            "'band') or of the foreground (rule 'foreground'), see the task's border_rule",
            "kept": "true when the frame passes pruning (foreground share, border rule, "
            "colour agreement: pipeline.pruning, pipeline.refinement)",
            "reason": "'' when kept, else fg_too_small / fg_too_large / touches_border / "
            "colour_disagrees",
        },
    )
)

MASK_SHOTS = register(
    TableSchema(
        name="mask_shots",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("shot", pa.int32(), nullable=False),
                pa.field("start", pa.int64(), nullable=False),
                pa.field("stop", pa.int64(), nullable=False),
                pa.field("n_segmented", pa.int32(), nullable=False),
                pa.field("n_kept", pa.int32(), nullable=False),
                pa.field("status", pa.string(), nullable=False),
                pa.field("reason", pa.string(), nullable=False),
                pa.field("detail", pa.string(), nullable=False),
                pa.field("stats_json", pa.string(), nullable=False),
            ]
        ),
        description="one row per shot (or failed video) of SegmentMotion: status and reason",
        key=("video_id", "shot"),
        column_docs={
            "shot": "shot index within the video; -1 for a video that failed as a whole",
            "start": "first frame of the shot",
            "stop": "one past the last frame of the shot",
            "n_segmented": "frames uNLC segmented (the shot subsampled to <= 110)",
            "n_kept": "of those, frames kept by pruning",
            "status": "segmented / rejected / skipped / failed",
            "reason": "'' when segmented; too_short, no_dominant_motion, static, "
            "camera_motion_only, or the error type of a failed video",
            "detail": "human-readable reason (or the traceback of a failure)",
            "stats_json": "JSON of the shot's step timings and counts",
        },
    )
)
