"""``pseudo_labels``: knowledge transfer by clustering (ClusterPseudoLabels, DESIGN 4.7;
Noroozi, Vinjimoor, Favaro & Pirsiavash, CVPR 2018).

One row per image of the ``frames`` table it was computed on: the K-means cluster of the
teacher's PCA-whitened, L2-normalised features. With ``frames`` (joined on ``item``, or on
``video_id`` + ``frame``) it is a classification training set for a student network.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

PSEUDO_LABELS = register(
    TableSchema(
        name="pseudo_labels",
        version=1,
        fields=pa.schema(
            [
                pa.field("item", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("teacher", pa.string(), nullable=False),
                pa.field("layer", pa.string(), nullable=False),
                pa.field("k", pa.int32(), nullable=False),
                pa.field("label", pa.int32(), nullable=False),
                pa.field("distance", pa.float32(), nullable=False),
                pa.field("cluster_size", pa.int64(), nullable=False),
            ]
        ),
        description="pseudo-label (teacher feature cluster) of every sampled frame",
        key=("item",),
        column_docs={
            "item": "'<video_id>:<frame>', the frames row it labels",
            "video_id": "the video (frames.video_id)",
            "frame": "frame index in the video (frames.frame)",
            "teacher": "feature source: hog, or the teacher network's kind and checkpoint "
            "(the full spec is in the file metadata and the stage's _meta.json)",
            "layer": "the teacher's layer (pool5 for networks, hog for HOG)",
            "k": "number of clusters actually used (k scaled with N; labels are 0..k-1)",
            "label": "the cluster: the class the student learns",
            "distance": "1 - cosine to the cluster centroid in the whitened PCA space",
            "cluster_size": "members of this row's cluster",
        },
    )
)
