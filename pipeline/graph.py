"""The transitive-invariance graph (Wang, He & Gupta, ICCV 2017, section 3.3) on arrays.

Tracks are indexed 0..T-1; track t owns two nodes, its seed patch A (node 2t, view 0) and
the patch 30 frames later A' (node 2t+1, view 1). Edges:

- intra-instance: <A_t, A'_t> for every track (the caller passes kept tracks only);
- inter-instance: <A_s, A_t> for every two members s, t of a child cluster.

Positive pairs: every intra edge <A, A'> (type `intra`), and for every inter edge <A, B>
(tracks A->A', B->B') the pairs <A, B> (`inter`), <A, B'> and <A', B> (`transitive_1`: one
intra hop) and <A', B'> (`transitive_2`: an intra hop at both ends). One hop only: pairs are
never taken across two inter edges (connected components drift across categories).

Everything is vectorised (edge codes a*N + b, np.unique), and the output order is a pure
function of the input: rows are sorted by (a_node, b_node), so equal inputs give equal
manifests byte for byte.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

EDGE_KINDS = ("intra", "inter")
PAIR_KINDS = ("intra", "inter", "transitive_1", "transitive_2")
VIEW_A, VIEW_A2 = 0, 1


@dataclass(frozen=True)
class GraphConfig:
    transitive: bool = True  # paper: add <A,B'>, <A',B>, <A',B'> for every inter edge
    same_video_inter: bool = True  # paper keeps them; False drops inter edges inside a video
    # (near-duplicate looks of one scene teach little about category invariance)


@dataclass(frozen=True)
class Graph:
    """Edges and pairs over nodes 2t (A of track t) and 2t+1 (A' of track t).

    edge_a, edge_b: (E,) int64 nodes with edge_a < edge_b; edge_kind: (E,) int8 index into
    EDGE_KINDS; edge_children: (E,) int64 number of child clusters holding the inter edge
    (0 for intra). pair_a, pair_b: (P,) int64 nodes, pair_a < pair_b; pair_kind: (P,) int8
    index into PAIR_KINDS; pair_edge: (P,) int64 row of the edge the pair comes from.
    """

    n_tracks: int
    edge_a: I64
    edge_b: I64
    edge_kind: I8
    edge_children: I64
    pair_a: I64
    pair_b: I64
    pair_kind: I8
    pair_edge: I64
    stats: dict[str, Any] = field(default_factory=dict)


def node_track(node: I64) -> I64:
    """Track index of a node."""
    return node // 2


def node_view(node: I64) -> I64:
    """0 for the seed patch A, 1 for the tracked patch A'."""
    return node % 2


def inter_edges(children: I64, n_tracks: int) -> tuple[I64, I64, I64]:
    """Distinct track pairs (s < t) inside child clusters, with how many children hold each.

    children: (C, s) int64 track indices. Returns (s, t, count), sorted by (s, t).
    """
    if children.ndim != 2:
        raise ValueError(f"children must be (C, size), got shape {children.shape}")
    if children.size and (children.min() < 0 or children.max() >= n_tracks):
        raise ValueError(f"child members must be track indices in 0..{n_tracks - 1}")
    size = children.shape[1]
    iu, ju = np.triu_indices(size, k=1)
    a = children[:, iu].ravel()
    b = children[:, ju].ravel()
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    codes = lo[keep] * np.int64(n_tracks) + hi[keep]
    uniq, counts = np.unique(codes, return_counts=True)
    return uniq // n_tracks, uniq % n_tracks, counts.astype(np.int64)


def build_graph(
    children: npt.NDArray[np.integer],
    n_tracks: int,
    video: npt.NDArray[np.integer] | None = None,
    cfg: GraphConfig = GraphConfig(),
) -> Graph:
    """Edges and transitive pairs from child clusters over `n_tracks` kept tracks.

    children: (C, s) track indices (members of each child cluster); video: optional (T,)
    int video code per track, needed only for cfg.same_video_inter=False and the
    same-video counts.
    """
    ch = np.asarray(children, dtype=np.int64)
    if ch.ndim == 1 and ch.size == 0:
        ch = ch.reshape(0, 2)
    s, t, counts = inter_edges(ch, n_tracks)
    vid = None if video is None else np.asarray(video, dtype=np.int64)
    if vid is not None and vid.shape != (n_tracks,):
        raise ValueError(f"video must be ({n_tracks},), got {vid.shape}")
    if not cfg.same_video_inter:
        if vid is None:
            raise ValueError("same_video_inter=False needs the video code of every track")
        keep = vid[s] != vid[t]
        s, t, counts = s[keep], t[keep], counts[keep]

    tracks = np.arange(n_tracks, dtype=np.int64)
    # Edges: intra <2t, 2t+1>, inter <2s, 2t>; sorted by (a, b) over both kinds.
    ea = np.concatenate([2 * tracks, 2 * s])
    eb = np.concatenate([2 * tracks + 1, 2 * t])
    ek = np.concatenate([np.zeros(n_tracks, np.int8), np.ones(s.size, np.int8)])
    ec = np.concatenate([np.zeros(n_tracks, np.int64), counts])
    order = np.lexsort((eb, ea))
    ea, eb, ek, ec = ea[order], eb[order], ek[order], ec[order]
    edge_row = np.empty_like(order)
    edge_row[order] = np.arange(order.size)
    intra_rows = edge_row[:n_tracks]
    inter_rows = edge_row[n_tracks:]

    # Pairs: (A_s, B_t) for the 4 view combinations of each inter edge, plus intra.
    pa_parts = [2 * tracks, 2 * s]
    pb_parts = [2 * tracks + 1, 2 * t]
    pk_parts = [np.zeros(n_tracks, np.int8), np.full(s.size, 1, np.int8)]
    pe_parts = [intra_rows, inter_rows]
    if cfg.transitive:
        for va, vb, kind in ((0, 1, 2), (1, 0, 2), (1, 1, 3)):
            pa_parts.append(2 * s + va)
            pb_parts.append(2 * t + vb)
            pk_parts.append(np.full(s.size, kind, np.int8))
            pe_parts.append(inter_rows)
    pa, pb = np.concatenate(pa_parts), np.concatenate(pb_parts)
    pk, pe = np.concatenate(pk_parts), np.concatenate(pe_parts)
    order = np.lexsort((pb, pa))
    pa, pb, pk, pe = pa[order], pb[order], pk[order], pe[order]
    if pa.size > 1:
        dup = (pa[1:] == pa[:-1]) & (pb[1:] == pb[:-1])
        if dup.any():  # impossible by construction (distinct tracks, distinct edges)
            raise AssertionError("duplicate pairs in graph construction")

    stats: dict[str, Any] = {
        "tracks": n_tracks,
        "nodes": 2 * n_tracks,
        "children": int(ch.shape[0]),
        "edges_intra": n_tracks,
        "edges_inter": int(s.size),
        "inter_edges_in_several_children": int((counts > 1).sum()),
        "tracks_with_inter_edges": int(np.unique(np.concatenate([s, t])).size),
    }
    for i, name in enumerate(PAIR_KINDS):
        stats[f"pairs_{name}"] = int((pk == i).sum())
    stats["pairs"] = int(pk.size)
    if vid is not None:
        stats["edges_inter_same_video"] = int((vid[s] == vid[t]).sum())
    log.info("graph: %d tracks, %d inter edges, %d pairs", n_tracks, s.size, pk.size)
    return Graph(n_tracks, ea, eb, ek, ec, pa, pb, pk, pe, stats)
