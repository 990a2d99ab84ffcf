"""Motion saliency for uNLC (Pathak et al. 2017, after videoseg's `nlc.compute_saliency`).

Each frame of a shot is shrunk to `size` x `size` (100 x 100 in the original) and compared
with its neighbours within +-`radius` frames by dense optical flow. For one (frame,
neighbour) pair:

- **static camera**: the median flow magnitude is under `mag_threshold` px, so the
  background does not move; saliency = squared flow magnitude (deviation from 0).
- **dominant direction**: otherwise, if one of `dir_bins` orientation bins, weighted by
  flow magnitude, holds more than `dir_threshold` of the motion, the camera translates;
  saliency = squared angular difference (wrapped to [-pi, pi]) to that bin's centre.
- otherwise the pair says nothing and is skipped.

Orientation bins: the original's `np.histogram(range=(-pi, pi))` puts bin *edges* exactly
on the horizontal and vertical directions, so a plain horizontal pan (the most common
camera motion) splits its weight between two bins and is never dominant. With
`centred=True` (our default) the bins are turned by half a bin so that the axes are bin
centres; `centred=False` reproduces the original edges.

Each pair's deviation map is smoothed with a `box` x `box` mean filter (reflecting edges,
like the original `convolve2d(..., boundary='symm')`); a frame's map is the mean over its
dominant pairs (0 when it has none). The original used Ce Liu's variational coarse-to-fine
flow (pyflow); we use OpenCV's DIS flow (preset MEDIUM, with variational refinement), which
is of the same family, ships with our OpenCV build and costs ~0.5 ms per pair at 100 x 100.

Units: static-camera saliency is in px^2 at the `size` scale, dominant-direction saliency in
rad^2. The two are mixed in the original too; they are normalised over the shot later.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# Pair kinds as small ints, for the per-pair bookkeeping arrays.
NONE, STATIC, TRANSLATE, COMPENSATED = 0, 1, 2, 3
SaliencyMode = Literal["homography", "dominant"]


def camera_residual(
    flow: NDArray[np.float32], *, grid: int, threshold: float, method: int = cv2.LMEDS
) -> tuple[NDArray[np.float32], float]:
    """Flow (H, W, 2) minus the camera's: a homography fitted robustly to the flow sampled
    every `grid` px (IDT's camera model, as `pipeline.motion` fits it; least-median by
    default, which keeps the majority, the background). Returns the (H, W) float32 residual
    magnitude in px and the share of grid points the homography explains within `threshold`
    px (0.0 when none was found; the residual is then the raw magnitude)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[grid // 2 : h : grid, grid // 2 : w : grid]
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()]
    hom = None
    if len(src) >= 8:
        hom, _ = cv2.findHomography(src, dst, method, threshold)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if hom is None:
        return np.asarray(np.hypot(flow[..., 0], flow[..., 1]), np.float32), 0.0
    den = hom[2, 0] * xx + hom[2, 1] * yy + hom[2, 2]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    px = (hom[0, 0] * xx + hom[0, 1] * yy + hom[0, 2]) / den
    py = (hom[1, 0] * xx + hom[1, 1] * yy + hom[1, 2]) / den
    rx = flow[..., 0] - (px - xx)
    ry = flow[..., 1] - (py - yy)
    res = np.asarray(np.hypot(rx, ry), np.float32)
    return res, float(np.mean(res[ys.ravel(), xs.ravel()] <= threshold))


@dataclass(frozen=True)
class MotionSaliency:
    """Per-frame motion saliency of one shot at the flow scale.

    maps: (n, size, size) float32, mean deviation over the frame's dominant pairs, 0 where
        a frame has no dominant pair.
    pair_kinds: (n, 2 * radius) int8, NONE / STATIC / TRANSLATE per neighbour offset
        (-radius..-1, 1..radius); NONE also where the neighbour is outside the shot.
    """

    maps: NDArray[np.float32]
    pair_kinds: NDArray[np.int8]
    flow_seconds: float = 0.0  # time spent in optical flow alone

    @property
    def dominant_frames(self) -> NDArray[np.bool_]:
        """(n,) bool: frames with at least one dominant pair."""
        return np.asarray((self.pair_kinds != NONE).any(axis=1))

    @property
    def n_static_pairs(self) -> int:
        return int((self.pair_kinds == STATIC).sum())

    @property
    def n_translate_pairs(self) -> int:
        """Pairs where the camera moves (dominant direction, or compensated)."""
        return int(((self.pair_kinds == TRANSLATE) | (self.pair_kinds == COMPENSATED)).sum())


