"""Edge maps for region trees (Zhang & Maire 2020; Li, Paluri, Rehg & Dollar 2016).

Two sources, one result type (:class:`EdgeMap`: strength (H, W) float32 in [0, 1] and the
edge *tangent* orientation (H, W) float32 in [0, pi) radians):

- :func:`gradient_edges`, the baseline: colour gradients in CIELAB at several Gaussian
  scales (Di Zenzo structure tensor over the three channels, scale-normalised by sigma),
  the largest over scales, non-maximum suppression across the edge, and a fixed squashing
  ``m / (m + half_strength)`` so that strengths compare across images (no per-image
  normalisation: a flat image has weak edges).
- :func:`motion_edges`, motion boundaries as in Li et al. 2016: dense flow (DIS, the
  project's :class:`pipeline.motion.DenseFlow`) from t to t+1, camera motion removed with
  the IDT homography of :func:`pipeline.motion.analyse_pair`, the spatial gradient of the
  residual flow, non-maximum suppression, and only the pixels within ``snap_px`` of a SLIC
  superpixel boundary kept (a flow discontinuity that is no image boundary is flow error).
  Pairs whose flow is too small (no motion boundary to see), too large (flow unreliable) or
  too uniform (most of the frame still moves once the camera is removed: the camera model
  failed) give ``None`` and the reason in :func:`motion_edges_verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.motion import DenseFlow, MotionConfig, analyse_pair, to_grey
from pipeline.superpixels import slic_labels

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class EdgeMap:
    """strength (H, W) float32 in [0, 1]; orientation (H, W) float32 tangent angle in [0, pi)."""

    strength: F32
    orientation: F32


@dataclass(frozen=True)
class EdgeConfig:
    """Gradient-baseline and motion-edge settings (defaults: 480p DAVIS-like frames)."""

    scales: tuple[float, ...] = (1.0, 2.0, 4.0)  # Gaussian sigmas (px): fine to coarse edges
    half_strength: float = 4.0  # scale-normalised Lab gradient giving strength 0.5 (~10 L step)
    nms: bool = True  # thin edges to one pixel across (Canny-style suppression)
    # motion edges
    flow_method: str = "dis"  # the project's flow (pipeline.motion.DenseFlow)
    dis_preset: str = "medium"  # boundaries need sharper flow than camera-motion fitting
    flow_sigma: float = 1.5  # smoothing of the residual flow before its gradient (px)
    motion_half_strength: float = 0.5  # residual-flow jump (scale-normalised) giving 0.5
    min_motion_px: float = 1.0  # 99th pct of residual flow below this: too small, skipped
    max_flow_frac: float = 0.1  # 99th pct of raw flow above this x diagonal: too large
    moving_px: float = 0.5  # residual flow above this moves (Wang & Gupta 2015's 0.5 px)
    max_moving_share: float = 0.5  # more of the frame moving after compensation: too uniform
    min_moving_share: float = 0.005  # less: no object large enough to have a boundary
    snap_px: int = 2  # keep motion edges within this of a superpixel boundary (Li et al.)
    superpixels: int = 1000  # SLIC superpixels for the snap filter (~20 px side at 480p)

    def __post_init__(self) -> None:
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive sigmas, got {self.scales}")
        if self.half_strength <= 0 or self.motion_half_strength <= 0:
            raise ValueError("half_strength and motion_half_strength must be > 0")
        if not 0 <= self.min_moving_share < self.max_moving_share <= 1:
            raise ValueError("need 0 <= min_moving_share < max_moving_share <= 1")

    @property
    def motion(self) -> MotionConfig:
        return MotionConfig(flow_method=self.flow_method, dis_preset=self.dis_preset)


def _check_frame(frame: NDArray[np.uint8], name: str = "frame") -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got {frame.shape} "
                         f"{frame.dtype}")  # fmt: skip
    if min(frame.shape[:2]) < 8:
        raise ValueError(f"{name} {frame.shape[:2]} is too small for edges (< 8 px)")


def _tensor_edges(chans: F32, sigma: float) -> tuple[F32, F32]:
    """Di Zenzo gradient of (H, W, C) channels at Gaussian ``sigma``: magnitude (scale-
    normalised by sigma) and gradient direction in [0, pi)."""
    sm = cv2.GaussianBlur(chans, (0, 0), sigma)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)  # central difference
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    xs = cv2.split(gx) if gx.ndim == 3 else [gx]  # per-channel planes: summing (H, W, C)
    ys = cv2.split(gy) if gy.ndim == 3 else [gy]  # over its last axis is ~5x slower
    jxx = sum((x * x for x in xs[1:]), xs[0] * xs[0])
    jyy = sum((y * y for y in ys[1:]), ys[0] * ys[0])
    jxy = sum((x * y for x, y in zip(xs[1:], ys[1:], strict=True)), xs[0] * ys[0])
    tr, det = jxx + jyy, np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    mag = np.sqrt(np.maximum((tr + det) / 2, 0)) * sigma
    theta = (0.5 * np.arctan2(2 * jxy, jxx - jyy)) % np.pi
    return mag.astype(np.float32), theta.astype(np.float32)


def non_max_suppression(mag: F32, grad_dir: F32) -> F32:
    """Keep pixels that are maxima along the gradient direction (4 quantised directions)."""
    q = (np.round(grad_dir / (np.pi / 4)).astype(np.int64)) % 4  # 0: x, 1: diag, 2: y, 3: anti
    p = np.pad(mag, 1, mode="edge")
    h, w = mag.shape
    keep = np.zeros((h, w), bool)
    for k, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        a = p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        b = p[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (q == k) & (mag >= a) & (mag > b)
    return np.where(keep, mag, 0).astype(np.float32)


def _finish(mag: F32, grad_dir: F32, half: float, nms: bool) -> EdgeMap:
    if nms:
        mag = non_max_suppression(mag, grad_dir)
    strength = (mag / (mag + half)).astype(np.float32)
    tangent = ((grad_dir + np.pi / 2) % np.pi).astype(np.float32)
    return EdgeMap(strength, tangent)


def gradient_edges(frame: NDArray[np.uint8], cfg: EdgeConfig) -> EdgeMap:
    """Multi-scale CIELAB gradient edges of an (H, W, 3) uint8 RGB frame."""
    _check_frame(frame)
    lab = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    best = np.zeros(frame.shape[:2], np.float32)
    direction = np.zeros(frame.shape[:2], np.float32)
    h, w = frame.shape[:2]
    for s in cfg.scales:
        # Coarse scales on an area-shrunk frame (sigma <= 1.5 there): 4x / 16x fewer pixels
        # for the same Gaussian scale; sigma-normalised magnitudes need no rescaling.
        f = max(1.0, s / 1.5)
        if f > 1:
            small = cv2.resize(lab, (max(8, round(w / f)), max(8, round(h / f))),
                               interpolation=cv2.INTER_AREA)  # fmt: skip
            m_s, t_s = _tensor_edges(small, s / f)
            mag = cv2.resize(m_s, (w, h), interpolation=cv2.INTER_LINEAR)
            theta = cv2.resize(t_s, (w, h), interpolation=cv2.INTER_NEAREST)
        else:
            mag, theta = _tensor_edges(lab, s)
        better = mag > best
        best = np.where(better, mag, best)
        direction = np.where(better, theta, direction)
    return _finish(best, direction, cfg.half_strength, cfg.nms)


@dataclass(frozen=True)
class MotionVerdict:
    """Why a pair was kept or skipped, with the figures the rules looked at."""

    kept: bool
    reason: str  # "ok", "too_small", "too_large", "too_uniform"
    residual_p99: float  # px, camera motion removed
    flow_p99: float  # px, raw flow
    moving_share: float  # share of pixels whose residual flow exceeds moving_px
    homography_inliers: int  # 0: identity (too few matches), camera motion not removed


def residual_flow(
    frame_t: NDArray[np.uint8], frame_t1: NDArray[np.uint8], cfg: EdgeConfig
) -> tuple[F32, F32, int]:
    """(raw flow, flow minus the IDT homography's, inliers), flows (H, W, 2) float32."""
    _check_frame(frame_t, "frame_t")
    _check_frame(frame_t1, "frame_t1")
    if frame_t.shape != frame_t1.shape:
        raise ValueError(f"frame_t {frame_t.shape} and frame_t1 {frame_t1.shape} differ")
    g0, g1 = to_grey(frame_t), to_grey(frame_t1)
    mcfg = cfg.motion
    flow_fn = DenseFlow(mcfg.flow_method, mcfg.dis_preset)
    hom = analyse_pair(g0, g1, flow_fn, mcfg)
    flow = flow_fn(g0, g1)
    h, w = g0.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ hom.homography.T
    cam = pts[..., :2] / pts[..., 2:3] - np.stack([xs, ys], axis=-1)
    return flow, (flow - cam).astype(np.float32), hom.n_inliers


def motion_edges_verdict(
    frame_t: NDArray[np.uint8], frame_t1: NDArray[np.uint8], cfg: EdgeConfig
) -> tuple[EdgeMap | None, MotionVerdict]:
    """Motion edges of the pair (t, t+1) and the verdict; the map is None when skipped."""
    flow, res, inliers = residual_flow(frame_t, frame_t1, cfg)
    rmag = np.linalg.norm(res, axis=2)
    fmag = np.linalg.norm(flow, axis=2)
    h, w = rmag.shape
    r99, f99 = float(np.percentile(rmag, 99)), float(np.percentile(fmag, 99))
    share = float(np.mean(rmag > cfg.moving_px))
    if f99 > cfg.max_flow_frac * float(np.hypot(h, w)):
        reason = "too_large"
    elif r99 < cfg.min_motion_px or share < cfg.min_moving_share:
        reason = "too_small"
    elif share > cfg.max_moving_share:
        reason = "too_uniform"
    else:
        reason = "ok"
    verdict = MotionVerdict(reason == "ok", reason, r99, f99, share, inliers)
    if reason != "ok":
        return None, verdict
    mag, theta = _tensor_edges(res, cfg.flow_sigma)
    edges = _finish(mag, theta, cfg.motion_half_strength, cfg.nms)
    near = superpixel_boundary_band(frame_t, cfg.superpixels, cfg.snap_px)
    strength = np.where(near, edges.strength, 0).astype(np.float32)
    return EdgeMap(strength, edges.orientation), verdict


def motion_edges(
    frame_t: NDArray[np.uint8], frame_t1: NDArray[np.uint8], cfg: EdgeConfig
) -> EdgeMap | None:
    """Motion-boundary edges of frame t ((H, W, 3) uint8 RGB pair), or None if skipped."""
    return motion_edges_verdict(frame_t, frame_t1, cfg)[0]


def superpixel_boundary_band(frame: NDArray[np.uint8], n: int, radius: int) -> NDArray[np.bool_]:
    """(H, W) bool: pixels within ``radius`` px of a SLIC superpixel boundary."""
    lab = slic_labels(
        frame, n_segments=n, compactness=10, sigma=1, iterations=10, min_size_pct=25, scale=0.5
    )
    b = np.zeros(lab.shape, np.uint8)
    b[:, 1:] |= (lab[:, 1:] != lab[:, :-1]).astype(np.uint8)
    b[1:, :] |= (lab[1:, :] != lab[:-1, :]).astype(np.uint8)
    if radius > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        b = cv2.dilate(b, k)
    return np.asarray(b > 0)
