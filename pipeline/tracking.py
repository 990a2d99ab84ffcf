"""KCF tracking of motion seeds into (A, A') pairs (Wang & Gupta 2015, DESIGN 4.3).

``track(frames, box, cfg)`` follows the seed box with OpenCV's KCF for ``track_length``
frames and decides whether the pair is valid from evidence rather than KCF's own flag
(OpenCV's KCF reports failure whenever its peak falls under 0.5, which happens on many
good tracks, and then freezes):

* ``left_frame``: some box has less than ``min_inside`` of the seed box's area inside the
  frame (OpenCV clips its box at the border, so it shrinks as the object leaves), or KCF
  lost the object (see ``kcf_lost``) while its box touched the border;
* ``box_collapsed``: KCF's box shrank under 1 px (OpenCV's KCF does this when its window
  slides off a small, fast target): the run stops there, the last box is held;
* ``kcf_lost``: KCF froze for the last ``max_frozen`` frames (see below);
* ``fb_fail`` (``backward`` "kcf"): tracking back from the last frame to the seed
  frame ends with IoU < ``min_fb_iou`` with the seed box (forward-backward consistency). The
  backward pass runs only when the forward track is not already dropped as ``left_frame`` /
  ``kcf_lost`` (those reasons come first; ``fb_iou`` is then NaN), unless
  ``backward_on_dropped``;
* ``drift`` (off by default: ``max_drift`` inf): KCF's box slid more than ``max_drift``
  box sides against the Median-Flow of the points inside it (``pipeline.median_flow``):
  KCF lagging a fast target or sliding onto the background, which forward and backward KCF
  do alike. It needs a box that is mostly object: on the dev tracking windows (tight truth
  boxes) it is the best check measured, but mining's 227 boxes are mostly background, whose
  points stay while KCF follows the object (docs/mining.md);
* ``low_confidence``: the tracked patch's colours change abruptly between two frames
  (histogram intersection < ``min_step_similarity``): an occluder or a jump to another
  object. Colour histograms, not pixel correlation: a one-pixel shift of a fine texture at
  tracking scale flips its correlation, while its colours stay put. The same test between
  the first and last patch (``min_end_similarity``) catches slow drift onto background,
  which a forward-backward check misses when both directions drift alike;
* ``appearance``: A (grey, 32 px) matches nowhere in A' (its box grown by 1/8 a side,
  40 px) with a correlation of ``min_end_match`` or more: a swap to a look-alike or a box
  that slid off, with the target's colours. Shift-tolerant, as a few pixels' lag of a fine
  texture flips a plain correlation (on-object synthetic tracks score -0.3 to 0.3 plain,
  0.6 to 0.95 matched);
* ``near_copy``: A' is nearly identical to A, or A's box did not change by the A' frame
  (grey NCC at 32 px > ``max_copy_ncc``): no new view.

Cost: OpenCV's KCF works on a window twice the box, halves the image when that window
exceeds 80x80 px, and does not pad its FFTs (a 227 box means 227-point DFTs, a prime); in
this OpenCV build its DFTs also go through Intel IPP, which costs ~1 ms per 64x64 DFT, so
KCF runs with IPP off (:func:`no_ipp`: ~20x faster per update). Frames are scaled so the box
is ``track_box`` px and boxes are mapped back. 64 px (a 128 window, halved to 64 = 2^6):
on the real dev windows (docs/mining.md) 0.863 success and 0.929 kept precision against
0.838 and 0.911 at 96 px, at ~75% of the time; on sub-pixel synthetic motion 96 px did
better (10/10 tracks on the object against 8/10 for 32-80 px).

``kcf_lost`` is the one reason taken from KCF's flag, and only when the box has been frozen
(every update flagged failed) for the last ``max_frozen`` frames: then A' is not where the
object is at the A' frame, whatever the other checks say.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.imaging import crop_resize
from pipeline.kcf import SCALE_MODES, Kcf, no_ipp, run
from pipeline.median_flow import FlowConfig
from pipeline.track_checks import colour_hist, end_match, inside_fraction, iou, ncc, target_box

__all__ = [
    "TrackResult",
    "TrackingConfig",
    "colour_hist",
    "follow",
    "inside_fraction",
    "iou",
    "ncc",
    "no_ipp",
    "target_box",
    "track",
]

log = logging.getLogger(__name__)
BACKWARD_MODES = ("kcf", "none")
TRACK_TARGETS = ("moving", "box")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackingConfig:
    track_length: int = 30  # Wang & Gupta 2015: A' is 30 frames after A
    track_box: int = 64  # KCF box (px) while tracking: window 128, halved by OpenCV to 64
    # ... but a box smaller than track_box is enlarged at most this much (upsampling adds no
    # detail, and a 16 px box in a 1920x1080 frame would mean 11520x6480 frames)
    max_upscale: float = 2.0
    # KCF's peak threshold. OpenCV's 0.5 makes KCF freeze (no move, no model update) at its
    # first weak peak; 0 lets it follow through weak peaks (the validity checks judge).
    detect_thresh: float = 0.0
    max_frozen: int = 10  # trailing updates KCF flagged failed (box frozen) before "kcf_lost"
    # "kcf": track back with KCF from the last frame and drop on a back-tracked box off the
    # seed box (issue 3's forward-backward check). "none": no backward pass (half the KCF
    # updates; on the dev windows kept 0.855 at precision 0.858 against 0.731 at 0.925).
    backward: str = "kcf"
    min_fb_iou: float = 0.5  # forward-backward: back-tracked box vs seed box (issue 3)
    # Median-Flow (Kalal 2010) points in the box: drop when KCF's box slid this many box
    # sides against the points inside it (KCF lagging or sliding onto the background).
    # inf (off) by default: mining's 227 boxes are mostly background (see the docstring).
    max_drift: float = float("inf")
    # best grey correlation of A within A' under this: A' is not the object A shows (a swap
    # to a look-alike, or a box slid onto the background). -1: off (the checks before).
    min_end_match: float = 0.2
    # "none": KCF's fixed-size box (Wang & Gupta 2015). "flow": the box's size follows the
    # Median-Flow scale of the points inside it (KCF keeps the centre): on the dev windows
    # 0.711 success against 0.749 (a growing motorcycle followed, a sprinter's limbs not).
    scale_mode: str = "none"
    # What mining's KCF follows: "moving", the moving points' own box inside the seed box
    # (seeds v2 target_*; A and A' are still the seed box, moved with it), or "box", the
    # 227 seed box itself (Wang & Gupta 2015), mostly background for a small object.
    track_target: str = "moving"
    min_inside: float = 0.75  # every box keeps this share of the seed area inside the frame
    min_step_similarity: float = 0.5  # colour-histogram overlap of consecutive tracked patches
    min_end_similarity: float = 0.4  # ... of the seed patch and the last one: slow drift
    hist_bins: int = 4  # per channel (4^3 = 64 bins): coarse enough for 40 px patches
    max_copy_ncc: float = 0.95  # A' correlating more with A: no new view
    patch_size: int = 96  # Wang & Gupta 2015 / Wang, He & Gupta 2017 patch side
    jpeg_quality: int = 90  # stored crops: visually lossless, ~5 KB each
    # Track back only if the forward track is not already dropped (left_frame, kcf_lost):
    # the reason cannot change and it saves half the KCF updates. True: always (for tuning).
    backward_on_dropped: bool = False

    def __post_init__(self) -> None:
        if self.track_length < 1:
            raise ValueError(f"track_length must be >= 1, got {self.track_length}")
        if self.track_box != 0 and not 8 <= self.track_box <= 512:
            raise ValueError(f"track_box must be 0 (native) or in [8, 512], got {self.track_box}")
        if self.max_upscale < 1.0:
            raise ValueError(f"max_upscale must be >= 1, got {self.max_upscale}")
        if not 0.0 <= self.detect_thresh <= 1.0:
            raise ValueError(f"detect_thresh must be in [0, 1], got {self.detect_thresh}")
        if self.backward not in BACKWARD_MODES:
            raise KeyError(f"backward {self.backward!r}: expected one of {BACKWARD_MODES}")
        if self.track_target not in TRACK_TARGETS:
            raise KeyError(f"track_target {self.track_target!r}: expected one of {TRACK_TARGETS}")
        if self.scale_mode not in SCALE_MODES:
            raise KeyError(f"scale_mode {self.scale_mode!r}: expected one of {SCALE_MODES}")
        if not self.max_drift > 0:
            raise ValueError(f"max_drift must be > 0 (inf: off), got {self.max_drift}")

    @property
    def flow(self) -> FlowConfig | None:
        """Median-Flow settings, or None when no check or scale needs the points."""
        if math.isinf(self.max_drift) and self.scale_mode == "none":
            return None
        return FlowConfig()

    def scale(self, box: Sequence[float]) -> float:
        """Frame scale that makes ``box`` (x, y, w, h) ``track_box`` px on its longer side
        (enlarging at most ``max_upscale``); 1 when ``track_box`` is 0 (native)."""
        if self.track_box == 0:
            return 1.0
        return min(self.track_box / max(float(box[2]), float(box[3])), self.max_upscale)


@dataclass(frozen=True)
class TrackResult:
    """Boxes are (x, y, w, h) in the input frames' pixels."""

    boxes: NDArray[np.float64]  # (track_length + 1, 4): seed box, then KCF's boxes
    patch_boxes: NDArray[np.float64]  # (track_length + 1, 4): A's box moved with them
    back_box: Box  # the backward track's box in the seed frame (NaN: not tracked back)
    fb_iou: float  # NaN without a backward pass (backward "none", or already dropped)
    drift: float  # Median-Flow drift of KCF's box, in seed box sides (NaN: not measured)
    end_match: float  # best grey correlation of A (32 px) within A' (see end_match)
    kcf_failures: int  # forward updates OpenCV's KCF flagged as failed
    frozen_tail: int  # trailing forward updates flagged failed (box frozen since)
    min_inside: float  # smallest in-frame area of a box over the seed box's area
    min_step_similarity: float  # smallest colour-histogram overlap of consecutive patches
    end_similarity: float  # colour-histogram overlap of the first and last tracked patches
    copy_ncc: float  # max NCC of A with A', and of A with A's box at the A' frame
    kept: bool
    # "ok", "left_frame", "box_collapsed", "kcf_lost", "fb_fail", "drift", "low_confidence",
    # "appearance", "near_copy"
    reason: str
    crop_a: NDArray[np.uint8]  # (patch_size, patch_size, 3) RGB
    crop_b: NDArray[np.uint8]

    @property
    def confidence(self) -> float:
        """The weakest colour similarity (step or end) x (1 - drift) x fb_iou, each where
        measured, in [0, 1]; 0 for a track dropped before the checks (left the frame, lost,
        collapsed)."""
        if self.reason in ("left_frame", "kcf_lost", "box_collapsed"):
            return 0.0
        c = min(self.min_step_similarity, self.end_similarity)
        if not np.isnan(self.drift):
            c *= max(0.0, 1.0 - self.drift)
        if not np.isnan(self.fb_iou):
            c *= self.fb_iou
        return float(min(max(c, 0.0), 1.0))


