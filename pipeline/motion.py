"""Camera-motion-compensated motion filtering (IDT / Wang & Gupta 2015, DESIGN 4.2).

Per analysed frame t (every ``frame_step`` frames, working scale ``frame_height`` = 448):

1. SURF Fast-Hessian points of frame t (:mod:`pipeline.surf`).
2. Camera motion as in IDT's ``DenseTrackStab``: matches are the SURF points plus up to
   1000 Shi-Tomasi corners, each carried to t+1 by dense optical flow, balanced over a grid;
   a seeded robust homography (least-median by default, RANSAC with 1 px as in IDT on
   request) is used only with > 50 matches and > 25 inliers, else identity.
3. A SURF point *moves* if its displacement minus the homography's exceeds 0.5 px.
4. The frame is kept if 25%..75% of its SURF points move.
5. The 227x227 box holding the most moving points (integral image of a count map) is the
   frame's candidate seed.

A pre-filter runs first on every analysed pair: dense flow on 64-px-high thumbnails, a
least-squares global affine motion removed, and the share of pixels still moving. Static
stretches, pure camera motion (share ~0) and all-moving stretches (share ~1) skip the
expensive analysis. Shot cuts come from luma thumbnails of every frame (:func:`is_cut`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.decoded import thumbnail as thumbnail  # re-exported: callers import it here
from pipeline.surf import SurfConfig, detect

log = logging.getLogger(__name__)

FlowMethod = Literal["dis", "farneback"]
_RANSAC = {
    "ransac": cv2.RANSAC,
    "lmeds": cv2.LMEDS,
    "magsac": cv2.USAC_MAGSAC,
    "accurate": cv2.USAC_ACCURATE,
}
_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class MotionConfig:
    """Every number of DESIGN 4.2, with its source."""

    frame_height: int = 448  # Wang & Gupta 2015: frames analysed at 448 px high
    box_size: int = 227  # seed box side at frame_height (the networks' 227 input)
    frame_step: int = 10  # analyse every 10th frame: 3 candidates per min_seed_gap (speed)
    surf_threshold: float = 200.0  # IDT's SURF hessianThreshold on 0..255 grey levels
    surf_octaves: int = 4  # IDT: SurfFeatureDetector(200) in OpenCV 2.4, nOctaves=4
    surf_layers: int = 2  # ... and nOctaveLayers=2 (OpenCV >= 3 defaults to 3: 1.35x slower)
    flow_method: str = "dis"  # "dis" (2.5 ms/pair at 448x600) or "farneback" (IDT, ~50 ms)
    dis_preset: str = "fast"  # DIS preset; "fast" keeps background error ~0.1 px
    max_corners: int = 1000  # IDT MatchFromFlow: up to 1000 Shi-Tomasi corners
    corner_quality: float = 0.001  # IDT goodFeaturesToTrack qualityLevel
    corner_min_distance: float = 3.0  # IDT goodFeaturesToTrack minDistance
    match_grid: int = 8  # at most 1/grid^2 of the matches per cell (0: IDT, unbalanced)
    ransac_threshold: float = 1.0  # IDT findHomography reprojection threshold (px)
    min_matches: int = 50  # IDT: use the homography only with > 50 matches
    min_inliers: int = 25  # IDT: ... and > 25 RANSAC inliers
    ransac_seed: int = 0  # cv2.setRNGSeed before RANSAC: same input, same homography
    # "lmeds" (default) | "ransac" (IDT) | "magsac" | "accurate" (cv2.USAC_*). Measured on
    # synthetic clips: with a 1 px threshold, an object moving < 2 px/frame lets RANSAC pick
    # a model within 1 px of both object and background (more inliers), so the background
    # "moves"; least-median picks the majority, the background (> 50% of balanced matches).
    ransac_method: str = "lmeds"
    moving_threshold: float = 0.5  # Wang & Gupta 2015: compensated motion > 0.5 px moves
    # Plane + parallax, for the box only: a translating camera over a 3-D scene makes static
    # points off the homography's plane "move" (parallax), but they stay on their epipolar
    # lines. The box goes where the moving points also this far (px) from their epipolar
    # line (RANSAC fundamental matrix of the balanced matches) are densest, when they
    # are at least min_off_epipolar of the moving points (else F absorbed the object, as
    # when it moves along the epipolar lines, and the box uses every moving point). DAVIS
    # dev: box on the object in 58/70 analysed frames with the homography alone, 68/70 with
    # this (docs/mining.md). 0: the homography alone (IDT).
    epipolar_threshold: float = 0.5
    min_off_epipolar: float = 0.1  # synthetic clips where F absorbs the object: <= 0.02
    # Frame kept if >= 10% of SURF points move (Wang & Gupta 2015: 25%). DAVIS dev, every
    # 5th frame analysed: 0.25 keeps 34 frames, 30 with the box on the object; 0.1 keeps 58,
    # 54 on it (objects of 2-12% of the frame hold 10-25% of the points; docs/mining.md) ...
    min_moving_fraction: float = 0.1
    max_moving_fraction: float = 0.75  # ... and <= 75% (else camera/background motion)
    min_points: int = 8  # fewer SURF points cannot give a meaningful moving share
    prefilter: bool = True  # skip pairs the thumbnail test calls static or all-moving
    prefilter_height: int = 64  # thumbnail height: flow costs ~0.4 ms there
    prefilter_motion_px: float = 0.15  # residual thumbnail px (~1 px at 448) that "moves"
    prefilter_min_fraction: float = 0.003  # below: nothing moves besides the camera
    # above: everything moves. Synthetic objects scored <= 0.55, but real ones (DAVIS dev,
    # camera motion with parallax is not affine) up to 0.94; all-moving clips 0.7-0.99
    prefilter_max_fraction: float = 0.95
    cut_ncc: float = 0.4  # thumbnails of consecutive frames correlating less: a shot cut
    track_length: int = 30  # Wang & Gupta 2015: tracks of 30 frames; no seed closer to an end
    min_seed_gap: int = 30  # seeds at least a track apart: pairs from one video differ
    max_seeds_per_video: int = 20  # caps one long video's share of the dataset

    def __post_init__(self) -> None:
        if self.flow_method not in ("dis", "farneback"):
            raise ValueError(f"flow_method must be 'dis' or 'farneback', got {self.flow_method!r}")
        if self.ransac_method not in _RANSAC:
            raise KeyError(f"ransac_method {self.ransac_method!r}; valid: {sorted(_RANSAC)}")
        if self.dis_preset not in _DIS_PRESETS:
            raise KeyError(f"dis_preset {self.dis_preset!r}; valid: {sorted(_DIS_PRESETS)}")
        if not 0 < self.box_size <= self.frame_height:
            raise ValueError(f"box_size must be in (0, frame_height], got {self.box_size}")
        if self.frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {self.frame_step}")
        if not 0 <= self.min_moving_fraction <= self.max_moving_fraction <= 1:
            raise ValueError("need 0 <= min_moving_fraction <= max_moving_fraction <= 1")

    @property
    def surf(self) -> SurfConfig:
        return SurfConfig(self.surf_threshold, self.surf_octaves, self.surf_layers)


@dataclass(frozen=True)
class FrameMotion:
    """Result of one analysed pair (t, t+1), in working-scale pixels."""

    kept: bool
    reason: str  # "ok", "few_points", "too_few_moving", "too_many_moving"
    n_points: int
    n_moving: int
    n_matches: int
    n_inliers: int  # 0 when the homography was not used
    homography: NDArray[np.float64]  # (3, 3), identity when rejected
    box: tuple[float, float, float, float]  # (x, y, w, h) best box (zeros if none)
    n_in_box: int  # moving points inside the box
    points: NDArray[np.float32] = field(repr=False)  # (N, 2) SURF points
    moving: NDArray[np.bool_] = field(repr=False)  # (N,)
    # moving points also off their epipolar line (-1: not computed); the box used only them
    # when they were at least min_off_epipolar of n_moving
    n_off_epipolar: int = -1

    @property
    def moving_fraction(self) -> float:
        return self.n_moving / self.n_points if self.n_points else 0.0


class DenseFlow:
    """Dense optical flow between grey frames: (H, W) uint8 x 2 -> (H, W, 2) float32."""

    def __init__(self, method: str = "dis", preset: str = "fast") -> None:
        self.method = method
        self._dis = (
            cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])  # type: ignore[attr-defined]
            if method == "dis"
            else None
        )

    def __call__(self, g0: NDArray[np.uint8], g1: NDArray[np.uint8]) -> NDArray[np.float32]:
        if self._dis is not None:
            return np.asarray(self._dis.calc(g0, g1, None), np.float32)
        # IDT's Farneback settings: pyramid 0.5 (sqrt2-ish), window 10 would be IDT's custom
        # polynomial code; OpenCV's closest: 3 levels, winsize 15, 3 iterations, poly 5/1.2.
        return np.asarray(
            cv2.calcOpticalFlowFarneback(g0, g1, None, 0.5, 3, 15, 3, 5, 1.2, 0), np.float32
        )


def to_grey(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _sample(flow: NDArray[np.float32], pts: NDArray[np.float32]) -> NDArray[np.float32]:
    """Flow at the nearest pixel of each point (IDT reads flow at cvRound(x, y))."""
    h, w = flow.shape[:2]
    xi = np.clip(np.rint(pts[:, 0]).astype(np.intp), 0, w - 1)
    yi = np.clip(np.rint(pts[:, 1]).astype(np.intp), 0, h - 1)
    return flow[yi, xi]


def _fit_affine(
    src: NDArray[np.float64], dst: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Least-squares 2-D affine (3, 2) and residual norms, refitted on the better half."""
    a = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    m = np.linalg.lstsq(a, dst, rcond=None)[0]
    res = np.linalg.norm(a @ m - dst, axis=1)
    keep = res <= np.median(res)  # one trimmed refit: moving objects are the minority
    if keep.sum() >= 6:
        m = np.linalg.lstsq(a[keep], dst[keep], rcond=None)[0]
        res = np.linalg.norm(a @ m - dst, axis=1)
    return m, res


