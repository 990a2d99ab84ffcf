"""SURF Fast-Hessian interest-point detector (Bay et al. 2008), vectorised.

The PyPI OpenCV wheels leave out SURF (non-free), so this module re-implements the
detector part of OpenCV's ``xfeatures2d/src/surf.cpp`` with numpy and OpenCV box sums:

* box-filter approximations of Dxx, Dyy, Dxy (lobe sums by ``cv2.boxFilter``, which
  equal the integral-image sums exactly) with filter sizes ``(9 + 6 l) * 2**o``,
  each lobe weighted by ``1 / lobe area`` (OpenCV's ``resizeHaarPattern``), so responses
  are differences of lobe *means* on 0..255 intensities and a threshold such as IDT's 200
  means the same thing at every scale;
* response ``Dxx * Dyy - 0.81 * Dxy**2``, sampled every ``2**o`` pixels in octave ``o``
  (OpenCV's ``SAMPLE_STEP0 = 1``, doubled per octave);
* strict 3x3x3 non-maximum suppression across position and scale, then one Newton step of
  a 3-D quadratic fit (Brown & Lowe) for sub-pixel position and scale; keypoints whose
  offset exceeds one sample in any dimension are discarded, as OpenCV does.

When a non-free OpenCV build is installed, ``detect(..., use_opencv=True)`` calls
``cv2.xfeatures2d.SURF_create`` instead (see ``opencv_surf_available``).
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# OpenCV's Haar patterns for a 9x9 filter: (x1, y1, x2, y2, weight), rect = [x1, x2) x [y1, y2)
_DX = ((0, 2, 3, 7, 1), (3, 2, 6, 7, -2), (6, 2, 9, 7, 1))
_DY = ((2, 0, 7, 3, 1), (2, 3, 7, 6, -2), (2, 6, 7, 9, 1))
_DXY = ((1, 1, 4, 4, 1), (5, 1, 8, 4, -1), (1, 5, 4, 8, -1), (5, 5, 8, 8, 1))


@dataclass(frozen=True)
class SurfConfig:
    """Fast-Hessian parameters (OpenCV ``SURF_create`` names in brackets)."""

    hessian_threshold: float = 200.0  # IDT's SurfFeatureDetector(200) on 0..255 grey levels
    n_octaves: int = 4  # OpenCV default nOctaves=4 (the original SURF binary's default)
    # IDT's SurfFeatureDetector(200) ran on OpenCV 2.4, whose default is nOctaveLayers=2
    # (OpenCV >= 3 defaults to 3).
    n_octave_layers: int = 2
    max_keypoints: int = 0  # keep the strongest N (0 = all); OpenCV keeps all

    def __post_init__(self) -> None:
        if self.hessian_threshold < 0:
            raise ValueError(f"hessian_threshold must be >= 0, got {self.hessian_threshold}")
        if self.n_octaves < 1 or self.n_octave_layers < 1:
            raise ValueError("n_octaves and n_octave_layers must be >= 1")


@dataclass(frozen=True)
class Keypoints:
    """Detected keypoints, strongest first (OpenCV's ``KeypointGreater`` order).

    xy: (N, 2) float32 pixel centres (x, y); size: (N,) float32 filter size (OpenCV's
    ``KeyPoint.size``); response: (N,) float32 Hessian determinant; octave: (N,) int32;
    laplacian: (N,) int8 sign of the Hessian trace (+1 dark blob, -1 bright blob).
    """

    xy: NDArray[np.float32]
    size: NDArray[np.float32]
    response: NDArray[np.float32]
    octave: NDArray[np.int32]
    laplacian: NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    @staticmethod
    def empty() -> Keypoints:
        return Keypoints(
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int8),
        )


def opencv_surf_available() -> bool:
    """True when this cv2 build has the non-free SURF implementation."""
    try:
        cv2.xfeatures2d.SURF_create(100.0)  # type: ignore[attr-defined]
    except (AttributeError, cv2.error):
        return False
    return True


def _to_grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            f"image must be (H, W) or (H, W, 3) uint8, got {image.shape} {image.dtype}"
        )
    if image.ndim == 3:
        if image.shape[2] != 3:
            raise ValueError(f"colour image must have 3 channels (RGB), got {image.shape}")
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    return image


@functools.lru_cache(maxsize=256)
def _scaled_pattern(
    pattern: tuple[tuple[int, int, int, int, int], ...], size: int
) -> tuple[tuple[int, int, int, int, float], ...]:
    """OpenCV's resizeHaarPattern: scale the 9x9 pattern, weight each lobe by 1/area
    (cached: a handful of (pattern, size) pairs)."""
    ratio = size / 9.0
    out = []
    for x1, y1, x2, y2, w in pattern:
        # cvRound rounds half to even like np.rint; python round() does the same.
        dx1, dy1 = round(ratio * x1), round(ratio * y1)
        dx2, dy2 = round(ratio * x2), round(ratio * y2)
        out.append((dx1, dy1, dx2, dy2, w / float((dx2 - dx1) * (dy2 - dy1))))
    return tuple(out)


class _Scratch:
    """Scratch arrays reused from one image to the next (one set per thread).

    Fresh large arrays cost page faults on first write: measured on 448x600 frames, about a
    third of the detector's CPU time went to the kernel before the buffers were reused.
    ``_Scratch(reuse=False)`` allocates every array afresh (for callers that keep results).
    """

    def __init__(self, reuse: bool = True) -> None:
        self.reuse = reuse
        self.arrays: dict[tuple[Any, ...], NDArray[Any]] = {}

    def get(self, key: tuple[Any, ...], shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
        a = self.arrays.get(key) if self.reuse else None
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype)
            if self.reuse:
                self.arrays[key] = a
        return a

    def zeros(self, key: tuple[Any, ...], shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
        a = self.get(key, shape, dtype)
        a.fill(0)
        return a


_THREAD = threading.local()


def _scratch() -> _Scratch:
    s: _Scratch | None = getattr(_THREAD, "scratch", None)
    if s is None:
        s = _THREAD.scratch = _Scratch()
    return s


def _corners(
    cache: dict[Any, NDArray[Any]],
    scratch: _Scratch,
    step: int,
    y: int,
    x: int,
    n_i: int,
    n_j: int,
) -> NDArray[np.int32]:
    """``ii[y : y + n_i*step : step, x : x + n_j*step : step]`` as a view with unit column
    stride: one contiguous copy of the integral image per sampling phase, cached."""
    key = ("phase", step, y % step, x % step)
    phase = cache.get(key)
    if phase is None:
        sub = cache["ii"][y % step :: step, x % step :: step]
        phase = cache[key] = scratch.get(key, sub.shape, np.int32)
        np.copyto(phase, sub)
    return phase[y // step : y // step + n_i, x // step : x // step + n_j]


def _haar(
    pattern: tuple[tuple[int, int, int, int, float], ...],
    n_i: int,
    n_j: int,
    step: int,
    cache: dict[Any, NDArray[Any]],
    scratch: _Scratch,
    key: tuple[Any, ...],
) -> NDArray[np.float32]:
    """Weighted sum of lobe means for every filter top-left (i*step, j*step).

    At step 1, lobe sums come from ``cv2.boxFilter`` of ``cache["grey"]`` with the anchor at
    the window's top-left (the integral-image sums, exact in float32 below 2**24, but SIMD in
    C); ``cache`` keeps one filtered image per lobe shape. Sparser octaves read the image's
    integral image (``cache["ii"]``, int32: sums stay below 255 * 2**18 * 2**10) at the
    samples only. Each lobe is added as ``acc = w * sum + acc`` in float32, in pattern order.
    """
    acc = scratch.zeros(("acc", *key), (n_i, n_j), np.float32)
    if step > 1:  # sparse samples: four integral look-ups per sample beat full-size filters
        s = scratch.get(("s", step), (n_i, n_j), np.int32)
        sf = scratch.get(("sf", step), (n_i, n_j), np.float32)
        for x1, y1, x2, y2, w in pattern:
            np.subtract(
                _corners(cache, scratch, step, y2, x2, n_i, n_j),
                _corners(cache, scratch, step, y1, x2, n_i, n_j),
                out=s,
            )
            s -= _corners(cache, scratch, step, y2, x1, n_i, n_j)
            s += _corners(cache, scratch, step, y1, x1, n_i, n_j)
            np.multiply(s, np.float32(w), out=sf, dtype=np.float32)  # s exact: |s| < 2**24
            acc += sf
        return acc
    grey = cache["grey"]
    for x1, y1, x2, y2, w in pattern:
        shape = (x2 - x1, y2 - y1)
        box = cache.get(shape)
        if box is None:
            box = cache[shape] = cv2.boxFilter(
                grey,
                cv2.CV_32F,
                shape,
                dst=scratch.get(("box", len(cache)), grey.shape, np.float32),
                anchor=(0, 0),
                normalize=False,
                borderType=cv2.BORDER_CONSTANT,
            )
        # One SIMD pass in place (acc = w * lobe + acc); the lobe view has unit column stride.
        cv2.scaleAdd(box[y1 : y1 + n_i, x1 : x1 + n_j], w, acc, dst=acc)
    return acc


def _layer(
    grey: NDArray[np.uint8],
    size: int,
    step: int,
    rows: int,
    cols: int,
    cache: dict[Any, NDArray[Any]] | None = None,
    scratch: _Scratch | None = None,
    slot: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Determinant and trace of one layer on OpenCV's (rows, cols) sample grid.

    ``cache`` holds the image's integral image (and its sampling phases) across layers and
    octaves; ``detect`` passes one per image, and its thread's ``scratch`` (the returned
    arrays are then reused by the next image: ``slot`` = layer index keeps an octave's apart).
    Without ``scratch`` the arrays are fresh."""
    scratch = scratch if scratch is not None else _Scratch(reuse=False)
    det = scratch.zeros(("det", step, slot), (rows, cols), np.float32)
    trace = scratch.zeros(("trace", step, slot), (rows, cols), np.float32)
    h, w = grey.shape
    if size > h or size > w:
        return det, trace
    n_i = 1 + (h - size) // step
    n_j = 1 + (w - size) // step
    margin = (size // 2) // step
    patterns = [_scaled_pattern(p, size) for p in (_DX, _DY, _DXY)]
    src: dict[Any, NDArray[Any]] = {"grey": grey}  # step 1: box-filtered lobes, this layer
    if step > 1:
        src = cache if cache is not None else {}
        if "ii" not in src:
            ii = scratch.get(("ii",), (h + 1, w + 1), np.int32)
            src["ii"] = cv2.integral(grey, sum=ii, sdepth=cv2.CV_32S)
    dxx, dyy, dxy = (
        _haar(p, n_i, n_j, step, src, scratch, (step, k)) for k, p in enumerate(patterns)
    )
    # In place, same operation order as dxx * dyy - 0.81 * dxy * dxy (bit-identical).
    dv = det[margin : margin + n_i, margin : margin + n_j]
    np.multiply(dxx, dyy, out=dv)
    tmp = scratch.get(("tmp", step), dxy.shape, np.float32)
    np.multiply(dxy, np.float32(0.81), out=tmp)
    dxy *= tmp
    dv -= dxy
    np.add(dxx, dyy, out=trace[margin : margin + n_i, margin : margin + n_j])
    return det, trace


_NEIGH_FULL = np.ones((3, 3), np.uint8)


def _octave_keypoints(
    dets: list[NDArray[np.float32]],
    traces: list[NDArray[np.float32]],
    sizes: list[int],
    step: int,
    octave: int,
    threshold: float,
    out: list[NDArray[np.float64]],
    scratch: _Scratch | None = None,
) -> None:
    """Strict 3x3x3 maxima of the middle layers, refined; appends (N, 6) rows to ``out``."""
    scratch = scratch if scratch is not None else _Scratch(reuse=False)
    rows, cols = dets[0].shape
    # 2-D neighbourhood maxima per layer: full 3x3 (for the layers above and below).
    full = [
        cv2.dilate(d, _NEIGH_FULL, dst=scratch.get(("full", step, k), d.shape, np.float32))
        for k, d in enumerate(dets)
    ]
    for li in range(1, len(dets) - 1):
        size = sizes[li]
        margin = (sizes[li + 1] // 2) // step + 1
        if rows - 2 * margin <= 0 or cols - 2 * margin <= 0:
            continue
        val = dets[li]
        # Strict maximum of its 3x3x3 cube, on the interior: not below its own layer's 3x3
        # maximum, above the full 3x3 of the layers below and above; ties within its own
        # layer are settled at the few candidates left (below).
        inner = (slice(margin, rows - margin), slice(margin, cols - margin))
        v = val[inner]
        cand = scratch.get(("cand", step, li), v.shape, np.bool_)
        test = scratch.get(("test", step, li), v.shape, np.bool_)
        nmax = scratch.get(("nmax", step, li), v.shape, np.float32)
        np.greater(v, threshold, out=cand)
        cand &= np.greater_equal(v, full[li][inner], out=test)
        np.maximum(full[li - 1][inner], full[li + 1][inner], out=nmax)
        cand &= np.greater(v, nmax, out=test)
        flat = np.flatnonzero(cand)
        if flat.size == 0:
            continue
        ii, jj = np.divmod(flat, cols - 2 * margin)
        ii += margin
        jj += margin
        # N9[s][k]: s = layer below/same/above, k = 3x3 raster around (i, j).
        di = np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1])
        dj = np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1])
        gi, gj = ii[:, None] + di, jj[:, None] + dj
        n9 = np.stack([d[gi, gj] for d in dets[li - 1 : li + 2]], axis=1).astype(np.float64)
        strict = (np.delete(n9[:, 1], 4, axis=1) < n9[:, 1, 4:5]).all(axis=1)
        if not strict.all():
            ii, jj, n9 = ii[strict], jj[strict], n9[strict]
            if ii.size == 0:
                continue
        b = -np.stack(
            [
                (n9[:, 1, 5] - n9[:, 1, 3]) / 2,
                (n9[:, 1, 7] - n9[:, 1, 1]) / 2,
                (n9[:, 2, 4] - n9[:, 0, 4]) / 2,
            ],
            axis=1,
        )
        dxx = n9[:, 1, 3] - 2 * n9[:, 1, 4] + n9[:, 1, 5]
        dyy = n9[:, 1, 1] - 2 * n9[:, 1, 4] + n9[:, 1, 7]
        dss = n9[:, 0, 4] - 2 * n9[:, 1, 4] + n9[:, 2, 4]
        dxy = (n9[:, 1, 8] - n9[:, 1, 6] - n9[:, 1, 2] + n9[:, 1, 0]) / 4
        dxs = (n9[:, 2, 5] - n9[:, 2, 3] - n9[:, 0, 5] + n9[:, 0, 3]) / 4
        dys = (n9[:, 2, 7] - n9[:, 2, 1] - n9[:, 0, 7] + n9[:, 0, 1]) / 4
        a = np.stack(
            [
                np.stack([dxx, dxy, dxs], 1),
                np.stack([dxy, dyy, dys], 1),
                np.stack([dxs, dys, dss], 1),
            ],
            axis=1,
        )
        solvable = np.abs(np.linalg.det(a)) > 1e-12
        x = np.zeros_like(b)
        if solvable.any():
            x[solvable] = np.linalg.solve(a[solvable], b[solvable][..., None])[..., 0]
        ok = solvable & np.any(x != 0, axis=1) & np.all(np.abs(x) <= 1, axis=1)
        if not ok.any():
            continue
        ii, jj, x = ii[ok], jj[ok], x[ok]
        # Filter top-left in pixels, then the wavelet centre (OpenCV's integer arithmetic).
        half = (size // 2) // step
        cy = step * (ii - half) + (size - 1) * 0.5 + x[:, 1] * step
        cx = step * (jj - half) + (size - 1) * 0.5 + x[:, 0] * step
        ds = size - sizes[li - 1]
        ksize = np.rint(size + x[:, 2] * ds)
        resp = val[ii, jj].astype(np.float64)
        tr = traces[li][ii, jj]
        lap = np.sign(tr).astype(np.float64)
        out.append(np.stack([cx, cy, ksize, resp, np.full_like(cx, octave), lap], axis=1))


def detect(
    image: NDArray[np.uint8], cfg: SurfConfig = SurfConfig(), use_opencv: bool = False
) -> Keypoints:
    """Fast-Hessian keypoints of ``image`` ((H, W) grey or (H, W, 3) RGB uint8).

    ``use_opencv=True`` delegates to ``cv2.xfeatures2d.SURF_create`` (non-free builds only;
    raises ``RuntimeError`` otherwise).
    """
    grey = _to_grey(image)
    if use_opencv:
        return _detect_opencv(grey, cfg)
    h, w = grey.shape
    rows_out: list[NDArray[np.float64]] = []
    cache: dict[Any, NDArray[Any]] = {}  # the integral image, shared by the sparse octaves
    scratch = _scratch()
    step = 1
    for octave in range(cfg.n_octaves):
        rows, cols = h // step, w // step
        sizes = [(9 + 6 * layer) << octave for layer in range(cfg.n_octave_layers + 2)]
        if rows < 3 or cols < 3 or sizes[1] > min(h, w):
            break
        dets, traces = zip(
            *(_layer(grey, s, step, rows, cols, cache, scratch, k) for k, s in enumerate(sizes)),
            strict=True,
        )
        _octave_keypoints(
            list(dets), list(traces), sizes, step, octave, cfg.hessian_threshold, rows_out, scratch
        )
        step *= 2
    if not rows_out:
        return Keypoints.empty()
    kp = np.concatenate(rows_out)
    # OpenCV's KeypointGreater: response desc, size desc, octave desc, y desc, x asc.
    order = np.lexsort((kp[:, 0], -kp[:, 1], -kp[:, 4], -kp[:, 2], -kp[:, 3]))
    kp = kp[order]
    if cfg.max_keypoints > 0:
        kp = kp[: cfg.max_keypoints]
    return Keypoints(
        xy=kp[:, :2].astype(np.float32),
        size=kp[:, 2].astype(np.float32),
        response=kp[:, 3].astype(np.float32),
        octave=kp[:, 4].astype(np.int32),
        laplacian=kp[:, 5].astype(np.int8),
    )


def _detect_opencv(grey: NDArray[np.uint8], cfg: SurfConfig) -> Keypoints:
    if not opencv_surf_available():
        raise RuntimeError("cv2.xfeatures2d.SURF_create needs a non-free OpenCV build")
    surf = cv2.xfeatures2d.SURF_create(  # type: ignore[attr-defined]
        cfg.hessian_threshold, cfg.n_octaves, cfg.n_octave_layers, False, True
    )
    kps = surf.detect(grey, None)
    if cfg.max_keypoints > 0:
        kps = kps[: cfg.max_keypoints]
    if not kps:
        return Keypoints.empty()
    return Keypoints(
        xy=np.array([k.pt for k in kps], np.float32),
        size=np.array([k.size for k in kps], np.float32),
        response=np.array([k.response for k in kps], np.float32),
        octave=np.array([k.octave for k in kps], np.int32),
        laplacian=np.array([k.class_id for k in kps], np.int8),
    )