def _scale_frames(frames: Sequence[NDArray[np.uint8]], s: float) -> list[NDArray[np.uint8]]:
    h, w = frames[0].shape[:2]
    size = (max(int(round(w * s)), 1), max(int(round(h * s)), 1))
    if size == (w, h):
        return [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    # Bilinear, not area: 10x cheaper (0.15 vs 1.5 ms per 448x600 frame) and measured the
    # same on 8 synthetic 448x600 tracks (8/8 ending on the object, same IoUs +-0.05).
    return [
        cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2BGR)
        for f in frames
    ]


def _moved(patch: Sequence[float], boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    """(T, 4) ``patch`` moved with the centre of ``boxes`` (T, 4) and scaled with its size."""
    c = boxes[:, :2] + boxes[:, 2:] / 2
    k = boxes[:, 2:] / boxes[0, 2:]
    size = np.asarray(patch[2:], np.float64) * k
    centre = np.asarray(patch[:2], np.float64) + np.asarray(patch[2:], np.float64) / 2
    return np.concatenate([centre + (c - c[0]) - size / 2, size], axis=1)


def follow(
    frames: Iterable[NDArray[np.uint8]], box: Sequence[float], cfg: TrackingConfig
) -> NDArray[np.float64]:
    """KCF over a whole sequence, one frame at a time (bounded memory), at the tracking scale.

    frames: (H, W, 3) uint8 RGB, the first one holding ``box``. Returns (T, 4) boxes in the
    input pixels, the first being ``box``; a failed update keeps the previous box, and after
    a collapse (see :class:`pipeline.kcf.Kcf`) the last box is held to the end.
    """
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box {tuple(box)} has no area")
    s = cfg.scale(box)
    out: list[Box] = []
    kcf: Kcf | None = None
    for f in frames:
        small = _scale_frames([f], s)[0]
        if kcf is None:
            kcf = Kcf(small, (x * s, y * s, w * s, h * s), cfg.detect_thresh)
            out.append(kcf.box)
        else:
            out.append(kcf.update(small)[0])
    boxes = np.array(out, np.float64).reshape(-1, 4) / s
    if len(boxes):
        boxes[0] = (x, y, w, h)
    return boxes


def track(
    frames: NDArray[np.uint8] | Sequence[NDArray[np.uint8]],
    box: Sequence[float],
    cfg: TrackingConfig,
    patch: Sequence[float] | None = None,
) -> TrackResult:
    """Track ``box`` from frames[0] through frames[track_length].

    frames: (T, H, W, 3) uint8 RGB, as one array or a sequence of (H, W, 3) frames (no
    stacking copy), with T >= track_length + 1 (extra frames are ignored); box: (x, y, w, h)
    in frames[0]'s pixels. ``patch``: the box whose crops are A and A' (mining's 227 seed box
    when ``box`` is its :func:`target_box`), moved and scaled with the tracked box; default
    ``box``. The checks judge the tracked box.
    """
    if isinstance(frames, np.ndarray):
        shape: tuple[int, ...] = frames.shape[1:] if frames.ndim == 4 else ()
        ok = frames.dtype == np.uint8
    else:
        shape = frames[0].shape if len(frames) else ()
        ok = all(f.shape == shape and f.dtype == np.uint8 for f in frames)
    if not ok or len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8 RGB, got {len(frames)} x {shape}")
    n = cfg.track_length + 1
    if len(frames) < n:
        raise ValueError(f"need {n} frames for track_length={cfg.track_length}, got {len(frames)}")
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box {tuple(box)} has no area")
    height, width = shape[:2]
    s = cfg.scale(box)
    small = _scale_frames(list(frames[:n]), s)
    seed_s: Box = (x * s, y * s, w * s, h * s)
    fw = run(small, seed_s, cfg.detect_thresh, cfg.flow, cfg.scale_mode)
    fwd, flags, collapsed = fw.boxes, fw.flags, fw.collapsed
    frozen = len(flags) - (max((i + 1 for i, ok in enumerate(flags) if ok), default=0))
    boxes = np.array(fwd, np.float64) / s
    boxes[0] = (x, y, w, h)
    # OpenCV clips its box to the image, so a box shrinking against the border is the sign
    # of an object leaving: compare with the seed box's area, not the box's own.
    min_in = min(inside_fraction(b, width, height, w * h) for b in boxes)
    bx, by, bw, bh = boxes[-1]
    at_edge = bx <= 1 or by <= 1 or bx + bw >= width - 1 or by + bh >= height - 1
    left = min_in < cfg.min_inside or ((frozen >= cfg.max_frozen or collapsed) and at_edge)
    lost = frozen >= cfg.max_frozen
    back_box: Box = (float("nan"),) * 4
    fb_iou = float("nan")
    if cfg.backward == "kcf" and (cfg.backward_on_dropped or not (left or lost or collapsed)):
        # the same scale mode: a grown box must shrink back to the seed's size
        flow_back = cfg.flow if cfg.scale_mode == "flow" else None
        back = run(small[::-1], fwd[-1], cfg.detect_thresh, flow_back, cfg.scale_mode).boxes
        fb_iou = iou(back[-1], fwd[0])
        back_box = tuple(float(v) / s for v in back[-1])  # type: ignore[assignment]
    # Colour similarity of consecutive tracked patches at tracking scale (cheap).
    hists = [
        colour_hist(crop_resize(f, b, cfg.track_box or 96), cfg.hist_bins)
        for f, b in zip(small, fwd, strict=True)
    ]
    step_sim = min(
        float(np.minimum(p, q).sum()) for p, q in zip(hists[:-1], hists[1:], strict=True)
    )
    patches = boxes if patch is None else _moved(patch, boxes)
    crop_a = crop_resize(frames[0], patches[0], cfg.patch_size)
    crop_b = crop_resize(frames[n - 1], patches[-1], cfg.patch_size)
    # "No new view": A' looks like A, or nothing changed inside A's box at the A' frame (a
    # static scene; the tracker's box may still wobble by a pixel). Compared at 32 px grey so
    # that a sub-pixel shift of a fine texture does not hide a copy.
    grey32 = [
        np.asarray(cv2.cvtColor(crop_resize(f, b, 32), cv2.COLOR_RGB2GRAY))
        for f, b in ((frames[0], boxes[0]), (frames[n - 1], boxes[-1]), (frames[n - 1], boxes[0]))
    ]
    copy_ncc = max(ncc(grey32[0], grey32[1]), ncc(grey32[0], grey32[2]))
    match = end_match(frames[n - 1], boxes[-1], grey32[0])
    end_sim = float(np.minimum(hists[0], hists[-1]).sum())
    if left:
        reason = "left_frame"  # shrank against the border, or lost while touching it
    elif collapsed:
        reason = "box_collapsed"
    elif lost:
        reason = "kcf_lost"
    elif fb_iou < cfg.min_fb_iou:
        reason = "fb_fail"
    elif fw.drift > cfg.max_drift:
        reason = "drift"  # KCF's box slid against the points inside it
    elif step_sim < cfg.min_step_similarity or end_sim < cfg.min_end_similarity:
        reason = "low_confidence"
    elif match < cfg.min_end_match:
        reason = "appearance"  # A' does not look like A: a swap, or the box slid off
    elif copy_ncc > cfg.max_copy_ncc:
        reason = "near_copy"
    else:
        reason = "ok"
    return TrackResult(
        boxes=boxes,
        patch_boxes=patches,
        back_box=back_box,
        fb_iou=fb_iou,
        drift=fw.drift,
        end_match=match,
        kcf_failures=flags.count(False),
        frozen_tail=frozen,
        min_inside=min_in,
        min_step_similarity=step_sim,
        end_similarity=end_sim,
        copy_ncc=copy_ncc,
        kept=reason == "ok",
        reason=reason,
        crop_a=crop_a,
        crop_b=crop_b,
    )