def _balanced(
    pts: NDArray[np.float32], h: int, w: int, grid: int, per_cell: int
) -> NDArray[np.intp]:
    """Indices of at most ``per_cell`` points per cell of a grid x grid partition, in input
    order (corners come strongest first). grid <= 0 keeps everything."""
    if grid <= 0 or len(pts) == 0:
        return np.arange(len(pts))
    cx = np.clip((pts[:, 0] * grid / w).astype(np.intp), 0, grid - 1)
    cy = np.clip((pts[:, 1] * grid / h).astype(np.intp), 0, grid - 1)
    cell = cy * grid + cx
    order = np.argsort(cell, kind="stable")
    sorted_cell = cell[order]
    starts = np.searchsorted(sorted_cell, sorted_cell, side="left")
    rank = np.arange(len(order)) - starts  # position of each point within its cell
    return np.sort(order[rank < per_cell])


def prefilter_score(
    t0: NDArray[np.uint8], t1: NDArray[np.uint8], flow: DenseFlow, cfg: MotionConfig
) -> float:
    """Share of thumbnail pixels whose flow departs from the global affine motion."""
    f = flow(t0, t1)
    h, w = t0.shape
    ys, xs = np.mgrid[2 : h - 2 : 2, 2 : w - 2 : 2]  # skip the borders, where flow is poor
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    dst = src + f[ys.ravel(), xs.ravel()].astype(np.float64)
    _, res = _fit_affine(src, dst)
    return float(np.mean(res > cfg.prefilter_motion_px))


