"""``seeds`` and ``seed_videos``: DetectMotion's output (DESIGN 4.2).

``seeds`` has one row per selected seed: a frame where 25%..75% of the SURF points move
after camera-motion compensation, and the 227x227 (at height 448) box holding most moving
points, mapped back to original pixels. ``seed_videos`` has one row per video of the shard
with what happened to it (``ok`` or ``failed`` with the traceback) and its frame counts.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

SEEDS = register(
    TableSchema(
        name="seeds",
        version=2,
        fields=pa.schema(
            [
                pa.field("seed_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("time", pa.float64(), nullable=False),
                pa.field("shot", pa.int32(), nullable=False),
                pa.field("x", pa.float32(), nullable=False),
                pa.field("y", pa.float32(), nullable=False),
                pa.field("w", pa.float32(), nullable=False),
                pa.field("h", pa.float32(), nullable=False),
                pa.field("video_width", pa.int32(), nullable=False),
                pa.field("video_height", pa.int32(), nullable=False),
                pa.field("n_points", pa.int32(), nullable=False),
                pa.field("n_moving", pa.int32(), nullable=False),
                pa.field("moving_fraction", pa.float32(), nullable=False),
                pa.field("n_in_box", pa.int32(), nullable=False),
                pa.field("n_matches", pa.int32(), nullable=False),
                pa.field("n_inliers", pa.int32(), nullable=False),
                pa.field("prefilter_score", pa.float32(), nullable=False),
                pa.field("target_x", pa.float32()),  # v2
                pa.field("target_y", pa.float32()),  # v2
                pa.field("target_w", pa.float32()),  # v2
                pa.field("target_h", pa.float32()),  # v2
            ]
        ),
        description="motion seeds: frame + box of a moving object against a compensated "
        "background (IDT/SURF motion filtering, Wang & Gupta 2015)",
        key=("seed_id",),
        column_docs={
            "seed_id": "<video_id>:f<frame, 7 digits>; stable across reruns",
            "frame": "0-based frame index in the decoded video",
            "time": "frame / fps, seconds",
            "shot": "0-based shot index (cuts from thumbnail correlation)",
            "x": "box left in original pixels (box is box_size at frame_height, scaled)",
            "n_points": "SURF points in the frame (at frame_height)",
            "n_moving": "points whose compensated displacement exceeds moving_threshold",
            "moving_fraction": "n_moving / n_points, within [min, max]_moving_fraction",
            "n_in_box": "moving points inside the box",
            "n_matches": "matches given to RANSAC (SURF + Shi-Tomasi, grid-balanced)",
            "n_inliers": "RANSAC inliers; 0 when the homography was not used (identity)",
            "prefilter_score": "share of thumbnail pixels moving beyond the global motion",
            "target_x": "left of the moving points' own box inside the seed box (original "
            "pixels; pipeline.track_checks.target_box): what TrackObjects tracks (v2; null "
            "in v1 rows: the seed box is tracked)",
        },
    )
)

SEED_VIDEOS = register(
    TableSchema(
        name="seed_videos",
        version=2,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("status", pa.string(), nullable=False),
                pa.field("n_frames", pa.int64(), nullable=False),
                pa.field("n_shots", pa.int32(), nullable=False),
                pa.field("n_analysed", pa.int32(), nullable=False),
                pa.field("n_prefiltered", pa.int32(), nullable=False),
                pa.field("n_kept_frames", pa.int32(), nullable=False),
                pa.field("n_seeds", pa.int32(), nullable=False),
                pa.field("wall_time_s", pa.float64(), nullable=False),
                pa.field("n_near_end", pa.int32()),  # v2
                pa.field("error", pa.string()),
                pa.field("traceback", pa.string()),
            ]
        ),
        description="DetectMotion per video: status and frame counts",
        key=("video_id",),
        column_docs={
            "status": "ok | failed",
            "n_analysed": "frame pairs (t, t+1) considered (every frame_step frames)",
            "n_prefiltered": "pairs the thumbnail pre-filter or a cut skipped",
            "n_near_end": "pairs not analysed: fewer than track_length frames follow them in "
            "their shot, so they cannot be seeds (v2; null in v1 files)",
            "n_kept_frames": "pairs with 25%..75% of SURF points moving",
        },
    )
)
