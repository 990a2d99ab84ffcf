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
  of frames segmented and the share of segmented frames kept by pruning;
- ``metrics.json`` (written last: the task's completion marker) with the same numbers.

Frames without a prediction count as empty predictions (see ``pipeline.mask_metrics``).
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
from pipeline.mask_metrics import MaskScore, mean_score, score
from pipeline.pruning import PruneConfig, png8_to_soft, soft_to_png8
from pipeline.segmentation import MAX_SIDE, segment_sequence
from pipeline.shots import ShotConfig
from pipeline.unlc import UnlcConfig
from tasks.common import EvaluationTask, config_from_params, stage_params

log = logging.getLogger(__name__)
MODES = (("one_shot", False), ("shot_detection", True))


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


@stage_params(ShotConfig, UnlcConfig, PruneConfig, exclude=("detect_shots",))
class EvaluateSegmentation(EvaluationTask):
    """uNLC masks vs DAVIS-layout ground truth -> predictions, metrics.json, metrics.md."""

    data_root = luigi.Parameter(description="DAVIS-layout folder (JPEGImages, Annotations)")
    out_dir = luigi.Parameter(description="where predictions, metrics.json and the table go")
    threshold = luigi.FloatParameter(default=0.5, description="soft mask -> binary threshold")
    max_side = luigi.IntParameter(default=MAX_SIDE, description="frames' longer side (px)")

    def _evaluate(
        self, name: str, frames_p: list[Path], anns: dict[str, Path], detect: bool, pred_dir: Path
    ) -> dict[str, Any]:
        shot_cfg = config_from_params(self, ShotConfig, detect_shots=detect)
        unlc_cfg = config_from_params(self, UnlcConfig)
        prune_cfg = config_from_params(self, PruneConfig)
        frames = np.stack([imaging.decode_jpeg(p.read_bytes()) for p in frames_p])
        h, w = frames.shape[1:3]
        preds: dict[int, NDArray[np.uint8]] = {}
        kept = segmented = 0
        reasons: list[str] = []
        for oc in segment_sequence(frames, shot_cfg, unlc_cfg, prune_cfg, self.max_side):
            if oc.reason:
                reasons.append(f"shot {oc.shot.index}: {oc.reason}")
            for fm in oc.frames:
                soft8 = soft_to_png8(fm.soft)
                if soft8.shape != (h, w):
                    soft8 = cv2.resize(soft8, (w, h), interpolation=cv2.INTER_LINEAR)
                preds[fm.index] = soft8
                segmented += 1
                kept += int(fm.verdict.kept)
        del frames
        pred_dir.mkdir(parents=True, exist_ok=True)
        zeros = np.zeros((h, w), np.uint8)
        thr, pos = [], []
        for i, fp in enumerate(frames_p):
            soft8 = preds.get(i, zeros)
            (pred_dir / f"{fp.stem}.png").write_bytes(imaging.encode_png(soft8))
            if fp.stem in anns:
                truth = _truth(anns[fp.stem], (h, w))
                soft = png8_to_soft(soft8)
                thr.append(score(soft > self.threshold, truth))
                pos.append(score(soft > prune_cfg.trimap_positive, truth))
        return {
            "sequence": name,
            "frames": len(frames_p),
            "annotated": len(thr),
            "segmented_share": round(segmented / len(frames_p), 4),
            "kept_share": round(kept / segmented, 4) if segmented else 0.0,
            "soft": _as_dict(mean_score(thr)),
            "trimap_positive": _as_dict(mean_score(pos)),
            "rejections": reasons,
        }

    def run(self) -> None:
        root, out = Path(self.data_root), Path(self.out_dir)
        seqs = find_sequences(root)
        result: dict[str, Any] = {
            "data_root": str(root),
            "threshold": self.threshold,
            "params": self.to_str_params(only_significant=True),
        }
        lines = [
            "| mode | sequence | frames | segmented | kept | IoU@thr | P@thr | R@thr "
            "| IoU trimap+ | P trimap+ | R trimap+ |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, detect in MODES:
            per_seq = []
            for k, (name, (frames_p, anns)) in enumerate(seqs.items()):
                self.set_status_message(f"{mode}: {name} ({k + 1}/{len(seqs)})")
                pred_dir = out / name if mode == "one_shot" else out / mode / name
                per_seq.append(self._evaluate(name, frames_p, anns, detect, pred_dir))
            overall: dict[str, Any] = {
                key: _as_dict(mean_score([MaskScore(**s[key]) for s in per_seq if s["annotated"]]))
                for key in ("soft", "trimap_positive")
            }
            overall["kept_share"] = round(float(np.mean([s["kept_share"] for s in per_seq])), 4)
            overall["segmented_share"] = round(
                float(np.mean([s["segmented_share"] for s in per_seq])), 4
            )
            result[mode] = {"sequences": per_seq, "overall": overall}
            for s in [*per_seq, {"sequence": "**overall**", "frames": "", **overall}]:
                a, b = s["soft"], s["trimap_positive"]
                lines.append(
                    f"| {mode} | {s['sequence']} | {s['frames']} | {s['segmented_share']:.2f} "
                    f"| {s['kept_share']:.2f} | {a['iou']:.3f} | {a['precision']:.3f} "
                    f"| {a['recall']:.3f} | {b['iou']:.3f} | {b['precision']:.3f} "
                    f"| {b['recall']:.3f} |"
                )
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.md").write_text("\n".join(lines) + "\n")
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(
            f"EvaluateSegmentation wrote {out / 'metrics.json'}, {out / 'metrics.md'} and predictions under {out}"
        )
