"""SLIC superpixels and the 176-d uNLC region descriptor (after videoseg's `nlc.py`).

`slic_labels` segments one frame into about `n_segments` SLIC superpixels with OpenCV's
ximgproc (scikit-image's `slic`, which the original called with `sigma=5`, compactness 10,
is several times slower). SLIC may run on a shrunk frame (`scale`, 0.5 by default in
`UnlcConfig`), the stage's largest cost otherwise. Labels are compacted to 0..K-1.

`describe` computes one descriptor per superpixel from the `patch` x `patch` (15 x 15)
window centred on the superpixel's bounding box, clipped into the frame, exactly the
window the original took:

- HOG of the grey patch: `hog_bins` (6) unsigned orientations, `hog_cell` (5) px cells,
  one block of 3 x 3 cells -> 54 values, block-normalised (`hog_norm`, "L1" was
  scikit-image's default when the original ran, "L2-Hys" is today's default). Same
  gradients and hard binning as `skimage.feature.hog` (tested against it).
- six `colour_bins` (20) bin histograms of the patch: R, G, B over [0, 255], L over
  [0, 100], a and b over [-128, 127], each normalised to sum 1 -> 120 values.
- the patch's top-left corner (y / H, x / W) before clipping -> 2 values.

All superpixels of a frame are handled at once (gathered patches, `np.bincount`); there is
no per-superpixel Python loop.
"""

from __future__ import annotations

import logging
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

HogNorm = Literal["L1", "L2-Hys"]
_EPS = 1e-5  # scikit-image's block-normalisation epsilon


def descriptor_dim(hog_bins: int, hog_cells: int, colour_bins: int) -> int:
    """HOG (cells^2 x bins) + six colour histograms + (y, x): 54 + 120 + 2 = 176 by default."""
    return hog_cells * hog_cells * hog_bins + 6 * colour_bins + 2


def compact_labels(labels: NDArray[np.integer]) -> NDArray[np.int32]:
    """Relabel (H, W) labels to 0..K-1 without gaps, keeping their order."""
    flat = labels.ravel()
    present = np.bincount(flat) > 0
    remap = (np.cumsum(present) - 1).astype(np.int32)
    return remap[labels]


