"""EvaluateTracking: the tracking stage against ground-truth boxes in the OTB layout.

Input (``--data-root DIR``): ``<seq>/img/0001.jpg ...`` and ``<seq>/groundtruth.txt`` with
one ``x,y,w,h`` line per frame (commas, tabs or spaces; OTB's ``groundtruth_rect.txt`` is
accepted too). Each sequence is evaluated two ways:

- **windows**, as mining uses the tracker: ``pipeline.tracking.track`` from the ground-truth
  box for ``track_length`` frames, a window started every ``window_stride`` (10) frames.
  Per sequence and overall: ``success`` (share of windows whose final IoU > 0.5), ``kept``
  (share the stage keeps) and ``precision`` (share of kept windows with final IoU > 0.5):
  how far the stage's validity checks can be trusted; ``reasons``: windows per drop reason;
- **whole sequence**: KCF at the tracking scale from the first box to the end, the
  precision at 20 px (share of frames whose box centre is within 20 px of the truth, the
  OTB precision plot's usual point) and the mean IoU.

The floor, ``kcf_native_dt0``: plain OpenCV KCF at native resolution with
``detect_thresh`` 0, on the same windows and frames, scored by the same code (it keeps every
window, so its precision is its success).

Output (``--out-dir DIR``): ``<out>/<seq>.txt`` (the whole-sequence boxes, one ``x,y,w,h``
line per frame), ``metrics.md`` (the table) and ``metrics.json`` (written last: the task's
completion marker; the floor under ``kcf_native_dt0``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.tracking import TrackingConfig, follow, iou, track
from tasks.common import EvaluationTask, config_from_params, stage_params

log = logging.getLogger(__name__)
GT_NAMES = ("groundtruth.txt", "groundtruth_rect.txt")


def read_boxes(path: Path) -> NDArray[np.float64]:
    """(T, 4) x, y, w, h per line; unparsable or empty lines become NaN rows."""
    rows = []
    for line in path.read_text().splitlines():
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        try:
            rows.append([float(v) for v in parts[:4]] if len(parts) >= 4 else [np.nan] * 4)
        except ValueError:
            rows.append([np.nan] * 4)
    return np.array(rows, np.float64).reshape(-1, 4)


def find_sequences(root: Path) -> dict[str, tuple[list[Path], NDArray[np.float64]]]:
    """seq -> (frame JPEGs sorted by name, ground-truth boxes)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (OTB layout expected)")
    seqs = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        gt = next((d / n for n in GT_NAMES if (d / n).is_file()), None)
        frames = sorted((d / "img").glob("*.jpg")) + sorted((d / "img").glob("*.png"))
        if gt is None or not frames:
            log.warning("%s: skipped (needs img/*.jpg and one of %s)", d, GT_NAMES)
            continue
        boxes = read_boxes(gt)
        n = min(len(frames), len(boxes))
        seqs[d.name] = (frames[:n], boxes[:n])
    if not seqs:
        raise FileNotFoundError(f"{root}: no <seq>/img/*.jpg + <seq>/groundtruth.txt found")
    return seqs


def _valid(b: NDArray[np.float64]) -> bool:
    return bool(np.isfinite(b).all() and b[2] > 0 and b[3] > 0)


def _load(paths: list[Path]) -> Iterator[NDArray[np.uint8]]:
    for p in paths:
        img = imaging.decode_jpeg(p.read_bytes())
        yield img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)


BASELINE = "kcf_native_dt0"  # metrics.json key of the floor


def baseline_config(cfg: TrackingConfig) -> TrackingConfig:
    """The floor: plain OpenCV KCF at native resolution with ``detect_thresh`` 0 (no
    rescaling; its validity checks are not used: plain KCF keeps every window)."""
    return dataclasses.replace(cfg, track_box=0, detect_thresh=0.0)


def _window_metrics(finals: list[float], kept: list[bool]) -> dict[str, float]:
    fin, kp = np.array(finals, np.float64), np.array(kept, bool)
    return {
        "windows": len(fin),
        "success": float(np.mean(fin > 0.5)) if len(fin) else float("nan"),
        "kept": float(kp.mean()) if len(kp) else float("nan"),
        "precision": float(np.mean(fin[kp] > 0.5)) if kp.any() else float("nan"),
    }


def _whole_metrics(
    pred: NDArray[np.float64], gt: NDArray[np.float64], first: int
) -> dict[str, float]:
    ok = np.array([_valid(g) for g in gt]) & (np.arange(len(gt)) >= first)
    centre = lambda b: b[:, :2] + b[:, 2:] / 2  # noqa: E731
    dist = np.linalg.norm(centre(pred[ok]) - centre(gt[ok]), axis=1)
    ious = [iou(p, g) for p, g in zip(pred[ok], gt[ok], strict=True)]
    return {
        "precision_20px": float(np.mean(dist <= 20.0)) if len(dist) else float("nan"),
        "mean_iou": float(np.mean(ious)) if ious else float("nan"),
    }