def shrink_frames(frames: NDArray[np.uint8], size: int) -> NDArray[np.uint8]:
    """(n, H, W, 3) uint8 RGB -> (n, size, size) uint8 grey, area-averaged (aspect not kept,
    as in the original `imresize(im, (flowSz, flowSz))`)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be (n, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}"
        )
    out = np.empty((len(frames), size, size), np.uint8)
    for i, f in enumerate(frames):
        small = cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return out


def pair_deviation(
    flow: NDArray[np.float32],
    *,
    mag_threshold: float,
    dir_threshold: float,
    dir_bins: int,
    box: int,
    centred: bool = True,
) -> tuple[int, NDArray[np.float32] | None]:
    """Classify one pair's flow (S, S, 2) and return (kind, smoothed deviation or None)."""
    fx, fy = flow[..., 0], flow[..., 1]
    mag = np.sqrt(fx * fx + fy * fy)
    if float(np.median(mag)) < mag_threshold:
        kind, dev = STATIC, mag * mag
    else:
        ang = np.arctan2(fy, fx)  # (-pi, pi]
        width = 2 * np.pi / dir_bins
        shift = 0.5 * width if centred else 0.0  # centred: bin centres on the axes
        pos = np.mod(ang + np.pi + shift, 2 * np.pi)
        idx = np.minimum((pos / width).astype(np.intp), dir_bins - 1)
        hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=dir_bins)
        total = float(hist.sum())
        if total <= 0 or float(hist.max()) / total <= dir_threshold:
            return NONE, None
        b = int(hist.argmax())
        target = -np.pi - shift + (b + 0.5) * width  # bin centre
        diff = np.abs(ang - target)
        diff = np.minimum(diff, 2 * np.pi - diff)  # wrap: angles live on a circle
        kind, dev = TRANSLATE, diff * diff
    smooth = cv2.blur(dev.astype(np.float32), (box, box), borderType=cv2.BORDER_REFLECT)
    return kind, np.asarray(smooth, np.float32)


def motion_saliency(
    frames: NDArray[np.uint8],
    *,
    size: int,
    radius: int,
    mag_threshold: float,
    dir_threshold: float,
    dir_bins: int,
    box: int,
    centred: bool = True,
    mode: SaliencyMode = "dominant",
    grid: int = 8,
    ransac_threshold: float = 1.0,
    power: float = 2.0,
    min_explained: float = 0.5,
) -> MotionSaliency:
    """Motion saliency of a shot (frames (n, H, W, 3) uint8 RGB) at `size` x `size`.

    Flow is computed from frame i to each neighbour i+j, |j| <= radius, in both directions
    separately (as the original does), so 2 * radius flows per interior frame.
    """
    n = len(frames)
    grey = shrink_frames(frames, size)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    offsets = [j for j in range(-radius, radius + 1) if j != 0]
    maps = np.zeros((n, size, size), np.float32)
    kinds = np.zeros((n, len(offsets)), np.int8)
    t_flow = 0.0
    for i in range(n):
        acc = np.zeros((size, size), np.float32)
        used = 0
        for c, j in enumerate(offsets):
            if not 0 <= i + j < n:
                continue
            t0 = time.perf_counter()
            flow = np.asarray(dis.calc(grey[i], grey[i + j], None), np.float32)
            t_flow += time.perf_counter() - t0
            if mode == "homography":
                res, explained = camera_residual(flow, grid=grid, threshold=ransac_threshold)
                if explained < min_explained:  # no camera motion explains most of the
                    continue  # frame (all moving, noise): the pair says nothing (NONE)
                mag = np.hypot(flow[..., 0], flow[..., 1])
                kind = STATIC if float(np.median(mag)) < mag_threshold else COMPENSATED
                dev: NDArray[np.float32] | None = np.asarray(
                    cv2.blur(res**power, (box, box), borderType=cv2.BORDER_REFLECT), np.float32
                )
            else:
                kind, dev = pair_deviation(
                    flow,
                    mag_threshold=mag_threshold,
                    dir_threshold=dir_threshold,
                    dir_bins=dir_bins,
                    box=box,
                    centred=centred,
                )
            kinds[i, c] = kind
            if dev is not None:
                acc += dev
                used += 1
        if used:
            maps[i] = acc / used
    log.debug(
        "saliency: %d frames, %d static pairs, %d translate pairs",
        n,
        int((kinds == STATIC).sum()),
        int((kinds == TRANSLATE).sum()),
    )
    return MotionSaliency(maps=maps, pair_kinds=kinds, flow_seconds=t_flow)


def border_width(height: int, width: int, border: float) -> int:
    """Pixels zeroed on each side: `border` (a fraction, 0.125 = 12.5%) of the shorter side,
    as in the original `int(min(h, w) * flowBdd * 0.01)`."""
    return int(min(height, width) * border)


def upsample_map(
    small: NDArray[np.float32], height: int, width: int, exclude: int
) -> NDArray[np.float32]:
    """Bilinear upsample of one (S, S) map to (height, width) with `exclude` px zeroed on
    every side."""
    big = np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), np.float32)
    if exclude > 0:
        big[:exclude] = 0
        big[-exclude:] = 0
        big[:, :exclude] = 0
        big[:, -exclude:] = 0
    return big