def prefilter_pass(score: float, cfg: MotionConfig) -> bool:
    return cfg.prefilter_min_fraction <= score <= cfg.prefilter_max_fraction


def is_cut(t0: NDArray[np.uint8], t1: NDArray[np.uint8], cfg: MotionConfig) -> bool:
    """A shot cut between two consecutive thumbnails: their correlation collapses.

    (Plain numpy: ~15 us here, against ~1.4 ms for cv2.matchTemplate, whose Intel IPP path in
    OpenCV 4.12 is slow on small images.)"""
    a = t0.ravel().astype(np.float32)
    b = t1.ravel().astype(np.float32)
    a -= a.mean()
    b -= b.mean()
    den = float(np.sqrt(float(a.dot(a)) * float(b.dot(b))))
    if den < 1e-3:  # flat frames (fades to black): a cut only if the level jumps
        return abs(float(t0.mean()) - float(t1.mean())) > 20
    return float(a.dot(b)) / den < cfg.cut_ncc


def best_box(
    points: NDArray[np.float32], height: int, width: int, box: int
) -> tuple[tuple[float, float, float, float], int]:
    """The box x box window holding the most points, centred on the points it holds.

    Counts come from an integral image of the point-count map, so this is O(H W).
    Returns ((x, y, w, h), count); a frame narrower than the box gets the whole frame.
    """
    bw, bh = min(box, width), min(box, height)
    if len(points) == 0:
        return (0.0, 0.0, float(bw), float(bh)), 0
    counts = np.zeros((height, width), np.float64)
    xi = np.clip(points[:, 0].astype(np.intp), 0, width - 1)
    yi = np.clip(points[:, 1].astype(np.intp), 0, height - 1)
    np.add.at(counts, (yi, xi), 1)
    ii = cv2.integral(counts, sdepth=cv2.CV_64F)
    sums = ii[bh:, bw:] - ii[:-bh, bw:] - ii[bh:, :-bw] + ii[:-bh, :-bw]  # top-left grid
    best = float(sums.max())
    ys, xs = np.nonzero(sums == best)
    y0, x0 = int(ys[0]), int(xs[0])
    # Any maximal window holds the same points; centre the box on their bounding box (it
    # still holds them all, and the frame clamp cannot push them out: they are inside it).
    px, py = points[:, 0], points[:, 1]
    inside = (xi >= x0) & (xi < x0 + bw) & (yi >= y0) & (yi < y0 + bh)
    cx = (float(px[inside].min()) + float(px[inside].max())) / 2
    cy = (float(py[inside].min()) + float(py[inside].max())) / 2
    x0 = int(np.clip(round(cx - bw / 2), 0, width - bw))
    y0 = int(np.clip(round(cy - bh / 2), 0, height - bh))
    return (float(x0), float(y0), float(bw), float(bh)), int(best)