def evaluate_sequence(
    frames: list[Path], gt: NDArray[np.float64], cfg: TrackingConfig, stride: int
) -> tuple[dict[str, Any], dict[str, Any], NDArray[np.float64]]:
    """Window + whole-sequence metrics of one sequence for the stage and for the floor
    (:func:`baseline_config`, same windows and frames), and the stage's predicted boxes."""
    L = cfg.track_length
    base_cfg = baseline_config(cfg)
    finals, kept, base_finals = [], [], []
    reasons: Counter[str] = Counter()
    for start in range(0, len(frames) - L, stride):
        if not (_valid(gt[start]) and _valid(gt[start + L])):
            continue
        window = np.stack(list(_load(frames[start : start + L + 1])))
        r = track(window, gt[start], cfg)
        finals.append(iou(r.boxes[-1], gt[start + L]))
        kept.append(r.kept)
        reasons[r.reason] += 1
        base_finals.append(iou(follow(iter(window), gt[start], base_cfg)[-1], gt[start + L]))
    first = next(i for i in range(len(gt)) if _valid(gt[i]))
    pred = np.full((len(frames), 4), np.nan)
    pred[first:] = follow(_load(frames[first:]), gt[first], cfg)
    base_pred = np.full((len(frames), 4), np.nan)
    base_pred[first:] = follow(_load(frames[first:]), gt[first], base_cfg)
    m = {
        "frames": len(frames),
        **_window_metrics(finals, kept),
        **_whole_metrics(pred, gt, first),
        "reasons": dict(sorted(reasons.items())),
    }
    base = {
        "frames": len(frames),
        **_window_metrics(base_finals, [True] * len(base_finals)),
        **_whole_metrics(base_pred, gt, first),
    }
    return m, base, pred


@stage_params(TrackingConfig)
class EvaluateTracking(EvaluationTask):
    """Tracking stage vs OTB-layout ground truth -> predictions, metrics.json, metrics.md."""

    data_root = luigi.Parameter(description="OTB-layout folder: <seq>/img, <seq>/groundtruth.txt")
    out_dir = luigi.Parameter(description="where predictions, metrics.json and the table go")
    window_stride = luigi.IntParameter(default=10, description="frames between window starts")

    def run(self) -> None:
        cfg: TrackingConfig = config_from_params(self, TrackingConfig)
        root, out = Path(self.data_root), Path(self.out_dir)
        seqs = find_sequences(root)
        out.mkdir(parents=True, exist_ok=True)
        per_seq: dict[str, dict[str, Any]] = {}
        base_seq: dict[str, dict[str, Any]] = {}
        for k, (name, (frames, gt)) in enumerate(seqs.items()):
            self.set_status_message(f"{name} ({k + 1}/{len(seqs)})")
            self.set_progress_percentage(round(100 * k / len(seqs), 1))
            m, base, pred = evaluate_sequence(frames, gt, cfg, int(self.window_stride))
            per_seq[name], base_seq[name] = m, base
            lines = [",".join(f"{v:.2f}" for v in b) for b in pred]
            (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
        overall, base_overall = _overall(per_seq), _overall(base_seq)
        table = [
            f"Stage (`track`, its checks) beside the floor `{BASELINE}` (plain OpenCV KCF at "
            "native resolution, detect_thresh 0, every window kept), same windows and frames.",
            "",
            "| sequence | method | frames | windows | success | kept | precision (kept) "
            "| prec@20px | mIoU | drops |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = [(n, m, base_seq[n]) for n, m in per_seq.items()]
        for name, m, b in [*rows, ("**overall**", overall, base_overall)]:
            drops = ", ".join(f"{r} {c}" for r, c in m["reasons"].items() if r != "ok")
            for method, x in (("stage", m), (BASELINE, b)):
                table.append(
                    f"| {name} | {method} | {x['frames']} | {x['windows']} | {x['success']:.3f} "
                    f"| {x['kept']:.3f} | {x['precision']:.3f} | {x['precision_20px']:.3f} "
                    f"| {x['mean_iou']:.3f} | {drops if method == 'stage' else ''} |"
                )
        (out / "metrics.md").write_text("\n".join(table) + "\n")
        result = {
            "data_root": str(root),
            "params": self.to_str_params(only_significant=True),
            "sequences": per_seq,
            "overall": overall,
            BASELINE: {"sequences": base_seq, "overall": base_overall},
        }
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(
            f"EvaluateTracking wrote {out / 'metrics.json'}, {out / 'metrics.md'} "
            f"and predicted boxes {out}/<seq>.txt"
        )


def _overall(per_seq: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Window metrics pooled over all windows; whole-sequence metrics averaged per frame."""
    ms = list(per_seq.values())
    w = np.array([m["windows"] for m in ms], np.float64)
    f = np.array([m["frames"] for m in ms], np.float64)

    def pooled(key: str, weights: NDArray[np.float64]) -> float:
        vals = np.array([m[key] for m in ms], np.float64)
        ok = np.isfinite(vals) & (weights > 0)
        return float(np.average(vals[ok], weights=weights[ok])) if ok.any() else float("nan")

    kept_w = w * np.nan_to_num(np.array([m["kept"] for m in ms], np.float64))
    reasons: Counter[str] = Counter()
    for m in ms:
        reasons.update(m.get("reasons", {}))
    return {
        "frames": int(f.sum()),
        "windows": int(w.sum()),
        "success": pooled("success", w),
        "kept": pooled("kept", w),
        "precision": pooled("precision", kept_w),
        "precision_20px": pooled("precision_20px", f),
        "mean_iou": pooled("mean_iou", f),
        "reasons": dict(sorted(reasons.items())),
    }
