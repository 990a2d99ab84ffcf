"""EvaluateSegmentation: uNLC against ground-truth masks in the DAVIS layout.

Input (``--data-root DIR``): ``JPEGImages[/480p]/<seq>/00000.jpg ...`` and
``Annotations[/480p]/<seq>/00000.png ...`` (non-zero = object; the ``480p`` level is
optional). Each sequence is segmented twice: as **one shot** (no shot detection, subsampled
to <= 110 frames like any shot) and **with shot detection**.

Output (``--out-dir DIR``):

- ``<out>/<seq>/<frame>.png`` (one shot) and ``<out>/shot_detection/<seq>/<frame>.png``:
  the predicted soft masks at the frame's size, 8-bit (round(255 x score)), same names as
  the frames; all zeros for frames uNLC did not segment (subsampled out, rejected shot);
- ``metrics.md``: per sequence and overall, mean IoU / precision / recall of the soft mask
  thresholded at ``threshold`` (0.5) and of the trimap's positive part (> 0.7), the share
  of frames segmented and the share of segmented frames kept by pruning; beside them the
  two baselines (``pipeline.mask_baselines``) scored by the same code on the same frames:
  the compensated-flow floor and the centre rectangle; and the quality of the **kept
  frames** (those pruning keeps for training): their count and share of the annotated
  frames, mean IoU, and the trimap's positive precision (share of pixels > 0.7 that are
  object) and negative precision (share of pixels < 0.4 that are background), pixels
  pooled over the kept frames, beside the two baselines' mean IoU on those same frames;
- ``metrics.json`` (written last: the task's completion marker) with the same numbers; the
  baselines under their own names, ``flow_floor`` and ``centre``.

``--modes one_shot`` scores the one-shot mode alone (as ``python -m benchmarks unlc``).
Frames without a prediction count as empty predictions (see ``pipeline.mask_metrics``).
``--preset videoseg`` runs the authors' algorithm (``pipeline.segmentation.PRESETS``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.mask_baselines import FlowFloorConfig, centre_mask, flow_floor_masks
from pipeline.mask_metrics import MaskScore, TrimapCounts, mean_score, score, trimap_counts
from pipeline.pruning import PruneConfig, png8_to_soft, soft_to_png8
from pipeline.segmentation import MAX_SIDE, PRESETS, apply_preset, fit_size, segment_sequence
from pipeline.shots import ShotConfig
from pipeline.unlc import UnlcConfig
from tasks.common import EvaluationTask, config_from_params, stage_params

log = logging.getLogger(__name__)
MODES = (("one_shot", False), ("shot_detection", True))
BASELINES = ("flow_floor", "centre")


def _level(root: Path, name: str) -> Path:
    base = root / name
    return base / "480p" if (base / "480p").is_dir() else base


def find_sequences(root: Path) -> dict[str, tuple[list[Path], dict[str, Path]]]:
    """seq -> (frame JPEGs sorted by name, annotation PNG by frame stem)."""
    img_dir, ann_dir = _level(root, "JPEGImages"), _level(root, "Annotations")
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{root}: no JPEGImages/ (DAVIS layout expected)")
    seqs = {}
    for d in sorted(p for p in img_dir.iterdir() if p.is_dir()):
        frames = sorted(d.glob("*.jpg")) + sorted(d.glob("*.jpeg"))
        anns = {p.stem: p for p in sorted((ann_dir / d.name).glob("*.png"))}
        if frames:
            seqs[d.name] = (sorted(frames), anns)
    if not seqs:
        raise FileNotFoundError(f"{img_dir}: no sequence folders with .jpg frames")
    return seqs


def _truth(path: Path, hw: tuple[int, int]) -> NDArray[np.bool_]:
    arr = np.asarray(imaging.decode_png(path.read_bytes()))
    m = arr.any(axis=2) if arr.ndim == 3 else arr > 0
    if m.shape != hw:
        m = cv2.resize(m.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) > 0
    return np.asarray(m)


def _as_dict(s: MaskScore) -> dict[str, float]:
    return {k: round(v, 4) for k, v in dataclasses.asdict(s).items()}


def _nan_round(v: float) -> float | None:
    return None if np.isnan(v) else round(v, 4)


def kept_summary(
    ious: list[float],
    counts: TrimapCounts,
    annotated: int,
    baselines: dict[str, list[float]],
) -> dict[str, Any]:
    """Quality of the frames pruning keeps: count, share of annotated frames, mean IoU,
    trimap positive / negative precision (pixels pooled over the kept frames), and the
    baselines' IoU on the same frames (``iou_flow_floor``, ``iou_centre``)."""
    return {
        **{f"iou_{k}": _nan_round(float(np.mean(v))) if v else None for k, v in baselines.items()},
        "frames": len(ious),
        "share": round(len(ious) / annotated, 4) if annotated else 0.0,
        "iou": _nan_round(float(np.mean(ious))) if ious else None,
        "positive_precision": _nan_round(counts.positive_precision),
        "negative_precision": _nan_round(counts.negative_precision),
        "counts": dataclasses.asdict(counts),
    }