def slic_labels(
    frame: NDArray[np.uint8],
    *,
    n_segments: int,
    compactness: float,
    sigma: float,
    iterations: int,
    min_size_pct: int,
    scale: float = 1.0,
) -> NDArray[np.int32]:
    """(H, W, 3) uint8 RGB -> (H, W) int32 SLIC labels 0..K-1, K ~ n_segments.

    The frame is smoothed with a Gaussian of `sigma` px and converted to CIELAB, as
    scikit-image's `slic` does internally; `compactness` is OpenCV's `ruler`. With
    `scale` < 1 SLIC runs on the frame shrunk by `scale` (sigma scaled alike) and the
    labels are upsampled (nearest): 0.5 costs ~4x less, and superpixels of ~25 px side
    only lose boundary detail under 2 px.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    h0, w0 = frame.shape[:2]
    img = frame
    if scale < 1:
        size = (max(1, round(w0 * scale)), max(1, round(h0 * scale)))
        img = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    if sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigma * scale)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    region = max(int(round(np.sqrt(h * w / n_segments))), 2)
    slic = cv2.ximgproc.createSuperpixelSLIC(
        lab, algorithm=cv2.ximgproc.SLIC, region_size=region, ruler=float(compactness)
    )
    slic.iterate(iterations)
    if min_size_pct > 0:
        slic.enforceLabelConnectivity(min_size_pct)
    labels = np.asarray(slic.getLabels())
    if (h, w) != (h0, w0):
        labels = cv2.resize(labels, (w0, h0), interpolation=cv2.INTER_NEAREST)
    return compact_labels(labels)


def _bboxes(labels: NDArray[np.int32], k: int) -> NDArray[np.int64]:
    """(K, 4) inclusive (ymin, xmin, ymax, xmax) per label."""
    h, w = labels.shape
    flat = labels.ravel()
    ys = np.repeat(np.arange(h), w)
    xs = np.tile(np.arange(w), h)
    box = np.empty((4, k), np.int64)
    box[0], box[1] = h, w
    box[2], box[3] = -1, -1
    np.minimum.at(box[0], flat, ys)
    np.minimum.at(box[1], flat, xs)
    np.maximum.at(box[2], flat, ys)
    np.maximum.at(box[3], flat, xs)
    return box.T


def _hog(grey: NDArray[np.float32], bins: int, cell: int, norm: HogNorm) -> NDArray[np.float32]:
    """HOG of patches (K, P, P) float32 -> (K, cells * cells * bins), one block of all cells.

    Matches `skimage.feature.hog(patch, orientations=bins, pixels_per_cell=(cell, cell),
    cells_per_block=(P // cell, P // cell), block_norm=norm)`: central differences inside
    the patch (0 on its edge rows/columns), unsigned orientation hard-binned, cell sums
    divided by the cell area.
    """
    k, p, _ = grey.shape
    n_cells = p // cell
    g_row = np.zeros_like(grey)
    g_col = np.zeros_like(grey)
    g_row[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
    g_col[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    mag = np.hypot(g_row, g_col)
    ori = np.rad2deg(np.arctan2(g_row, g_col)) % 180.0
    b = np.minimum((ori / (180.0 / bins)).astype(np.int64), bins - 1)
    rr = np.arange(p) // cell
    cell_id = rr[:, None] * n_cells + rr[None, :]  # (P, P); pixels past the last cell drop out
    valid = (rr[:, None] < n_cells) & (rr[None, :] < n_cells)
    idx = (np.arange(k)[:, None, None] * (n_cells * n_cells) + cell_id[None]) * bins + b
    sel = np.broadcast_to(valid, idx.shape)
    counts = np.bincount(idx[sel], weights=mag[sel], minlength=k * n_cells * n_cells * bins)
    hist = counts.reshape(k, -1) / float(cell * cell)
    if norm == "L1":
        out = hist / (np.abs(hist).sum(axis=1, keepdims=True) + _EPS)
    elif norm == "L2-Hys":
        out = hist / np.sqrt((hist * hist).sum(axis=1, keepdims=True) + _EPS**2)
        out = np.minimum(out, 0.2)
        out = out / np.sqrt((out * out).sum(axis=1, keepdims=True) + _EPS**2)
    else:
        raise ValueError(f"hog norm must be 'L1' or 'L2-Hys', got {norm!r}")
    return out.astype(np.float32)


_RANGES = ((0.0, 255.0),) * 3 + ((0.0, 100.0), (-128.0, 127.0), (-128.0, 127.0))


def _colour_hists(rgb: NDArray[np.uint8], bins: int) -> NDArray[np.float32]:
    """Patches (K, P, P, 3) uint8 RGB -> (K, 6 * bins): R, G, B, L, a, b histograms with
    `np.histogram` semantics (upper edge in the last bin, out-of-range values dropped),
    each normalised to sum 1."""
    k, p = rgb.shape[:2]
    rgbf = rgb.reshape(k * p, p, 3).astype(np.float32)
    lab = cv2.cvtColor(rgbf / 255.0, cv2.COLOR_RGB2LAB).reshape(k, p * p, 3)
    chans = np.concatenate([rgbf.reshape(k, p * p, 3), lab], axis=2)  # (K, P*P, 6)
    out = np.empty((k, 6, bins), np.float64)
    rows = np.repeat(np.arange(k), p * p)
    for c, (lo, hi) in enumerate(_RANGES):  # six channels, not superpixels
        v = chans[:, :, c].ravel().astype(np.float64)
        b = np.floor((v - lo) * (bins / (hi - lo))).astype(np.int64)
        b[v == hi] = bins - 1
        ok = (v >= lo) & (v <= hi)
        hist = np.bincount(rows[ok] * bins + b[ok], minlength=k * bins).reshape(k, bins)
        s = hist.sum(axis=1, keepdims=True)
        out[:, c] = hist / (s + (s < 1e-4))
    return out.reshape(k, 6 * bins).astype(np.float32)


def describe(
    frame: NDArray[np.uint8],
    labels: NDArray[np.int32],
    *,
    patch: int,
    hog_bins: int,
    hog_cell: int,
    hog_norm: HogNorm,
    colour_bins: int,
) -> NDArray[np.float32]:
    """Descriptors (K, 176) float32 for the K superpixels of one frame.

    frame: (H, W, 3) uint8 RGB; labels: (H, W) int32 0..K-1 (every label present).
    """
    h, w = labels.shape
    if frame.shape[:2] != (h, w):
        raise ValueError(f"frame {frame.shape} and labels {labels.shape} differ in size")
    if h < patch or w < patch:
        raise ValueError(f"frame {h}x{w} is smaller than the {patch} px descriptor patch")
    k = int(labels.max()) + 1
    box = _bboxes(labels, k)
    # Patch top-left from the bbox centre, truncated toward 0 like the original astype(int).
    y0 = np.trunc((box[:, 0] + box[:, 2] - patch) / 2.0).astype(np.int64)
    x0 = np.trunc((box[:, 1] + box[:, 3] - patch) / 2.0).astype(np.int64)
    yc = np.clip(y0, 0, h - patch)
    xc = np.clip(x0, 0, w - patch)
    off = np.arange(patch)
    iy = (yc[:, None] + off)[:, :, None]
    ix = (xc[:, None] + off)[:, None, :]
    rgb = frame[iy, ix]  # (K, P, P, 3)
    f = rgb.astype(np.float32) / 255.0
    grey = 0.2125 * f[..., 0] + 0.7154 * f[..., 1] + 0.0721 * f[..., 2]  # skimage rgb2gray
    hog = _hog(grey, hog_bins, hog_cell, hog_norm)
    col = _colour_hists(rgb, colour_bins)
    pos = np.stack([y0 / h, x0 / w], axis=1).astype(np.float32)
    return np.concatenate([hog, col, pos], axis=1)


def region_areas(labels: NDArray[np.int32], k: int) -> NDArray[np.int64]:
    """(K,) pixel count per label."""
    return np.bincount(labels.ravel(), minlength=k)


def region_means(
    labels: NDArray[np.int32], values: NDArray[np.floating], k: int
) -> NDArray[np.float64]:
    """(K,) mean of `values` (H, W) over each label (the original `salScore2votes`)."""
    s = np.bincount(labels.ravel(), weights=values.ravel(), minlength=k)
    c = np.bincount(labels.ravel(), minlength=k)
    return s / np.maximum(c, 1)


def region_adjacency(labels: NDArray[np.int32]) -> NDArray[np.int64]:
    """(E, 2) unique pairs (a < b) of labels touching horizontally or vertically (the
    4-connectivity `scipy.ndimage.label` uses for blobs)."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    diff = a != b
    lo = np.minimum(a[diff], b[diff]).astype(np.int64)
    hi = np.maximum(a[diff], b[diff]).astype(np.int64)
    k = int(labels.max()) + 1
    code = np.unique(lo * k + hi)
    return np.stack([code // k, code % k], axis=1)
