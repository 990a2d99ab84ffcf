"""``patches``: the A and A' crops of kept tracks (DESIGN 4.3, 5).

Two rows per kept track, ``view`` "A" (seed frame) and "A'" (``track_length`` frames
later), each a ``patch_size`` x ``patch_size`` JPEG of the box, with the box in original
pixels. ``node_id`` = ``<track_id>:<view>`` is the graph's node id.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

PATCHES = register(
    TableSchema(
        name="patches",
        version=1,
        fields=pa.schema(
            [
                pa.field("node_id", pa.string(), nullable=False),
                pa.field("track_id", pa.string(), nullable=False),
                pa.field("seed_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("view", pa.string(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("x", pa.float32(), nullable=False),
                pa.field("y", pa.float32(), nullable=False),
                pa.field("w", pa.float32(), nullable=False),
                pa.field("h", pa.float32(), nullable=False),
                pa.field("size", pa.int32(), nullable=False),
                pa.field("jpeg", pa.binary(), nullable=False),
            ]
        ),
        description="A / A' patches of kept tracks as JPEG bytes",
        key=("node_id",),
        column_docs={
            "node_id": "<track_id>:A or <track_id>:A'",
            "view": "A (seed frame) | A' (track_length frames later)",
            "x": "box left in original pixels (may extend past the frame edge; the crop "
            "replicates edge pixels there)",
            "size": "patch side in pixels (patch_size)",
            "jpeg": "RGB JPEG (jpeg_quality) of the box resized to size x size",
        },
    )
)
