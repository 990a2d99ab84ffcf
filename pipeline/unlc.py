"""uNLC: unsupervised motion segmentation of one shot (Pathak et al. 2017, DESIGN 4.4).

The authors' videoseg code (`src/nlc.py`, `src/run_full.py`) runs Faktor & Irani's
non-local consensus voting seeded by motion saliency instead of appearance saliency.
Steps and defaults (all in :class:`UnlcConfig`):

1. motion saliency against the +-3 neighbours (`pipeline.saliency`): ours (issue 11) the
   flow left after removing the camera's homography, at 200 x 200, seeds normalised per
   frame; videoseg's (``saliency_mode="dominant"``, the ``videoseg`` preset of
   `pipeline.segmentation.PRESETS`) the deviation from a static camera or a dominant
   direction at 100 x 100, normalised per shot;
   a shot where no frame (issue 4; or, with `min_dominant_share` = 0.5, the original's
   `numDomFTh`, fewer than half its frames) has a dominant motion is **rejected** (the original fell
   back to appearance saliency there, which gave empty masks), and so is a shot
   whose peak saliency stays under `min_peak_flow` (static camera, px^2) or
   `min_peak_angle` (moving camera, rad^2): nothing moves against the camera, a static
   scene or a pure pan;
2. ~400 SLIC superpixels per frame and their 176-d descriptors (`pipeline.superpixels`);
3. a sparse graph: each superpixel's 62 exact nearest neighbours (faiss `IndexFlatL2`)
   among the superpixels of frames within +-15, weights exp(-d^2 / 0.1), self weight 1,
   rows normalised (scipy CSR; a dense matrix would be ~15 GB per shot);
4. votes start at each superpixel's mean saliency (saliency upsampled, a 12.5% border
   zeroed, divided by its maximum); 50 iterations of `votes <- (1 - r) W votes + r seeds`
   (r = `restart`, 0.3; videoseg 0), each
   followed by division by the frame's maximum; after every 10 iterations, blobs above 0.7
   whose mean is under 0.6 go to 0.175 (binTh / 4). Note: as in the original, a blob of
   pixels above 0.7 cannot have a mean under 0.6, so with these defaults that clean-up never
   changes anything; it is kept (and skipped cheaply) so the parameters stay meaningful;
5. finally, blobs smaller than 60% of the frame's largest go to just under 0.7, the
   trimap's ignore band.

Graph, voting and blob steps live in `pipeline.consensus`; this module holds the
configuration and runs the steps on one shot (`segment_shot`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from pipeline import saliency as sal
from pipeline import superpixels as spx
from pipeline.consensus import (
    clear_low_energy_blobs,
    demote_minor_blobs,
    knn_graph,
    normalise_per_frame,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnlcConfig:
    # motion saliency: "homography" (ours) removes the camera's motion with a homography
    # fitted to the flow (IDT's camera model); "dominant" is videoseg's nlc.compute_saliency
    saliency_mode: sal.SaliencyMode = "homography"
    saliency_grid: int = 16  # homography fitted to the flow sampled every 16 px (~144 points)
    saliency_ransac_threshold: float = 1.0  # px at flow_size (LMEDS ignores it)
    # homography mode: a pair counts only when the homography explains (within
    # saliency_ransac_threshold px) this share of the grid, the background's majority;
    # else it is skipped, as videoseg skips pairs without a dominant direction
    saliency_min_explained: float = 0.5
    saliency_power: float = 1.0  # deviation = residual px (squared: dev IoU 0.22 vs 0.27)
    flow_size: int = 200  # ours (videoseg flowSz 100): dev-set objects are 2-15% of the
    # frame, 15-40 px at 100x100; at 200 saliency alone scored IoU 0.34 vs 0.27 (docs)
    flow_radius: int = 3  # flowF: flow to the +-3 neighbouring frames
    flow_mag_threshold: float = 1.0  # flowMagTh: median flow < 1 px -> static camera
    flow_dir_threshold: float = 0.75  # flowDirTh: one orientation bin > 75% -> dominant
    flow_dir_bins: int = 20  # flowDirBins=20 as nlc() calls it
    flow_dir_centred: bool = True  # ours: bins centred on the axes (see pipeline.saliency)
    saliency_box: int = 5  # patchSz: 5x5 box filter on the deviation map
    saliency_border: float = 0.125  # flowBdd=12.5: border (of the shorter side) zeroed
    min_dominant_share: float = 0.0  # issue 4: reject only when no frame has a dominant
    # motion; the original videoseg used numDomFTh = 0.5 (set 0.5 to reproduce it)
    # ours: the peak saliency a shot needs, else it is rejected. The two saliencies have
    # different units, so each has its threshold. Measured on 120x160 synthetic shots (3
    # seeds each, sensor noise 2-5): no object, static camera 0.002-0.01 px^2; an object at
    # 0.15-0.5 px/frame 0.5-2.5 px^2; pure pans 0.001-0.02 rad^2 (the demo's 448x600 pan
    # 0.34); an object over a pan 1.2-9.9 rad^2.
    min_peak_flow: float = 0.1  # static camera: peak squared flow, px^2 at flow_size
    min_peak_angle: float = 1.0  # moving camera: peak squared angle to the dominant direction
    # homography mode: peak residual flow (px at flow_size 200, 5x5 box-filtered). Measured
    # on 120x160 synthetic shots (noise 2-5): no object, static or panning camera 0.12-0.37;
    # an object at 0.25-0.5 px/frame 1.4-2.1, over a pan 6.6-9.8.
    min_peak_residual: float = 0.8
    # superpixels and descriptors (nlc.superpixels / compute_descriptor)
    n_superpixels: int = 400  # maxsp=400 in run_full.py
    slic_compactness: float = 10.0  # skimage slic default compactness the original used
    slic_sigma: float = 5.0  # slic(..., sigma=5): pre-smoothing
    slic_iterations: int = 10  # OpenCV's default SLIC iteration count
    slic_min_size_pct: int = 25  # OpenCV enforceLabelConnectivity default (% of region)
    slic_scale: float = 0.5  # ours: SLIC on the half-size frame, ~4x cheaper (bench_unlc)
    patch: int = 15  # spPatch: 15x15 window per superpixel
    hog_bins: int = 6  # hogBins
    hog_cell: int = 5  # 15 / sqrt(hogCells=9): 5 px cells, 3x3 cells in one block
    hog_norm: Literal["L1", "L2-Hys"] = "L1"  # skimage's default block norm in 2017
    colour_bins: int = 20  # colBins: six 20-bin RGB/LAB histograms
    # graph (nlc.compute_nn / normalize_nn)
    knn: int = 62  # M = L * (2F + 1) with L=2, F=15
    knn_radius: int = 15  # F: neighbours among frames within +-15
    sigma2: float = 0.1  # normalize_nn(sigma=sqrt(0.1)): weight exp(-d^2 / 0.1)
    # consensus voting (nlc.nlc / consensus_vote / remove_low_energy_blobs)
    iterations: int = 50  # iters=50 in run_full.py
    # ours: votes <- (1 - r) W votes + r seeds (a random walk with restart; 0 = videoseg's
    # plain votes <- W votes, which after 50 steps spreads over look-alike background)
    restart: float = 0.3
    # ours: seeds / their frame's maximum (videoseg: the shot's); one fast frame no longer
    # silences the slow ones
    saliency_norm: Literal["shot", "frame"] = "frame"
    cleanup_every: int = 10  # 5 mini-batches of iters / 5
    blob_threshold: float = 0.7  # binTh
    blob_min_energy: float = 0.6  # relEnergy = binTh - 0.1
    blob_target: float = 0.175  # binTh / 4
    minor_blob_rel_size: float = 0.6  # relSize: final blobs < 60% of the largest demoted
    minor_blob_value: float = 0.7 - 1e-5  # binTh - 1e-5: just under the positive threshold
    faiss_threads: int = 0  # 0 keeps faiss's default (all cores)

    def validate(self) -> None:
        if self.flow_size < 16 or self.flow_radius < 1 or self.saliency_box < 1:
            raise ValueError("flow_size >= 16, flow_radius >= 1 and saliency_box >= 1 needed")
        if not 0 <= self.saliency_border < 0.5:
            raise ValueError(f"saliency_border must be in [0, 0.5), got {self.saliency_border}")
        if self.patch % self.hog_cell:
            raise ValueError(f"patch {self.patch} must be a multiple of hog_cell {self.hog_cell}")
        if self.knn < 1 or self.knn_radius < 0 or self.iterations < 0 or self.cleanup_every < 1:
            raise ValueError("knn >= 1, knn_radius >= 0, iterations >= 0, cleanup_every >= 1")
        if not 0 <= self.min_dominant_share <= 1 or not 0 < self.slic_scale <= 1:
            raise ValueError("min_dominant_share in [0, 1] and slic_scale in (0, 1] needed")
        if self.n_superpixels < 2 or self.sigma2 <= 0:
            raise ValueError("n_superpixels >= 2 and sigma2 > 0 needed")


@dataclass(frozen=True)
class ShotRejected:
    """A shot uNLC refuses to segment; `reason` is a short code, `detail` says why."""

    reason: str
    detail: str
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ShotSegmentation:
    """uNLC result for a shot of n frames of size (H, W).

    labels: (n, H, W) int32 superpixel labels, 0..K_i-1 per frame.
    offsets: (n + 1,) int64; frame i owns superpixels offsets[i]:offsets[i + 1] of votes.
    votes: (N,) float32 final soft score per superpixel, in [0, 1].
    init_votes: (N,) float32 normalised mean saliency per superpixel (the seeds).
    stats: step timings (`t_<step>` seconds) and counts.
    """

    labels: NDArray[np.int32]
    offsets: NDArray[np.int64]
    votes: NDArray[np.float32]
    init_votes: NDArray[np.float32]
    stats: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def soft_mask(self, i: int) -> NDArray[np.float32]:
        """(H, W) float32 soft foreground score of frame i, in [0, 1]."""
        return self.votes[self.offsets[i] : self.offsets[i + 1]][self.labels[i]]

    def saliency_mask(self, i: int) -> NDArray[np.float32]:
        """(H, W) float32 initial (saliency) votes of frame i, for inspection."""
        return self.init_votes[self.offsets[i] : self.offsets[i + 1]][self.labels[i]]


def _saliency_rejection(ms: sal.MotionSaliency, cfg: UnlcConfig) -> ShotRejected | None:
    n = len(ms.maps)
    stats = {
        "n_frames": float(n),
        "dominant_frames": float(ms.dominant_frames.sum()),
        "static_pairs": float(ms.n_static_pairs),
        "translate_pairs": float(ms.n_translate_pairs),
    }
    n_dom = int(ms.dominant_frames.sum())
    if n_dom == 0 or n_dom < cfg.min_dominant_share * n:
        return ShotRejected(
            "no_dominant_motion",
            f"{n_dom} of {n} frames have a static camera or a dominant motion direction "
            f"(> {cfg.flow_dir_threshold:.0%} of the flow in one of {cfg.flow_dir_bins} bins); "
            f"{cfg.min_dominant_share:.0%} needed",
            stats,
        )
    b = sal.border_width(cfg.flow_size, cfg.flow_size, cfg.saliency_border)
    inner = ms.maps[:, b : cfg.flow_size - b, b : cfg.flow_size - b]
    peak = float(inner.max()) if inner.size else 0.0
    stats["peak_saliency"] = peak
    moving_camera = ms.n_translate_pairs > 0
    if cfg.saliency_mode == "homography":
        limit, unit = cfg.min_peak_residual, f"px^{cfg.saliency_power:g} of residual flow"
    elif moving_camera:
        limit, unit = cfg.min_peak_angle, "rad^2 to the dominant direction"
    else:
        limit, unit = cfg.min_peak_flow, "px^2 of flow"
    if peak < limit:
        what = "everything moves with the camera" if moving_camera else "static camera"
        return ShotRejected(
            "camera_motion_only" if moving_camera else "static",
            f"{what} and nothing moves against it: peak saliency {peak:.3g} {unit} "
            f"< {limit} at {cfg.flow_size}x{cfg.flow_size}",
            stats,
        )
    return None


def segment_shot(
    frames: NDArray[np.uint8], cfg: UnlcConfig = UnlcConfig()
) -> ShotSegmentation | ShotRejected:
    """Run uNLC on one shot: frames (n, H, W, 3) uint8 RGB, n >= 2."""
    cfg.validate()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be (n, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}"
        )
    n, h, w = frames.shape[:3]
    if n < 2:
        raise ValueError(f"a shot needs at least 2 frames, got {n}")
    if cfg.faiss_threads > 0:
        faiss.omp_set_num_threads(cfg.faiss_threads)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    ms = sal.motion_saliency(
        frames,
        size=cfg.flow_size,
        radius=cfg.flow_radius,
        mag_threshold=cfg.flow_mag_threshold,
        dir_threshold=cfg.flow_dir_threshold,
        dir_bins=cfg.flow_dir_bins,
        box=cfg.saliency_box,
        centred=cfg.flow_dir_centred,
        mode=cfg.saliency_mode,
        grid=cfg.saliency_grid,
        ransac_threshold=cfg.saliency_ransac_threshold,
        power=cfg.saliency_power,
        min_explained=cfg.saliency_min_explained,
    )
    t["t_flow"] = ms.flow_seconds
    t["t_saliency"] = time.perf_counter() - t0 - ms.flow_seconds
    rejected = _saliency_rejection(ms, cfg)
    if rejected is not None:
        rejected.stats.update(t)
        return rejected

    labels = np.empty((n, h, w), np.int32)
    descs: list[NDArray[np.float32]] = []
    sal_sums: list[NDArray[np.float64]] = []
    adj: list[NDArray[np.int64]] = []
    areas: list[NDArray[np.int64]] = []
    counts = np.zeros(n, np.int64)
    exclude = sal.border_width(h, w, cfg.saliency_border)
    peak = 0.0
    t_slic = t_desc = t_up = 0.0
    for i in range(n):  # frame by frame: nothing of size (n, H, W) float is ever held
        a = time.perf_counter()
        lab = spx.slic_labels(
            frames[i],
            n_segments=cfg.n_superpixels,
            compactness=cfg.slic_compactness,
            sigma=cfg.slic_sigma,
            iterations=cfg.slic_iterations,
            min_size_pct=cfg.slic_min_size_pct,
            scale=cfg.slic_scale,
        )
        labels[i] = lab
        k = int(lab.max()) + 1
        counts[i] = k
        b = time.perf_counter()
        descs.append(
            spx.describe(
                frames[i],
                lab,
                patch=cfg.patch,
                hog_bins=cfg.hog_bins,
                hog_cell=cfg.hog_cell,
                hog_norm=cfg.hog_norm,
                colour_bins=cfg.colour_bins,
            )
        )
        off = int(counts[:i].sum())
        adj.append(spx.region_adjacency(lab) + off)
        areas.append(spx.region_areas(lab, k))
        c = time.perf_counter()
        big = sal.upsample_map(ms.maps[i], h, w, exclude)
        peak = max(peak, float(big.max()))
        sal_sums.append(spx.region_means(lab, big, k))
        t_slic += b - a
        t_desc += c - b
        t_up += time.perf_counter() - c
    t["t_slic"], t["t_descriptors"] = t_slic, t_desc
    t["t_saliency"] += t_up
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    init = np.concatenate(sal_sums).astype(np.float32)
    if cfg.saliency_norm == "frame":
        normalise_per_frame(init, offsets)
    elif peak > 0:
        init /= peak  # normalise over the shot, not per frame
    adjacency = np.concatenate(adj)
    area = np.concatenate(areas)

    a = time.perf_counter()
    w_mat = knn_graph(
        np.concatenate(descs), offsets, k=cfg.knn, radius=cfg.knn_radius, sigma2=cfg.sigma2
    )
    del descs
    t["t_graph"] = time.perf_counter() - a

    a = time.perf_counter()
    votes = init.copy()
    cleared = 0
    for it in range(1, cfg.iterations + 1):
        votes = np.asarray(w_mat @ votes, np.float32)
        if cfg.restart > 0:
            votes = (1.0 - cfg.restart) * votes + cfg.restart * init
        normalise_per_frame(votes, offsets)
        if it % cfg.cleanup_every == 0:
            cleared += clear_low_energy_blobs(
                votes,
                area,
                adjacency,
                threshold=cfg.blob_threshold,
                min_energy=cfg.blob_min_energy,
                target=cfg.blob_target,
            )
    demoted = demote_minor_blobs(
        votes,
        area,
        adjacency,
        offsets,
        threshold=cfg.blob_threshold,
        rel_size=cfg.minor_blob_rel_size,
        value=cfg.minor_blob_value,
    )
    t["t_voting"] = time.perf_counter() - a
    stats = {
        **t,
        "n_frames": float(n),
        "n_superpixels": float(offsets[-1]),
        "graph_nnz": float(w_mat.nnz),
        "blobs_cleared": float(cleared),
        "blobs_demoted": float(demoted),
        "dominant_frames": float(ms.dominant_frames.sum()),
        "peak_saliency": peak,
    }
    log.debug("uNLC shot: %s", stats)
    return ShotSegmentation(
        labels=labels,
        offsets=offsets,
        votes=np.clip(votes, 0.0, 1.0).astype(np.float32),
        init_votes=init,
        stats=stats,
    )
