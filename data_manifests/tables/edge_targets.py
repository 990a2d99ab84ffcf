"""``edge_targets``: the frames an edge-network round trains on, with their targets
(TrainEdges, DESIGN 4.8).

Round 0 holds the motion edges of DetectEdges; round k > 0 the edges the round k-1 network
predicted on every frame (thinned, thresholded), as in Li, Paluri, Rehg & Dollar 2016.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

EDGE_TARGETS = register(
    TableSchema(
        name="edge_targets",
        version=1,
        fields=pa.schema(
            [
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("frame_jpeg", pa.binary(), nullable=False),
                pa.field("target_png", pa.binary(), nullable=False),
                pa.field("round", pa.int32(), nullable=False),
                pa.field("edge_share", pa.float32(), nullable=False),
            ]
        ),
        description="edge-network training targets per frame and round (1 edge, 0 not, 255 ignored)",
        key=("video_id", "frame"),
        column_docs={
            "video_id": "the video (videos.video_id)",
            "frame": "frame index in the video (0-based, decoded order)",
            "frame_jpeg": "the RGB frame as JPEG, as stored by the frame source",
            "target_png": "8-bit grey PNG at the frame's size: 1 edge, 0 non-edge, 255 ignored "
            "(the band next to an edge)",
            "round": "0: motion edges; k > 0: predictions of the round k-1 network",
            "edge_share": "share of decided pixels that are edges",
        },
    )
)
