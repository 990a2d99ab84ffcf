"""Region trees from an edge map: watershed, oriented boundary weights, greedy merging.

:func:`build_tree` follows the OWT-UCM recipe of Arbelaez et al. (used by Zhang & Maire
2020) on one :class:`pipeline.edges.EdgeMap`:

1. The edge map is brought to a working size (longer side <= ``work_side``) by max-pooling
   blocks, so thin edges keep their strength; the leaves come back at the input size.
2. Watershed (scikit-image ``segmentation.watershed``, markers = regional minima of the
   Gaussian-smoothed strength) over-segments the image into basins.
3. Oriented watershed transform (OWT): each boundary crossing between two 4-neighbours of
   different basins weighs ``strength x |cos(edge tangent - boundary tangent)|``. The
   boundary tangent is the structure-tensor orientation of the (blurred) basin-boundary mask;
   Arbelaez et al. fit line segments to each arc instead, which this local estimate follows
   on curved arcs too. A single-orientation edge map gives E(x, theta) ~ E(x) |cos|.
4. Greedy merging: the adjacent pair with the weakest mean boundary weight merges, the pair
   sums carrying over (a heap with lazy invalidation). Regions under ``min_leaf_area`` of
   the image go first, so specks enclosed by strong edges do not become leaves. The merge
   height is the mean boundary, raised to the children's heights so that heights never
   decrease toward the root: the leaf distance (the height where two leaves meet) is then
   an ultrametric. The last ``max_leaves`` - 1 merges make the tree; the regions alive at
   that point are its leaves (at most 40, Zhang & Maire).

The tree is an array form: ``parent`` (2L - 1,) with leaves 0..L-1, internal nodes L..2L-2
in merge order, -1 at the root; ``height`` (2L - 1,), 0 at the leaves.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage.morphology import local_minima
from skimage.segmentation import watershed

from pipeline.edges import EdgeMap, _tensor_edges
from pipeline.superpixels import compact_labels

I32 = NDArray[np.int32]
F32 = NDArray[np.float32]


@dataclass(frozen=True)
class RegionConfig:
    max_leaves: int = 40  # Zhang & Maire 2020: at most 40 regions at the finest level
    work_side: int = 480  # tree built with the longer side <= this (edges max-pooled)
    smooth_sigma: float = 2.0  # px at work size: closes NMS gaps; ~1k basins at 480 px
    owt: bool = True  # oriented watershed transform (False: plain mean strength)
    orient_sigma: float = 1.5  # px: blur of the boundary mask for its orientation
    min_leaf_area: float = 0.002  # share of the image: smaller regions merge first
    # Boundary weights read the strongest edge within this radius (px at work size): the
    # watershed of the smoothed map puts basin borders up to ~smooth_sigma px off the thin
    # (NMS) edge line, where the thin map reads 0 and a real edge would look weak.
    boundary_radius: int = 2

    def __post_init__(self) -> None:
        if self.max_leaves < 1:
            raise ValueError(f"max_leaves must be >= 1, got {self.max_leaves}")
        if self.work_side < 16:
            raise ValueError(f"work_side must be >= 16, got {self.work_side}")
        if not 0 <= self.min_leaf_area < 1:
            raise ValueError(f"min_leaf_area must be in [0, 1), got {self.min_leaf_area}")


@dataclass(frozen=True)
class RegionTree:
    """leaves (H, W) int32 0..L-1; parent (2L-1,) int32 (-1 at the root); height (2L-1,)."""

    leaves: I32
    parent: I32
    height: F32

    @property
    def n_leaves(self) -> int:
        return (len(self.parent) + 1) // 2

    def children(self) -> NDArray[np.int32]:
        """(L-1, 2) children of the internal nodes L..2L-2."""
        n = self.n_leaves
        kids = np.full((max(n - 1, 0), 2), -1, np.int32)
        fill = np.zeros(max(n - 1, 0), np.int64)
        for node, p in enumerate(self.parent):
            if p >= 0:
                kids[p - n, fill[p - n]] = node
                fill[p - n] += 1
        return kids


def _pool(edge: EdgeMap, f: int) -> tuple[F32, F32]:
    """Max-pool strength over f x f blocks; orientation of each block's strongest pixel."""
    if f == 1:
        return edge.strength, edge.orientation
    h, w = edge.strength.shape
    hh, ww = h // f, w // f

    def blocks(a: F32) -> F32:
        b = a[: hh * f, : ww * f].reshape(hh, f, ww, f).transpose(0, 2, 1, 3)
        return np.asarray(b.reshape(hh, ww, f * f), np.float32)

    s, o = blocks(edge.strength), blocks(edge.orientation)
    arg = s.argmax(axis=2)[..., None]
    return (
        np.take_along_axis(s, arg, 2)[..., 0].astype(np.float32),
        np.take_along_axis(o, arg, 2)[..., 0].astype(np.float32),
    )