def analyse_pair(
    g0: NDArray[np.uint8], g1: NDArray[np.uint8], flow: DenseFlow, cfg: MotionConfig
) -> FrameMotion:
    """Motion analysis of grey frames t, t+1 ((H, W) uint8 at working scale)."""
    if g0.shape != g1.shape or g0.ndim != 2 or g0.dtype != np.uint8:
        raise ValueError(f"expected two equal (H, W) uint8 frames, got {g0.shape}, {g1.shape}")
    h, w = g0.shape
    kp = detect(g0, cfg.surf)
    pts = kp.xy
    eye = np.eye(3)
    if len(pts) < cfg.min_points:
        return FrameMotion(
            False, "few_points", len(pts), 0, 0, 0, eye, (0.0, 0.0, 0.0, 0.0), 0,
            pts, np.zeros(len(pts), bool),
        )  # fmt: skip
    f = flow(g0, g1)
    corners = cv2.goodFeaturesToTrack(
        g0, cfg.max_corners, cfg.corner_quality, cfg.corner_min_distance
    )
    corners = np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2)
    src = np.concatenate([pts, corners]).astype(np.float32)
    dst = src + _sample(f, src)
    # IDT masks humans out of the homography fit; without a detector, a textured object
    # can own most corners and win RANSAC. Balancing matches over a grid keeps the fit on
    # the background, which covers most cells.
    sel = _balanced(src, h, w, cfg.match_grid, max(len(src) // max(cfg.match_grid, 1) ** 2, 1))
    hom, n_inliers = eye, 0
    if len(sel) > cfg.min_matches:
        cv2.setRNGSeed(cfg.ransac_seed)
        est, mask = cv2.findHomography(
            src[sel], dst[sel], _RANSAC[cfg.ransac_method], cfg.ransac_threshold
        )
        inl = int(mask.sum()) if mask is not None else 0
        if est is not None and inl > cfg.min_inliers:
            hom, n_inliers = np.asarray(est, np.float64), inl
    p = np.concatenate([pts, np.ones((len(pts), 1), np.float32)], axis=1).astype(np.float64)
    proj = p @ hom.T
    proj = proj[:, :2] / proj[:, 2:3]
    residual = np.linalg.norm(dst[: len(pts)].astype(np.float64) - proj, axis=1)
    moving = residual > cfg.moving_threshold
    n_moving = int(moving.sum())
    frac = n_moving / len(pts)
    if frac < cfg.min_moving_fraction:
        reason = "too_few_moving"
    elif frac > cfg.max_moving_fraction:
        reason = "too_many_moving"
    else:
        reason = "ok"
    box_points = moving
    n_off = -1
    # The box only matters on kept frames, so the fundamental matrix is fitted only there.
    # RANSAC at epipolar_threshold: LMEDS costs ~130 ms per 1000 matches here, RANSAC ~15.
    if reason == "ok" and cfg.epipolar_threshold > 0 and n_inliers and len(sel) >= 8:
        cv2.setRNGSeed(cfg.ransac_seed)
        f, _ = cv2.findFundamentalMat(
            src[sel], dst[sel], cv2.FM_RANSAC, cfg.epipolar_threshold, 0.99
        )
        if f is not None and f.shape == (3, 3):
            dist = _epipolar_distance(np.asarray(f, np.float64), pts, dst[: len(pts)])
            off = moving & (dist > cfg.epipolar_threshold)
            n_off = int(off.sum())
            if n_off >= cfg.min_off_epipolar * n_moving:
                box_points = off
    box, n_in = best_box(pts[box_points], h, w, cfg.box_size)
    return FrameMotion(
        reason == "ok", reason, len(pts), n_moving, len(sel), n_inliers, hom, box, n_in,
        pts, moving, n_off,
    )  # fmt: skip


def _epipolar_distance(
    f: NDArray[np.float64], src: NDArray[np.floating], dst: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Distance (px) of each dst point to the epipolar line F src of its source point."""
    p1 = np.concatenate([src, np.ones((len(src), 1))], axis=1).astype(np.float64)
    p2 = np.concatenate([dst, np.ones((len(dst), 1))], axis=1).astype(np.float64)
    lines = p1 @ f.T
    return np.asarray(
        np.abs((p2 * lines).sum(axis=1)) / np.sqrt(lines[:, 0] ** 2 + lines[:, 1] ** 2 + 1e-12)
    )
