"""Segment a whole video (or frame sequence) shot by shot with uNLC, in bounded memory.

`segment_video(path, ...)` makes two passes over the file:

1. stream every frame, shrunk to the detector width, through the shot detector
   (`pipeline.shots`); only the list of cuts is kept;
2. per shot, decode just the frames uNLC reads (<= `max_shot`, at longer side <=
   `max_side`), segment them, judge every frame (`pipeline.pruning`) and yield one
   :class:`ShotOutcome`; the caller writes it and drops it before the next shot.

So memory is bounded by one shot of <= 110 frames whatever the video length (measured:
tests/pipeline/test_segmentation.py). `segment_sequence` does the same for frames already
in memory (e.g. a DAVIS sequence).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline import pruning, refinement, shots, unlc
from pipeline.video_io import Backend, VideoReader

log = logging.getLogger(__name__)

Status = Literal["segmented", "rejected", "skipped"]
MAX_SIDE = 650  # run_full.py maxSide: frames with longer side <= 650

# Named presets: field values that replace our defaults ("ours" is the defaults). videoseg is
# the authors' algorithm (src/nlc.py, run_full.py); docs/segmentation.md gives dev-set
# figures of each departure beside it. slic_scale stays ours (speed, same masks: bench).
PRESETS: dict[str, dict[str, Mapping[str, Any]]] = {
    "ours": {"unlc": {}, "prune": {}},
    "videoseg": {
        "unlc": {
            "saliency_mode": "dominant",  # 20-bin dominant direction, not a homography
            "flow_dir_centred": False,  # np.histogram(range=(-pi, pi)) bin edges
            "min_dominant_share": 0.5,  # numDomFTh
            "min_peak_flow": 0.0,  # no peak-saliency rejection in the original
            "min_peak_angle": 0.0,
            "saliency_norm": "shot",
            "saliency_border": 0.125,  # flowBdd
            "restart": 0.0,  # plain votes <- W votes
            "flow_size": 100,  # flowSz
        },
        "prune": {
            "min_fg": 0.10,  # Pathak 2017: foreground under 10% of the frame dropped
            "confident_positive": 0.7,  # every score > posTh is a trimap positive
            "colour_refine": False,  # masks as uNLC made them, no colour test
        },
    },
}


def apply_preset(
    name: str, unlc_cfg: unlc.UnlcConfig, prune_cfg: pruning.PruneConfig
) -> tuple[unlc.UnlcConfig, pruning.PruneConfig]:
    """The configs with preset `name`'s values in place of our defaults; a field that was
    set to anything but its default (an explicit override) keeps its value."""
    if name not in PRESETS:
        raise KeyError(f"unknown uNLC preset {name!r}; valid: {sorted(PRESETS)}")
    out: list[Any] = []
    for cfg, values in ((unlc_cfg, PRESETS[name]["unlc"]), (prune_cfg, PRESETS[name]["prune"])):
        base = type(cfg)()
        keep = {k: v for k, v in values.items() if getattr(cfg, k) == getattr(base, k)}
        out.append(dataclasses.replace(cfg, **keep))
    return out[0], out[1]


@dataclass(frozen=True)
class FrameMask:
    index: int  # frame index in the video / sequence
    frame: NDArray[np.uint8]  # (H, W, 3) RGB at the segmentation size
    soft: NDArray[np.float32]  # (H, W) in [0, 1]
    verdict: pruning.FrameVerdict


@dataclass(frozen=True)
class ShotOutcome:
    shot: shots.Shot
    status: Status
    reason: str = ""  # short code when rejected / skipped
    detail: str = ""
    frames: list[FrameMask] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_kept(self) -> int:
        return sum(f.verdict.kept for f in self.frames)


def fit_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) scaled so the longer side is <= max_side (never enlarged)."""
    s = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * s))), max(1, int(round(width * s)))


