"""``tracks`` and ``track_videos``: TrackObjects' output (DESIGN 4.3).

One ``tracks`` row per seed, kept or not: KCF's boxes from the seed frame to
``track_length`` frames later, the evidence that decided (forward-backward IoU, share of the
box inside the frame, colour similarity of consecutive and of first/last patches, A-A'
correlation, KCF's own failure flags) and the reason. Kept tracks name their two
``patches`` rows (``patch_a``, ``patch_b``). ``track_videos``: one row per video.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

_BOX = [pa.field(f"{p}_{c}", pa.float32(), nullable=False) for p in "ab" for c in "xywh"]

TRACKS = register(
    TableSchema(
        name="tracks",
        version=1,
        fields=pa.schema(
            [
                pa.field("track_id", pa.string(), nullable=False),
                pa.field("seed_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("frame_a", pa.int64(), nullable=False),
                pa.field("frame_b", pa.int64(), nullable=False),
                *_BOX,
                pa.field("kept", pa.bool_(), nullable=False),
                pa.field("reason", pa.string(), nullable=False),
                pa.field("confidence", pa.float32(), nullable=False),
                pa.field("fb_iou", pa.float32(), nullable=False),
                pa.field("min_inside", pa.float32(), nullable=False),
                pa.field("min_step_similarity", pa.float32(), nullable=False),
                pa.field("end_similarity", pa.float32(), nullable=False),
                pa.field("copy_ncc", pa.float32(), nullable=False),
                pa.field("kcf_failures", pa.int32(), nullable=False),
                pa.field("frozen_tail", pa.int32(), nullable=False),
                pa.field("boxes", pa.list_(pa.float32()), nullable=False),
                pa.field("patch_a", pa.string()),
                pa.field("patch_b", pa.string()),
            ]
        ),
        description="KCF tracks of motion seeds: boxes, validity evidence, kept/reason",
        key=("track_id",),
        column_docs={
            "track_id": "<seed_id>:t<track_length>",
            "frame_b": "frame_a + track_length: the A' frame",
            "a_x": "A box (the seed box) in original pixels; b_*: the A' box (the seed box moved "
            "with the tracked box: the moving points' box with track_target 'moving')",
            "reason": "ok | kcf_lost | left_frame | box_collapsed | fb_fail | drift | "
            "low_confidence | appearance | near_copy | too_short (video or shot ends before "
            "frame_b)",
            "confidence": "min(min_step_similarity, end_similarity) x fb_iou (if tracked back) x "
            "(1 - Median-Flow drift, if measured), in [0, 1]; 0 if dropped before the checks",
            "fb_iou": "IoU of the backward track's seed-frame box with the seed box; NaN without "
            "a backward pass (backward 'none', or the forward pass already dropped the track; "
            "see backward_on_dropped)",
            "min_inside": "smallest share of a box inside the frame",
            "min_step_similarity": "smallest colour-histogram overlap of consecutive patches",
            "end_similarity": "colour-histogram overlap of the first and last patches",
            "copy_ncc": "max grey NCC (32 px) of A with A' and with A's box at frame_b: "
            "near 1 means no new view",
            "kcf_failures": "forward updates OpenCV's KCF flagged as failed",
            "frozen_tail": "trailing flagged updates (box frozen since)",
            "boxes": "(track_length + 1) x 4 boxes x, y, w, h, flattened, original pixels "
            "(too_short rows: the seed box only; their evidence columns are 0)",
            "patch_a": "node_id of the A patch (null unless kept); patch_b: of A'",
        },
    )
)

TRACK_VIDEOS = register(
    TableSchema(
        name="track_videos",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("status", pa.string(), nullable=False),
                pa.field("n_seeds", pa.int32(), nullable=False),
                pa.field("n_kept", pa.int32(), nullable=False),
                pa.field("wall_time_s", pa.float64(), nullable=False),
                pa.field("error", pa.string()),
                pa.field("traceback", pa.string()),
            ]
        ),
        description="TrackObjects per video: status and track counts",
        key=("video_id",),
    )
)