def _dilate_edges(strength: F32, tangent: F32, k: int) -> tuple[F32, F32]:
    """Max filter of the strength over k x k, carrying the orientation of the maximum."""
    d = cv2.dilate(strength, np.ones((k, k), np.uint8))
    r = k // 2
    pad_s = np.pad(strength, r, mode="constant", constant_values=-1.0)
    pad_t = np.pad(tangent, r, mode="edge")
    h, w = strength.shape
    out_t = tangent.copy()
    found = np.zeros((h, w), bool)
    for dy in range(k):  # orientation of (one of) the pixels holding the maximum
        for dx in range(k):
            hit = ~found & (pad_s[dy : dy + h, dx : dx + w] == d)
            out_t[hit] = pad_t[dy : dy + h, dx : dx + w][hit]
            found |= hit
    return np.asarray(d, np.float32), out_t


def _crossings(labels: I32) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Flat indices (p, q) of horizontally and vertically adjacent pixels of different labels."""
    h, w = labels.shape
    idx = np.arange(h * w).reshape(h, w)
    ph = idx[:, :-1][labels[:, :-1] != labels[:, 1:]]
    pv = idx[:-1, :][labels[:-1, :] != labels[1:, :]]
    return np.concatenate([ph, pv]), np.concatenate([ph + 1, pv + w])


def _boundary_weights(labels: I32, strength: F32, tangent: F32, cfg: RegionConfig) -> tuple[
    NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]
]:  # fmt: skip
    """Per crossing: basin a, basin b and its (oriented) boundary weight."""
    p, q = _crossings(labels)
    flat_s = strength.ravel()
    use_q = flat_s[q] > flat_s[p]
    pix = np.where(use_q, q, p)
    wgt = flat_s[pix].astype(np.float64)
    if cfg.owt:
        bmask = np.zeros(labels.size, np.float32)
        bmask[p] = 1.0
        bmask[q] = 1.0
        _, normal = _tensor_edges(bmask.reshape(labels.shape), cfg.orient_sigma)
        b_tangent = (normal.ravel()[pix] + np.pi / 2) % np.pi
        wgt *= np.abs(np.cos(tangent.ravel()[pix] - b_tangent))
    flat_l = labels.ravel()
    return flat_l[p].astype(np.intp), flat_l[q].astype(np.intp), wgt


def _merge(
    n: int, a: NDArray[np.intp], b: NDArray[np.intp], wgt: NDArray[np.float64],
    area: NDArray[np.int64], min_area: float,
) -> list[tuple[int, int, float]]:  # fmt: skip
    """Greedy weakest-mean-boundary merging of n regions down to one per connected part.

    Returns merges (x, y, mean boundary) in order; merge k creates region n + k.
    """
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    code = lo.astype(np.int64) * n + hi
    uniq, inv = np.unique(code, return_inverse=True)
    sums = np.bincount(inv, weights=wgt)
    cnts = np.bincount(inv).astype(np.float64)
    nbrs: list[dict[int, list[float]]] = [{} for _ in range(n)]
    for c, s, k in zip(uniq.tolist(), sums.tolist(), cnts.tolist(), strict=True):
        x, y = divmod(c, n)
        nbrs[x][y] = nbrs[y][x] = [s, k]
    areas = area.astype(np.int64).tolist()
    alive = [True] * n

    def key(x: int, y: int, s: float, k: float) -> float:
        # tiny regions first: boundary means lie in [0, 1], so -2 puts them ahead
        return s / k - (2.0 if areas[x] < min_area or areas[y] < min_area else 0.0)

    heap = [(key(x, y, *nbrs[x][y]), x, y) for x in range(n) for y in nbrs[x] if x < y]
    heapq.heapify(heap)
    merges: list[tuple[int, int, float]] = []
    while heap:
        k0, x, y = heapq.heappop(heap)
        if not (alive[x] and alive[y]) or y not in nbrs[x]:
            continue
        s_xy, k_xy = nbrs[x][y]
        cur = key(x, y, s_xy, k_xy)
        if cur != k0:  # an area crossed min_area since this entry was pushed
            heapq.heappush(heap, (cur, x, y))
            continue
        z = len(nbrs)
        alive[x] = alive[y] = False
        merged: dict[int, list[float]] = {}
        for src in (x, y):
            for m, (s, k) in nbrs[src].items():
                if m in (x, y):
                    continue
                e = merged.setdefault(m, [0.0, 0.0])
                e[0] += s
                e[1] += k
                del nbrs[m][src]
        nbrs[x], nbrs[y] = {}, {}
        nbrs.append(merged)
        alive.append(True)
        areas.append(areas[x] + areas[y])
        for m, sk in merged.items():
            nbrs[m][z] = sk
            heapq.heappush(heap, (key(m, z, *sk), m, z))
        merges.append((x, y, s_xy / k_xy))
    return merges


def build_tree(edge: EdgeMap, cfg: RegionConfig) -> RegionTree:
    """Region tree of an edge map (strength/orientation (H, W)); leaves at (H, W)."""
    s0 = np.asarray(edge.strength)
    if s0.ndim != 2 or s0.shape != np.asarray(edge.orientation).shape:
        raise ValueError(f"edge strength {s0.shape} and orientation must be equal (H, W) maps")
    if not np.isfinite(s0).all():
        raise ValueError("edge strength has non-finite values")
    h0, w0 = s0.shape
    f = max(1, int(np.ceil(max(h0, w0) / cfg.work_side)))
    strength, tangent = _pool(EdgeMap(s0.astype(np.float32), edge.orientation), f)
    smooth = cv2.GaussianBlur(strength, (0, 0), cfg.smooth_sigma) if cfg.smooth_sigma else strength
    q = np.round(np.clip(smooth, 0, 1) * 255).astype(np.uint8)
    markers, n_min = ndi.label(local_minima(q, connectivity=1))  # type: ignore[no-untyped-call]
    if n_min == 0:  # a constant map has no regional minimum: one basin
        markers = np.ones_like(markers)
    ws = watershed(q, markers, connectivity=1)  # type: ignore[no-untyped-call]
    basins = compact_labels(np.asarray(ws, np.int32) - 1)
    n = int(basins.max()) + 1
    if cfg.boundary_radius > 0:
        k = 2 * cfg.boundary_radius + 1
        strength, tangent = _dilate_edges(strength, tangent, k)
    a, b, wgt = _boundary_weights(basins, strength, tangent, cfg)
    area = np.bincount(basins.ravel(), minlength=n)
    merges = _merge(n, a, b, wgt, area, cfg.min_leaf_area * basins.size)
    # Regions alive when max_leaves remain are the leaves (a disconnected RAG cannot occur:
    # the watershed tiles the image, but merges stop early if it ever did).
    n_tree = max(min(cfg.max_leaves, n), n - len(merges))
    first = n - n_tree  # merges before this one build the leaves
    up = np.arange(n + first)
    for k in range(first):
        x, y, _ = merges[k]
        up[x] = up[y] = n + k
    for i in range(n + first - 1, -1, -1):  # a merged region's id exceeds its parts'
        up[i] = up[up[i]]
    owner_basin = up[:n]
    alive = sorted(set(owner_basin.tolist()))
    leaf_of = {r: i for i, r in enumerate(alive)}
    leaves = np.asarray([leaf_of[r] for r in owner_basin.tolist()], np.int32)[basins]
    parent = np.full(2 * n_tree - 1, -1, np.int32)
    height = np.zeros(2 * n_tree - 1, np.float32)
    node_of = dict(leaf_of)
    for k in range(first, len(merges)):
        x, y, mean = merges[k]
        node = n_tree + (k - first)
        node_of[n + k] = node
        parent[node_of[x]] = parent[node_of[y]] = node
        height[node] = max(mean, float(height[node_of[x]]), float(height[node_of[y]]))
    if f > 1:
        leaves = _upsample_labels(leaves, f, (h0, w0))
    return RegionTree(leaves, parent, height)


def _upsample_labels(lab: I32, f: int, shape: tuple[int, int]) -> I32:
    up = np.repeat(np.repeat(lab, f, axis=0), f, axis=1)
    h, w = shape
    pad_h, pad_w = max(0, h - up.shape[0]), max(0, w - up.shape[1])
    if pad_h or pad_w:
        up = np.pad(up, ((0, pad_h), (0, pad_w)), mode="edge")
    return np.ascontiguousarray(up[:h, :w]).astype(np.int32)


def leaf_distance(tree: RegionTree) -> F32:
    """(L, L) float32: the height at which two leaves first share a region (0 on the
    diagonal). An ultrametric: d(a, c) <= max(d(a, b), d(b, c))."""
    n = tree.n_leaves
    d = np.zeros((n, n), np.float32)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for k, (x, y) in enumerate(tree.children().tolist()):
        ax, ay = members.pop(x), members.pop(y)
        d[np.ix_(ax, ay)] = tree.height[n + k]
        d[np.ix_(ay, ax)] = tree.height[n + k]
        members[n + k] = ax + ay
    return d


def ucm_image(tree: RegionTree) -> F32:
    """(H, W) float32 ultrametric contour map: on each leaf boundary (the left / upper pixel
    of a crossing) the distance of the two leaves, 0 elsewhere."""
    d = leaf_distance(tree)
    lab = tree.leaves
    out = np.zeros(lab.size, np.float32)
    p, q = _crossings(lab)
    flat = lab.ravel()
    np.maximum.at(out, p, d[flat[p], flat[q]])
    return out.reshape(lab.shape)


def cut_tree(tree: RegionTree, level: float) -> I32:
    """(H, W) int32 segmentation: leaves whose distance is <= ``level`` joined, 0..K-1."""
    n = tree.n_leaves
    root_of = np.arange(2 * n - 1)
    for k, (x, y) in enumerate(tree.children().tolist()):
        if tree.height[n + k] <= level:
            root_of[x] = root_of[y] = n + k
    for node in range(2 * n - 2, -1, -1):  # top-down: a node joined above takes that label
        p = int(root_of[node])
        if p != node:
            root_of[node] = root_of[p]
    return compact_labels(root_of[:n][tree.leaves]).astype(np.int32)


def oracle_iou(leaves: I32, mask: NDArray[np.bool_]) -> float:
    """Best IoU with ``mask`` that a union of leaves reaches (an upper bound for any method
    picking regions of this tree's finest level). Exact: the best union takes the leaves
    in decreasing order of the share of their pixels inside the mask (a prefix), because
    IoU = inside / (|mask| + outside) is maximised by a ratio threshold."""
    if leaves.shape != mask.shape:
        raise ValueError(f"leaves {leaves.shape} and mask {mask.shape} differ in shape")
    m = mask.astype(bool)
    total = int(m.sum())
    if total == 0:
        return 1.0 if leaves.size else 0.0
    n = int(leaves.max()) + 1
    inside = np.bincount(leaves[m], minlength=n).astype(np.float64)
    size = np.bincount(leaves.ravel(), minlength=n).astype(np.float64)
    order = np.argsort(-(inside / np.maximum(size, 1)), kind="stable")
    tp = np.cumsum(inside[order])
    fp = np.cumsum(size[order] - inside[order])
    return float(np.max(tp / (total + fp)))


def frame_tree(
    frame: NDArray[np.uint8], edge_fn: Callable[[NDArray[np.uint8]], EdgeMap], cfg: RegionConfig
) -> tuple[RegionTree, EdgeMap]:
    """Tree of an (H, W, 3) uint8 frame: the frame area-shrunk to ``work_side`` first, edges
    (``edge_fn``) and tree there, the leaves brought back to (H, W) (nearest). Computing the
    edges at the working size too costs ~3x less than edges at full size pooled down.
    Returns the tree (leaves (H, W)) and the working-size edge map."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    h, w = frame.shape[:2]
    s = min(1.0, cfg.work_side / max(h, w))
    small = frame
    if s < 1:
        size = (max(8, round(w * s)), max(8, round(h * s)))
        small = np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), np.uint8)
    edge = edge_fn(small)
    tree = build_tree(edge, cfg)
    if s < 1:
        leaves = cv2.resize(tree.leaves, (w, h), interpolation=cv2.INTER_NEAREST)
        tree = RegionTree(np.asarray(leaves, np.int32), tree.parent, tree.height)
    return tree, edge