def _resize(frames: NDArray[np.uint8], hw: tuple[int, int]) -> NDArray[np.uint8]:
    if frames.shape[1:3] == hw:
        return frames
    out = np.empty((len(frames), *hw, 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    return out


def segment_shots(
    plan: Sequence[shots.Shot],
    read: Callable[[NDArray[np.int64]], NDArray[np.uint8]],
    unlc_cfg: unlc.UnlcConfig,
    prune_cfg: pruning.PruneConfig,
) -> Iterator[ShotOutcome]:
    """Segment each planned shot; `read(indices)` returns those frames (n, H, W, 3) RGB."""
    prune_cfg.validate()
    for shot in plan:
        if shot.skipped:
            code, _, detail = shot.reason.partition(": ")
            yield ShotOutcome(shot, "skipped", code, detail)
            continue
        frames = read(shot.indices)
        res = unlc.segment_shot(frames, unlc_cfg)
        if isinstance(res, unlc.ShotRejected):
            log.info("shot %d [%d, %d) rejected: %s", shot.index, shot.start, shot.stop, res.detail)
            yield ShotOutcome(shot, "rejected", res.reason, res.detail, stats=res.stats)
            continue
        band = pruning.border_mask(frames.shape[1], frames.shape[2], prune_cfg.border_band)
        out = []
        for i, idx in enumerate(shot.indices):
            soft = res.soft_mask(i)
            verdict = pruning.judge_frame(soft, prune_cfg, band)  # on uNLC's own scores
            if verdict.kept and prune_cfg.colour_refine:
                soft, verdict = refinement.refine_frame(frames[i], soft, verdict, prune_cfg)
            soft = pruning.confident_positives(soft, prune_cfg)
            out.append(FrameMask(int(idx), frames[i], soft, verdict))
        yield ShotOutcome(shot, "segmented", frames=out, stats=res.stats)


def segment_sequence(
    frames: NDArray[np.uint8],
    shot_cfg: shots.ShotConfig,
    unlc_cfg: unlc.UnlcConfig,
    prune_cfg: pruning.PruneConfig,
    max_side: int = MAX_SIDE,
) -> Iterator[ShotOutcome]:
    """Frames in memory (n, H, W, 3) uint8 RGB -> outcomes per shot (shot detection per
    `shot_cfg.detect_shots`)."""
    hw = fit_size(frames.shape[1], frames.shape[2], max_side)
    cuts, n = (
        shots.detect_cuts(iter(frames), shot_cfg) if shot_cfg.detect_shots else ([], len(frames))
    )
    plan = shots.plan_shots(cuts, n, shot_cfg)
    yield from segment_shots(plan, lambda idx: _resize(frames[idx], hw), unlc_cfg, prune_cfg)


def segment_video(
    path: str | Path,
    shot_cfg: shots.ShotConfig,
    unlc_cfg: unlc.UnlcConfig,
    prune_cfg: pruning.PruneConfig,
    max_side: int = MAX_SIDE,
    backend: Backend = "auto",
) -> Iterator[ShotOutcome]:
    """Stream a video file shot by shot (two passes, see the module docstring), read with
    ``backend`` (the one FetchVideos recorded)."""
    with VideoReader(path, backend=backend) as probe_reader:
        src_h, src_w = probe_reader.source_size
        n_frames = len(probe_reader)
    if shot_cfg.detect_shots and n_frames > 1:
        det_w = min(shot_cfg.detect_width, src_w)
        with VideoReader(path, width=det_w, backend=backend) as r:
            cuts, n_seen = shots.detect_cuts((f for _, f in r.iter_frames()), shot_cfg)
        if n_seen != n_frames:
            log.warning("%s: %d frames indexed but %d decoded", path, n_frames, n_seen)
            n_frames = min(n_frames, n_seen)
    else:
        cuts = []
    plan = shots.plan_shots(cuts, n_frames, shot_cfg)
    h, w = fit_size(src_h, src_w, max_side)
    with VideoReader(path, height=h, width=w, backend=backend) as reader:
        yield from segment_shots(plan, reader.get_batch, unlc_cfg, prune_cfg)


def mask_overlay(
    frame: NDArray[np.uint8], soft: NDArray[np.floating], prune_cfg: pruning.PruneConfig
) -> NDArray[np.uint8]:
    """(H, W, 3) RGB view of a mask in the style of Pathak et al. 2017 Fig. 6: the frame
    greyed and dimmed, foreground (trimap positive) tinted red, the ignore band yellow."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    base = np.repeat((grey * 0.5 + 64.0)[:, :, None], 3, axis=2)
    tri = pruning.trimap(soft, prune_cfg)
    fg = tri == pruning.TRIMAP_FG
    ign = tri == pruning.TRIMAP_IGNORE
    base[fg] = 0.4 * base[fg] + 0.6 * np.array([255.0, 0.0, 0.0], np.float32)
    base[ign] = 0.6 * base[ign] + 0.4 * np.array([255.0, 220.0, 0.0], np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)
