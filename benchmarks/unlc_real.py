"""uNLC on real footage: our defaults, the authors' preset and each departure, on a DAVIS folder.

Each variant segments every sequence of ``DIR`` (DAVIS layout: ``JPEGImages[/480p]``,
``Annotations[/480p]``) as one shot (no shot detection, <= 110 frames, longer side <= 650,
as ``EvaluateSegmentation``'s one-shot mode) and is scored by ``pipeline.mask_metrics`` on
every annotated frame: IoU of soft > 0.5; the compensated-flow floor and the centre
rectangle (``pipeline.mask_baselines``) on the same frames; the frames pruning keeps: share,
mean IoU, trimap positive precision. Seconds per frame are uNLC's alone with pruning and
the colour refinement (CPU: process time, all threads summed; faiss on one thread).

`python -m benchmarks unlc` runs it on ``$VIDEOMINE_DAVIS``, else ``../shared/devdata/davis``
(``benchmarks.devdata.davis_root``), when one exists.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.mask_baselines import centre_mask, flow_floor_masks
from pipeline.mask_metrics import TrimapCounts, score, trimap_counts
from pipeline.pruning import PruneConfig
from pipeline.segmentation import MAX_SIDE, PRESETS, apply_preset, fit_size, segment_sequence
from pipeline.shots import ShotConfig
from pipeline.unlc import UnlcConfig

Sequence = tuple[NDArray[np.uint8], NDArray[np.bool_]]  # frames (n, H, W, 3), truth (n, H, W)


def load_davis(root: Path, max_side: int = MAX_SIDE) -> dict[str, Sequence]:
    """Every sequence of a DAVIS-layout folder at the segmentation size, with its truth
    (frames without an annotation are dropped)."""
    from tasks.segment_eval import _truth, find_sequences

    out = {}
    for name, (paths, anns) in find_sequences(root).items():
        paths = [p for p in paths if p.stem in anns]
        frames = np.stack([imaging.decode_jpeg(p.read_bytes()) for p in paths])
        h, w = fit_size(frames.shape[1], frames.shape[2], max_side)
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        truth = np.stack([_truth(anns[p.stem], (h, w)) for p in paths])
        out[name] = (frames, truth)
    return out


def baselines(seqs: Mapping[str, Sequence]) -> dict[str, dict[str, float]]:
    """Mean IoU per sequence of the flow floor and the centre rectangle."""
    out: dict[str, dict[str, float]] = {"flow_floor": {}, "centre": {}}
    for name, (frames, truth) in seqs.items():
        floor = flow_floor_masks(frames)
        centre = centre_mask(*truth.shape[1:])
        out["flow_floor"][name] = float(
            np.mean([score(f, t).iou for f, t in zip(floor, truth, strict=True)])
        )
        out["centre"][name] = float(np.mean([score(centre, t).iou for t in truth]))
    return out


def evaluate(
    seqs: Mapping[str, Sequence], unlc_cfg: UnlcConfig, prune_cfg: PruneConfig
) -> dict[str, Any]:
    """One variant: per-sequence IoU, kept frames, kept IoU, trimap counts, seconds/frame."""
    shot_cfg = ShotConfig(detect_shots=False)
    per: dict[str, float] = {}
    kept_ious: list[float] = []
    counts = TrimapCounts()
    n_frames = n_kept = 0
    seconds = 0.0
    for name, (frames, truth) in seqs.items():
        t = time.process_time()
        outcomes = list(segment_sequence(frames, shot_cfg, unlc_cfg, prune_cfg))
        seconds += time.process_time() - t
        soft = {fm.index: fm for oc in outcomes for fm in oc.frames}
        ious = []
        for i, gt in enumerate(truth):
            fm = soft.get(i)
            pred = fm.soft if fm is not None else np.zeros(gt.shape, np.float32)
            ious.append(score(pred > 0.5, gt).iou)
            if fm is not None and fm.verdict.kept:
                n_kept += 1
                kept_ious.append(ious[-1])
                counts += trimap_counts(
                    pred, gt, prune_cfg.trimap_negative, prune_cfg.trimap_positive
                )
        per[name] = float(np.mean(ious))
        n_frames += len(truth)
    return {
        "per_sequence": per,
        "iou": float(np.mean(list(per.values()))),
        "kept_share": n_kept / n_frames,
        "kept_iou": float(np.mean(kept_ious)) if kept_ious else float("nan"),
        "kept_pos_precision": counts.positive_precision,
        "seconds_per_frame": seconds / n_frames,
    }


# fields that act only in the dominant-direction saliency, not in ours (homography)
_DOMINANT_ONLY = frozenset({"flow_dir_centred", "min_peak_flow", "min_peak_angle"})


def variants() -> dict[str, tuple[UnlcConfig, PruneConfig]]:
    """Our defaults, the videoseg preset, and ours with each departure set back alone."""
    ours = (UnlcConfig(faiss_threads=1), PruneConfig())
    out = {"ours (default)": ours, "videoseg preset": apply_preset("videoseg", *ours)}
    for group, key in (("unlc", 0), ("prune", 1)):
        for field, value in PRESETS["videoseg"][group].items():
            cfgs = list(ours)
            if getattr(cfgs[key], field) == value or field in _DOMINANT_ONLY:
                continue
            cfgs[key] = dataclasses.replace(cfgs[key], **{field: value})
            out[f"ours, {field} = {value!r}"] = (cfgs[0], cfgs[1])
    # the colour refinement's two parts: masks refined but every frame kept (no test)
    out["ours, min_colour_agreement = 0.0"] = (
        ours[0],
        dataclasses.replace(ours[1], min_colour_agreement=0.0),
    )
    return out


def table(seqs: Mapping[str, Sequence], quick: bool = False) -> str:
    """Markdown: one row per variant (and the two baselines), then per-sequence IoU."""
    base = baselines(seqs)
    floor = base["flow_floor"]
    chosen = variants()
    if quick:
        chosen = {k: v for k, v in chosen.items() if k in ("ours (default)", "videoseg preset")}
    results = {name: evaluate(seqs, *cfgs) for name, cfgs in chosen.items()}
    lines = [
        f"### uNLC on real footage ({len(seqs)} DAVIS sequences, one shot each, one core)",
        "",
        "| variant | mean IoU | above floor | kept frames | kept IoU | kept trimap P+ | CPU s/frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        above = sum(r["per_sequence"][s] > floor[s] for s in seqs)
        lines.append(
            f"| {name} | {r['iou']:.3f} | {above}/{len(seqs)} | {r['kept_share']:.2f} "
            f"| {r['kept_iou']:.3f} | {r['kept_pos_precision']:.3f} "
            f"| {r['seconds_per_frame']:.3f} |"
        )
    for key, label in (("flow_floor", "compensated-flow floor"), ("centre", "centre rectangle")):
        lines.append(f"| {label} | {np.mean(list(base[key].values())):.3f} | | | | | |")
    names = [n for n in ("ours (default)", "videoseg preset") if n in results]
    lines += [
        "",
        "| sequence | " + " | ".join(names) + " | floor | centre |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for s in seqs:
        cells = [f"{results[n]['per_sequence'][s]:.3f}" for n in names]
        cells += [f"{floor[s]:.3f}", f"{base['centre'][s]:.3f}"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
