"""Tables of the transitive-invariance graph (DESIGN 4.5; Wang, He & Gupta 2017).

- ``embeddings`` (EmbedPatches, per shard): the feature of each kept track's seed patch A.
- ``parents`` (ClusterParents): the parent cluster of every embedded seed patch.
- ``parent_centroids`` (ClusterParents): the K-means centroids, so that new patches can be
  assigned later without reclustering (``pipeline.clustering.assign``).
- ``children`` (ChildClusters): child clusters of 4 mutual neighbours, one row per member.
- ``nodes``, ``edges``, ``pairs`` (BuildGraph): the graph and its positive pairs. ``pairs``
  is what a trainer streams; with ``nodes`` (which carries the JPEG bytes) it is
  self-contained. Negatives are not materialised: draw them at training time from another
  parent (``a_parent`` / ``b_parent``), or another video for intra pairs (``*_video``).

Node ids are ``<track_id>:A`` (the seed patch) and ``<track_id>:A'`` (the patch
``track_length`` frames later), stable across reruns because track ids are.
"""

from __future__ import annotations

import pyarrow as pa

from data_manifests.schema import TableSchema, register

_NODE = "node id: '<track_id>:A' (seed patch) or '<track_id>:A'' (tracked patch)"
_PARENT = "parent cluster id (row of parent_centroids); -1 when the parent was dropped (too small)"