def baseline_scores(
    frames: NDArray[np.uint8], anns: dict[str, Path], stems: list[str], max_side: int
) -> dict[str, dict[str, MaskScore]]:
    """Per annotated frame (by stem), the scores of the flow floor and the centre rectangle,
    computed at the segmentation size and scored at the frame's size like uNLC's masks."""
    h, w = frames.shape[1:3]
    sh, sw = fit_size(h, w, max_side)
    small = frames
    if (sh, sw) != (h, w):
        small = np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in frames])
    floor = flow_floor_masks(small, FlowFloorConfig())
    centre = centre_mask(h, w)
    out: dict[str, dict[str, MaskScore]] = {k: {} for k in BASELINES}
    for i, stem in enumerate(stems):
        if stem not in anns:
            continue
        truth = _truth(anns[stem], (h, w))
        fl = floor[i]
        if fl.shape != (h, w):
            fl = cv2.resize(fl.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        out["flow_floor"][stem] = score(np.asarray(fl, bool), truth)
        out["centre"][stem] = score(centre, truth)
    return out


@stage_params(ShotConfig, UnlcConfig, PruneConfig, exclude=("detect_shots",))
class EvaluateSegmentation(EvaluationTask):
    """uNLC masks vs DAVIS-layout ground truth -> predictions, metrics.json, metrics.md."""

    data_root = luigi.Parameter(description="DAVIS-layout folder (JPEGImages, Annotations)")
    out_dir = luigi.Parameter(description="where predictions, metrics.json and the table go")
    threshold = luigi.FloatParameter(default=0.5, description="soft mask -> binary threshold")
    max_side = luigi.IntParameter(default=MAX_SIDE, description="frames' longer side (px)")
    preset = luigi.ChoiceParameter(
        default="ours", choices=sorted(PRESETS), description="uNLC preset (videoseg: authors')"
    )
    modes = luigi.ChoiceListParameter(
        default=[m for m, _ in MODES],
        choices=[m for m, _ in MODES],
        description="modes to score, comma-separated (one_shot: as `benchmarks unlc`)",
    )

    def _evaluate(
        self,
        name: str,
        frames: NDArray[np.uint8],
        stems: list[str],
        anns: dict[str, Path],
        detect: bool,
        pred_dir: Path,
        base: dict[str, dict[str, MaskScore]],
    ) -> dict[str, Any]:
        shot_cfg = config_from_params(self, ShotConfig, detect_shots=detect)
        unlc_cfg, prune_cfg = apply_preset(
            self.preset, config_from_params(self, UnlcConfig), config_from_params(self, PruneConfig)
        )
        h, w = frames.shape[1:3]
        preds: dict[int, NDArray[np.uint8]] = {}
        kept_idx: set[int] = set()
        reasons: list[str] = []
        for oc in segment_sequence(frames, shot_cfg, unlc_cfg, prune_cfg, self.max_side):
            if oc.reason:
                reasons.append(f"shot {oc.shot.index}: {oc.reason}")
            for fm in oc.frames:
                soft8 = soft_to_png8(fm.soft)
                if soft8.shape != (h, w):
                    soft8 = cv2.resize(soft8, (w, h), interpolation=cv2.INTER_LINEAR)
                preds[fm.index] = soft8
                if fm.verdict.kept:
                    kept_idx.add(fm.index)
        pred_dir.mkdir(parents=True, exist_ok=True)
        zeros = np.zeros((h, w), np.uint8)
        thr, pos, kept_iou = [], [], []
        kept_base: dict[str, list[float]] = {k: [] for k in BASELINES}
        counts = TrimapCounts()
        for i, stem in enumerate(stems):
            soft8 = preds.get(i, zeros)
            (pred_dir / f"{stem}.png").write_bytes(imaging.encode_png(soft8))
            if stem in anns:
                truth = _truth(anns[stem], (h, w))
                soft = png8_to_soft(soft8)
                thr.append(score(soft > self.threshold, truth))
                pos.append(score(soft > prune_cfg.trimap_positive, truth))
                if i in kept_idx:
                    kept_iou.append(thr[-1].iou)
                    for key in BASELINES:
                        kept_base[key].append(base[key][stem].iou)
                    counts += trimap_counts(
                        soft, truth, prune_cfg.trimap_negative, prune_cfg.trimap_positive
                    )
        return {
            "sequence": name,
            "frames": len(stems),
            "annotated": len(thr),
            "segmented_share": round(len(preds) / len(stems), 4),
            "kept_share": round(len(kept_idx) / len(preds), 4) if preds else 0.0,
            "soft": _as_dict(mean_score(thr)),
            "trimap_positive": _as_dict(mean_score(pos)),
            "kept": kept_summary(kept_iou, counts, len(thr), kept_base),
            "rejections": reasons,
        }

    def run(self) -> None:
        root, out = Path(self.data_root), Path(self.out_dir)
        seqs = find_sequences(root)
        result: dict[str, Any] = {
            "data_root": str(root),
            "threshold": self.threshold,
            "preset": self.preset,
            "params": self.to_str_params(only_significant=True),
        }
        modes = [(m, d) for m, d in MODES if m in self.modes]
        per_mode: dict[str, list[dict[str, Any]]] = {m: [] for m, _ in modes}
        base: dict[str, dict[str, MaskScore]] = {k: {} for k in BASELINES}
        for k, (name, (frames_p, anns)) in enumerate(seqs.items()):
            self.set_status_message(f"{name} ({k + 1}/{len(seqs)})")
            self.set_progress_percentage(100 * k // len(seqs))
            frames = np.stack([imaging.decode_jpeg(p.read_bytes()) for p in frames_p])
            stems = [p.stem for p in frames_p]
            per_frame = baseline_scores(frames, anns, stems, self.max_side)
            for key, scores in per_frame.items():
                base[key][name] = mean_score(list(scores.values()))
            for mode, detect in modes:
                pred_dir = out / name if mode == "one_shot" else out / mode / name
                per_mode[mode].append(
                    self._evaluate(name, frames, stems, anns, detect, pred_dir, per_frame)
                )
            del frames
        for key in BASELINES:
            annotated = [n for n, s in base[key].items() if not np.isnan(s.iou)]
            result[key] = {
                "sequences": {n: _as_dict(s) for n, s in base[key].items()},
                "overall": _as_dict(mean_score([base[key][n] for n in annotated])),
            }
        for mode, per_seq in per_mode.items():
            result[mode] = {"sequences": per_seq, "overall": _overall(per_seq, base)}
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.md").write_text(metrics_table(result))
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(
            f"EvaluateSegmentation wrote {out / 'metrics.json'}, {out / 'metrics.md'} "
            f"and predictions under {out}"
        )


def _overall(
    per_seq: list[dict[str, Any]], base: dict[str, dict[str, MaskScore]]
) -> dict[str, Any]:
    scored = [s for s in per_seq if s["annotated"]]
    overall: dict[str, Any] = {
        key: _as_dict(mean_score([MaskScore(**s[key]) for s in scored]))
        for key in ("soft", "trimap_positive")
    }
    overall["kept_share"] = round(float(np.mean([s["kept_share"] for s in per_seq])), 4)
    overall["segmented_share"] = round(float(np.mean([s["segmented_share"] for s in per_seq])), 4)

    def frame_weighted(field: str) -> list[float]:
        return [s["kept"][field] for s in scored for _ in range(s["kept"]["frames"])]

    counts = TrimapCounts()
    for s in scored:
        counts += TrimapCounts(**s["kept"]["counts"])
    overall["kept"] = kept_summary(
        frame_weighted("iou"),
        counts,
        sum(s["annotated"] for s in scored),
        {k: frame_weighted(f"iou_{k}") for k in BASELINES},
    )
    floor = base["flow_floor"]
    overall["above_floor"] = sum(
        s["soft"]["iou"] > floor[s["sequence"]].iou for s in scored if s["sequence"] in floor
    )
    return overall


def _f(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def metrics_table(result: dict[str, Any]) -> str:
    """metrics.md: ours beside the two baselines per sequence, then kept-frame quality."""
    lines = [
        f"uNLC preset `{result['preset']}`; IoU of the soft mask > {result['threshold']} beside "
        "the compensated-flow floor and the centre rectangle (same frames, same scoring); "
        "kept: frames pruning keeps, their share of the annotated frames, mean IoU, trimap "
        "positive (> 0.7) and negative (< 0.4) precision.",
        "",
        "| mode | sequence | frames | segmented | IoU@thr | P@thr | R@thr | IoU floor "
        "| IoU centre | IoU trimap+ | kept | kept share | kept IoU | kept IoU floor "
        "| kept IoU centre | kept P+ | kept P- |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in (m for m, _ in MODES if m in result):
        data = result[mode]
        fl, ce = result["flow_floor"], result["centre"]
        rows = [(s, fl["sequences"].get(s["sequence"]), ce["sequences"].get(s["sequence"]))
                for s in data["sequences"]]  # fmt: skip
        ov = {"sequence": "**overall**", "frames": "", **data["overall"]}
        rows.append((ov, fl["overall"], ce["overall"]))
        for s, f, c in rows:
            a, k = s["soft"], s["kept"]
            lines.append(
                f"| {mode} | {s['sequence']} | {s['frames']} | {s['segmented_share']:.2f} "
                f"| {_f(a['iou'])} | {_f(a['precision'])} | {_f(a['recall'])} "
                f"| {_f(f['iou'] if f else None)} | {_f(c['iou'] if c else None)} "
                f"| {_f(s['trimap_positive']['iou'])} | {k['frames']} | {k['share']:.2f} "
                f"| {_f(k['iou'])} | {_f(k['iou_flow_floor'])} | {_f(k['iou_centre'])} "
                f"| {_f(k['positive_precision'])} "
                f"| {_f(k['negative_precision'])} |"
            )
        n = len(data["sequences"])
        lines.append(f"| {mode} | above the floor | {data['overall']['above_floor']}/{n} "
                     + "| " * 14 + "|")  # fmt: skip
    return "\n".join(lines) + "\n"
