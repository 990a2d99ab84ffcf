"""Table plumbing of the graph stages: mined patches in, feature matrices, montage picks.

`track_nodes` is the one place that knows how TrackObjects lays out its ``tracks`` and
``patches`` tables; every graph stage sees the result: one row per A / A' patch of a kept
track with the columns of the ``nodes`` table (minus ``parent_id``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import imaging
from tasks.common import StageTarget

NODE_COLUMNS = ("node_id", "track_id", "video_id", "view", "frame", "x", "y", "w", "h", "jpeg")
VIEWS = ("A", "A'")


def track_nodes(target: StageTarget) -> pa.Table:
    """A and A' patches of the kept tracks of one TrackObjects output, as node rows."""
    return nodes_from_tables(target.read_table("tracks"), target.read_table("patches"))


def nodes_from_tables(tracks: pa.Table, patches: pa.Table) -> pa.Table:
    """Node rows (NODE_COLUMNS) of the kept tracks, sorted by (track_id, view): A, A'.

    ``patches`` (data_manifests/tables/patches.py) already names its rows
    ``<track_id>:<view>``, the graph's node ids; patches of tracks not kept are ignored.
    """
    kept = tracks.filter(tracks["kept"])["track_id"]
    p = patches.filter(pc.is_in(patches["track_id"], value_set=kept))
    if pc.any(pc.invert(pc.is_in(p["view"], value_set=pa.array(VIEWS)))).as_py():
        raise ValueError(f"patches: view must be one of {VIEWS}")
    return p.select(list(NODE_COLUMNS)).sort_by([("track_id", "ascending"), ("view", "ascending")])


def decode_patches(jpegs: list[bytes], size: int) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB from JPEG bytes (resized when stored at another size)."""
    out = np.empty((len(jpegs), size, size, 3), np.uint8)
    for i, b in enumerate(jpegs):
        img = imaging.decode_jpeg(b)
        if img.shape[:2] != (size, size):
            img = imaging.crop_resize(img, (0, 0, img.shape[1], img.shape[0]), size)
        out[i] = img
    return out


def feature_matrix(emb: pa.Table) -> np.ndarray:
    """(N, d) float16 matrix of an ``embeddings`` table's list<float16> column, filled chunk
    by chunk (a combined chunk would overflow list offsets past 2^31 values)."""
    col = emb["feature"]
    n = len(col)
    if n == 0:
        return np.zeros((0, 0), np.float16)
    d = len(col[0])
    out = np.empty((n, d), np.float16)
    row = 0
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        flat = np.asarray(chunk.flatten().to_numpy(zero_copy_only=False), dtype=np.float16)
        if flat.size != len(chunk) * d:
            raise ValueError(f"embeddings: features of mixed dimensions (expected {d})")
        out[row : row + len(chunk)] = flat.reshape(-1, d)
        row += len(chunk)
    return out


def cluster_sheet_rows(
    children: pa.Table, size: int, max_rows: int
) -> tuple[list[list[str]], list[str]]:
    """Node ids of up to max_rows children to show: one per parent (its best-scoring child,
    parents with most children first), then further children by score when there are
    fewer parents than rows; labels 'p<parent> c<child>'."""
    if children.num_rows == 0:
        return [], []
    cid = children["child_id"].to_numpy()
    par = children["parent_id"].to_numpy()[::size]
    score = children["score"].to_numpy()[::size]
    nodes = np.asarray(children["node_id"].to_pylist(), dtype=object).reshape(-1, size)
    ids = cid[::size]
    counts = np.bincount(par - par.min())
    order = np.lexsort((ids, -score, -counts[par - par.min()]))
    # One child per parent first (the paper's Figure 4); with fewer parents than rows, the
    # next best children fill the sheet.
    first: dict[int, int] = {}
    for i in order.tolist():
        first.setdefault(int(par[i]), i)
    taken = set(first.values())
    picks = [i for i in order.tolist() if i in taken]
    picks += [i for i in order.tolist() if i not in taken]
    rows = [[str(n) for n in nodes[i]] for i in picks[:max_rows]]
    labels = [f"p{par[i]} c{ids[i]}" for i in picks[:max_rows]]
    return rows, labels


def pair_sheet_rows(g: Any, parent: np.ndarray, max_rows: int) -> tuple[list[list[int]], list[str]]:
    """Node indices (A, B, A', B') of up to max_rows inter edges: one per parent first
    (edges held by most children first), then further edges; labels 'p<parent>'."""
    inter = np.flatnonzero(g.edge_kind == 1)
    if inter.size == 0:
        return [], []
    order = inter[np.lexsort((g.edge_a[inter], -g.edge_children[inter]))].tolist()
    # One edge per parent first (the paper's Figure 5), then further edges when there are
    # fewer parents than rows.
    first: dict[int, int] = {}
    for e in order:
        first.setdefault(int(parent[int(g.edge_a[e]) // 2]), e)
    taken = set(first.values())
    picks = [e for e in order if e in taken] + [e for e in order if e not in taken]
    quads, labels = [], []
    for e in picks[:max_rows]:
        a, b = int(g.edge_a[e]), int(g.edge_b[e])
        quads.append([a, b, a + 1, b + 1])
        labels.append(f"p{int(parent[a // 2])}")
    return quads, labels
