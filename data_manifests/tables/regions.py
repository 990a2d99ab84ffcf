"""``motion_edges`` and ``regions``: motion edges (DetectEdges) and region trees (ComputeRegions).

Hierarchical grouping (Zhang & Maire 2020, issue 14). Both tables have one row per mined
frame (the frames of SegmentMotion's segmented shots), carry their images as PNG bytes, and
key rows by (video_id, frame) like ``masks``, so they join with it and with each other.

``motion_edges`` keeps every considered pair, with the verdict and the figures behind it, so the
skip rules can be tuned from the table; ``edge_png`` / ``orientation_png`` are null for
skipped pairs. ``regions`` holds a tree per frame in array form: ``leaves_png`` the leaf
label map, ``parent`` and ``height`` the tree (leaves 0..L-1 first, the root last, -1 its
parent; the height where two leaves meet is their distance, an ultrametric).
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

_FRAME = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("shot", pa.int32(), nullable=False),
    pa.field("frame", pa.int64(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
]
_FRAME_DOCS = {
    "video_id": "the video (videos.video_id)",
    "shot": "shot index within the video (masks.shot)",
    "frame": "frame index in the video (masks.frame): the frame the map belongs to",
    "width": "map width in px (the stored frame's, longer side <= 650)",
    "height": "map height in px",
}

MOTION_EDGES = register(
    TableSchema(
        name="motion_edges",
        version=1,
        fields=pa.schema(
            [
                *_FRAME,
                pa.field("next_frame", pa.int64(), nullable=False),
                pa.field("kept", pa.bool_(), nullable=False),
                pa.field("reason", pa.string(), nullable=False),
                pa.field("residual_p99", pa.float32(), nullable=False),
                pa.field("flow_p99", pa.float32(), nullable=False),
                pa.field("moving_share", pa.float32(), nullable=False),
                pa.field("homography_inliers", pa.int32(), nullable=False),
                pa.field("edge_png", pa.binary(), nullable=True),
                pa.field("orientation_png", pa.binary(), nullable=True),
                pa.field("detail", pa.string(), nullable=False),
            ]
        ),
        description="motion edges of mined frame pairs (camera motion removed), with verdicts",
        key=("video_id", "frame"),
        column_docs={
            **_FRAME_DOCS,
            "next_frame": "the second frame of the flow pair (the next mined frame of the shot)",
            "kept": "true when the pair gave motion edges",
            "reason": "ok / too_small / too_large / too_uniform / gap (frames too far "
            "apart) / error",
            "residual_p99": "99th percentile of the flow minus the camera homography (px)",
            "flow_p99": "99th percentile of the raw flow magnitude (px)",
            "moving_share": "share of pixels whose residual flow exceeds moving_px",
            "homography_inliers": "inliers of the IDT homography (0: identity, not removed)",
            "edge_png": "edge strength as 8-bit grey PNG, round(255 x strength); null if skipped",
            "orientation_png": "edge tangent angle as 8-bit PNG in degrees 0..179; null if skipped",
            "detail": "'' or the error of a failed frame",
        },
    )
)

REGIONS = register(
    TableSchema(
        name="regions",
        version=1,
        fields=pa.schema(
            [
                *_FRAME,
                pa.field("edge_source", pa.string(), nullable=False),
                pa.field("n_leaves", pa.int32(), nullable=False),
                pa.field("leaves_png", pa.binary(), nullable=False),
                pa.field("parent", pa.list_(pa.int32()), nullable=False),
                pa.field("merge_height", pa.list_(pa.float32()), nullable=False),
            ]
        ),
        description="region trees (watershed + OWT + greedy merging) of mined frames",
        key=("video_id", "frame", "edge_source"),
        column_docs={
            **_FRAME_DOCS,
            "edge_source": "which edges built the tree: gradient, or a trained edge network",
            "n_leaves": "L, leaves at the finest level (<= max_leaves, 40)",
            "leaves_png": "leaf label per pixel 0..L-1, 8-bit PNG (16-bit when L > 256)",
            "parent": "(2L - 1) parent node per node; leaves 0..L-1, root last with -1",
            "merge_height": "(2L - 1) merge height per node (0 at the leaves), never "
            "decreasing toward the root",
        },
    )
)