EMBEDDINGS = register(
    TableSchema(
        name="embeddings",
        version=1,
        fields=pa.schema(
            [
                pa.field("node_id", pa.string(), nullable=False),
                pa.field("track_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("valid", pa.bool_(), nullable=False),
                pa.field("feature", pa.list_(pa.float16()), nullable=False),
            ]
        ),
        description="L2-normalised float16 feature of each kept track's seed patch A",
        key=("node_id",),
        column_docs={
            "node_id": _NODE + "; always an A node here",
            "track_id": "the track (tracks.track_id)",
            "video_id": "the video (videos.video_id)",
            "valid": "false when the feature is all zeros (e.g. HOG of a flat patch): such "
            "patches have no direction and are not clustered",
            "feature": "float16 features, unit L2 norm; the source (name, dim, trunk, "
            "checkpoint) is in the file metadata and the stage's _meta.json notes",
        },
    )
)

PARENTS = register(
    TableSchema(
        name="parents",
        version=1,
        fields=pa.schema(
            [
                pa.field("node_id", pa.string(), nullable=False),
                pa.field("track_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("parent_id", pa.int32(), nullable=False),
                pa.field("centroid", pa.int32(), nullable=False),
                pa.field("similarity", pa.float32(), nullable=False),
            ]
        ),
        description="parent cluster (spherical K-means) of every valid embedded seed patch",
        key=("node_id",),
        column_docs={
            "node_id": _NODE,
            "track_id": "the track (tracks.track_id)",
            "video_id": "the video (videos.video_id)",
            "parent_id": _PARENT,
            "centroid": "nearest centroid (row of parent_centroids), kept or not",
            "similarity": "cosine between the (PCA-projected) feature and that centroid",
        },
    )
)

PARENT_CENTROIDS = register(
    TableSchema(
        name="parent_centroids",
        version=1,
        fields=pa.schema(
            [
                pa.field("parent_id", pa.int32(), nullable=False),
                pa.field("size", pa.int64(), nullable=False),
                pa.field("kept", pa.bool_(), nullable=False),
                pa.field("centroid", pa.list_(pa.float32()), nullable=False),
            ]
        ),
        description="K-means centroids (unit vectors) for assigning new patches",
        key=("parent_id",),
        column_docs={
            "parent_id": "centroid index 0..K-1",
            "size": "seed patches assigned to it",
            "kept": "size >= the effective min_parent_size (in the file metadata / notes)",
            "centroid": "unit-norm centroid in the clustered space (after PCA when pca.npz "
            "sits beside this table: project with pipeline.features.apply_pca first)",
        },
    )
)

CHILDREN = register(
    TableSchema(
        name="children",
        version=1,
        fields=pa.schema(
            [
                pa.field("child_id", pa.int64(), nullable=False),
                pa.field("member", pa.int8(), nullable=False),
                pa.field("node_id", pa.string(), nullable=False),
                pa.field("track_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("parent_id", pa.int32(), nullable=False),
                pa.field("score", pa.float32(), nullable=False),
            ]
        ),
        description="child clusters: samples all in each other's top-10 inside a parent",
        key=("child_id", "member"),
        column_docs={
            "child_id": "child cluster id 0..C-1 (deterministic order: members sorted)",
            "member": "position of the member in the child (0..child_size-1)",
            "node_id": _NODE + "; an A node",
            "track_id": "the member's track",
            "video_id": "the member's video",
            "parent_id": "the parent the child lies in",
            "score": "mean pairwise cosine of the child's members",
        },
    )
)

NODES = register(
    TableSchema(
        name="nodes",
        version=1,
        fields=pa.schema(
            [
                pa.field("node_id", pa.string(), nullable=False),
                pa.field("track_id", pa.string(), nullable=False),
                pa.field("video_id", pa.string(), nullable=False),
                pa.field("view", pa.string(), nullable=False),
                pa.field("frame", pa.int64(), nullable=False),
                pa.field("x", pa.float32(), nullable=False),
                pa.field("y", pa.float32(), nullable=False),
                pa.field("w", pa.float32(), nullable=False),
                pa.field("h", pa.float32(), nullable=False),
                pa.field("parent_id", pa.int32(), nullable=False),
                pa.field("jpeg", pa.binary(), nullable=False),
            ]
        ),
        description="every A and A' patch of the kept tracks, with its parent and JPEG",
        key=("node_id",),
        column_docs={
            "node_id": _NODE,
            "track_id": "the track (tracks.track_id)",
            "video_id": "the video (videos.video_id)",
            "view": "'A' (seed patch) or 'A'' (tracked patch)",
            "frame": "frame index in the video",
            "x": "box left, original pixels",
            "y": "box top, original pixels",
            "w": "box width, original pixels",
            "h": "box height, original pixels",
            "parent_id": _PARENT + "; an A' node takes its track's parent",
            "jpeg": "the 96x96 RGB patch as JPEG bytes (from the patches table)",
        },
    )
)

EDGES = register(
    TableSchema(
        name="edges",
        version=1,
        fields=pa.schema(
            [
                pa.field("src", pa.string(), nullable=False),
                pa.field("dst", pa.string(), nullable=False),
                pa.field("edge_type", pa.string(), nullable=False),
                pa.field("n_children", pa.int32(), nullable=False),
            ]
        ),
        description="graph edges: intra-instance (A-A' of a track), inter-instance (A-B)",
        key=("src", "dst"),
        column_docs={
            "src": "node id (the lower of the two in track order)",
            "dst": "node id",
            "edge_type": "'intra' (same object, tracking) or 'inter' (same child cluster)",
            "n_children": "child clusters holding this inter edge (0 for intra)",
        },
    )
)

PAIRS = register(
    TableSchema(
        name="pairs",
        version=1,
        fields=pa.schema(
            [
                pa.field("pair_id", pa.int64(), nullable=False),
                pa.field("a", pa.string(), nullable=False),
                pa.field("b", pa.string(), nullable=False),
                pa.field("pair_type", pa.string(), nullable=False),
                pa.field("a_track", pa.string(), nullable=False),
                pa.field("b_track", pa.string(), nullable=False),
                pa.field("a_video", pa.string(), nullable=False),
                pa.field("b_video", pa.string(), nullable=False),
                pa.field("a_parent", pa.int32(), nullable=False),
                pa.field("b_parent", pa.int32(), nullable=False),
            ]
        ),
        description="positive pairs with their type; negatives come from other parents",
        key=("a", "b"),
        column_docs={
            "pair_id": "0..P-1 in (a, b) track order; deterministic",
            "a": "node id of one end (nodes.node_id)",
            "b": "node id of the other end",
            "pair_type": "'intra' <A,A'>; 'inter' <A,B>; 'transitive_1' <A,B'> or <A',B>; "
            "'transitive_2' <A',B'> (one inter edge, one hop: never across two)",
            "a_track": "track of a",
            "b_track": "track of b",
            "a_video": "video of a (draw intra-pair negatives from other videos)",
            "b_video": "video of b",
            "a_parent": "parent cluster of a (-1: dropped); draw negatives from other parents",
            "b_parent": "parent cluster of b",
        },
    )
)
