"""EvaluateMining: seeds and mined pairs against ground truth (DAVIS or OTB layout).

Input (``--data-root DIR``): a DAVIS layout (``JPEGImages[/480p]/<seq>/*.jpg`` and
``Annotations[/480p]/<seq>/*.png``: the object is a mask) or an OTB layout
(``<seq>/img/*.jpg`` and ``<seq>/groundtruth.txt``: the object is a box). Each sequence is
mined exactly as a mining run mines a video: ``tasks.mining.detect_video`` (DetectMotion)
then ``tasks.mining.track_video`` (TrackObjects), with the stages' configs taken from this
task's parameters (the same names and defaults). The video is ``<video-dir>/<seq>.mp4`` when
``--video-dir`` holds one (the dev set ships them: frame k of the mp4 = the k-th image),
else the frames encoded once into ``<out>/videos/<seq>.mp4`` at ``frame_height``.

A box is **on the object** at a frame when at least half of the object (mask pixels, or
the truth box) lies inside it, or at least half of the box is object. Per sequence and
overall (pooled over seeds):

- ``seeds``, ``seeds_on`` (share of seed boxes on the object), ``seeds_per_100_frames``;
- ``kept`` (tracks kept), ``precision`` (share of kept tracks whose A and A' are both on
  the object), ``yield`` (share of on-object seeds whose track was kept and ends on it);
- ``reasons``: tracks per drop reason (``ok`` = kept).

The floor, ``centre_box``: a box of each seed's size at the centre of the frame, seeded at
the same frames, tracked by the same ``track_video`` and scored by the same code.

Output (``--out-dir DIR``): ``seeds.png`` (every seed's frame at the working scale: seed box
green when on the object, red when not, the truth in blue; beside it the A' frame with the
track's box, labelled with the track's reason), ``metrics.md``, and ``metrics.json``
(written last: the task's completion marker).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import imaging
from pipeline.motion import MotionConfig
from pipeline.synthetic import write_video
from pipeline.tracking import TrackingConfig
from pipeline.video_io import VideoReader
from tasks import segment_eval, tracking_eval
from tasks.common import EvaluationTask, config_from_params, stage_params
from tasks.mining import detect_video, track_video

log = logging.getLogger(__name__)
FLOOR = "centre_box"  # metrics.json key of the floor
Truth = NDArray[np.bool_] | NDArray[np.float64] | None  # mask (H, W), box (4,), or absent


@dataclasses.dataclass(frozen=True)
class LabelledSequence:
    """One sequence: its frames and the truth of frame k (mask path or box)."""

    frames: list[Path]
    masks: dict[int, Path] | None  # DAVIS: frame index -> annotation PNG
    boxes: NDArray[np.float64] | None  # OTB: (T, 4) x, y, w, h (NaN: no truth)

    def truth(self, k: int) -> Truth:
        if self.boxes is not None:
            b = self.boxes[k] if k < len(self.boxes) else np.full(4, np.nan)
            return b if np.isfinite(b).all() and b[2] > 0 and b[3] > 0 else None
        p = (self.masks or {}).get(k)
        if p is None:
            return None
        arr = np.asarray(imaging.decode_png(p.read_bytes()))
        return np.asarray(arr.any(axis=2) if arr.ndim == 3 else arr > 0)


def find_sequences(root: Path) -> dict[str, LabelledSequence]:
    """DAVIS layout when ``root/JPEGImages`` exists, else OTB layout."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (DAVIS or OTB layout expected)")
    if (root / "JPEGImages").is_dir():
        out = {}
        for name, (frames, anns) in segment_eval.find_sequences(root).items():
            idx = {f.stem: k for k, f in enumerate(frames)}
            masks = {idx[stem]: p for stem, p in anns.items() if stem in idx}
            out[name] = LabelledSequence(frames, masks, None)
        return out
    return {
        n: LabelledSequence(f, None, b) for n, (f, b) in tracking_eval.find_sequences(root).items()
    }


def on_object(box: Sequence[float], truth: Truth) -> bool:
    """At least half of the object inside ``box`` (x, y, w, h), or half of the box object.
    ``truth``: an (H, W) bool mask, an (x, y, w, h) box, or None (no object: never on it)."""
    x, y, w, h = (float(v) for v in box)
    if truth is None or w <= 0 or h <= 0:
        return False
    if truth.ndim == 1:
        tx, ty, tw, th = (float(v) for v in truth)
        iw = max(0.0, min(x + w, tx + tw) - max(x, tx))
        ih = max(0.0, min(y + h, ty + th) - max(y, ty))
        inter, obj = iw * ih, tw * th
    else:
        hh, ww = truth.shape
        x0, y0 = int(np.clip(round(x), 0, ww)), int(np.clip(round(y), 0, hh))
        x1, y1 = int(np.clip(round(x + w), 0, ww)), int(np.clip(round(y + h), 0, hh))
        inter, obj = float(truth[y0:y1, x0:x1].sum()), float(truth.sum())
    return obj > 0 and (inter >= 0.5 * obj or inter >= 0.5 * w * h)


def score(
    seeds: list[dict[str, Any]], tracks: list[dict[str, Any]], seq: LabelledSequence, scale: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Counts of one sequence (pooled later) and one row per seed. ``scale`` maps the mined
    video's pixels to the truth's."""
    by_seed = {t["seed_id"]: t for t in tracks}
    rows = []
    for s in seeds:
        t = by_seed.get(s["seed_id"])
        a = [s[c] * scale for c in "xywh"]
        a_on = on_object(a, seq.truth(int(s["frame"])))
        b_on = False
        if t is not None and t["kept"]:
            b_on = on_object([t[f"b_{c}"] * scale for c in "xywh"], seq.truth(int(t["frame_b"])))
        reason = t["reason"] if t is not None else "no_track"
        rows.append({"frame": int(s["frame"]), "a_on": a_on, "b_on": b_on, "reason": reason,
                     "kept": bool(t is not None and t["kept"])})  # fmt: skip
    counts = {
        "frames": len(seq.frames),
        "seeds": len(rows),
        "seeds_on": sum(r["a_on"] for r in rows),
        "kept": sum(r["kept"] for r in rows),
        # kept tracks with A and A' on the object: precision's numerator, and yield's (an
        # on-object seed that became a kept, correct track)
        "kept_correct": sum(r["kept"] and r["a_on"] and r["b_on"] for r in rows),
        "reasons": dict(Counter(r["reason"] for r in rows)),
    }
    return counts, rows


def rates(c: dict[str, Any]) -> dict[str, Any]:
    """Shares from counts (NaN where the denominator is 0)."""

    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {
        **c,
        "seeds_on_share": div(c["seeds_on"], c["seeds"]),
        "seeds_per_100_frames": div(100 * c["seeds"], c["frames"]),
        "precision": div(c["kept_correct"], c["kept"]),
        "yield": div(c["kept_correct"], c["seeds_on"]),
    }


def pool(counts: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("frames", "seeds", "seeds_on", "kept", "kept_correct")
    total: dict[str, Any] = {k: sum(c[k] for c in counts) for k in keys}
    reasons: Counter[str] = Counter()
    for c in counts:
        reasons.update(c["reasons"])
    total["reasons"] = dict(sorted(reasons.items()))
    return rates(total)


def centre_seeds(seeds: list[dict[str, Any]], width: int, height: int) -> list[dict[str, Any]]:
    """The floor: each seed's box moved to the centre of the frame (same size, same frame),
    tracked as it is (no moving-points box: that would be the object's)."""
    return [
        {**s, "x": (width - s["w"]) / 2, "y": (height - s["h"]) / 2,
         "seed_id": s["seed_id"] + ":centre",
         # no moving points of its own: the floor tracks its centre box itself
         **{f"target_{c}": None for c in "xywh"}}
        for s in seeds
    ]  # fmt: skip


def _video(seq: LabelledSequence, name: str, video_dir: str, out: Path, height: int) -> Path:
    """The sequence's video: ``<video_dir>/<name>.mp4`` if there, else its frames encoded
    (H.264, CRF 18) at ``height`` (even sizes) into ``<out>/videos/<name>.mp4``."""
    given = Path(video_dir) / f"{name}.mp4" if video_dir else None
    if given is not None and given.is_file():
        return given
    path = out / "videos" / f"{name}.mp4"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = []
    for p in seq.frames:
        img = imaging.decode_jpeg(p.read_bytes())
        img = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
        s = min(1.0, height / img.shape[0])
        size = (2 * int(round(img.shape[1] * s / 2)), 2 * int(round(img.shape[0] * s / 2)))
        frames.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
    tmp = path.with_suffix(".tmp.mp4")
    write_video(tmp, np.stack(frames), 24.0, crf=18)
    tmp.rename(path)
    return path


def _draw(img: NDArray[np.uint8], box: Sequence[float], colour: tuple[int, int, int]) -> None:
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(img, (x, y), (x + w, y + h), colour, 3)


def _panels(
    path: Path, seq: LabelledSequence, seeds: list[dict[str, Any]], tracks: list[dict[str, Any]],
    rows: list[dict[str, Any]], scale: float, name: str,
) -> list[tuple[list[NDArray[np.uint8]], str]]:  # fmt: skip
    """Montage rows: the seed frame (seed box, truth) and the A' frame (track box)."""
    by_seed = {t["seed_id"]: t for t in tracks}
    out = []
    with VideoReader(str(path), height=320) as r:
        k = r.size[1] / r.source_size[1]  # video pixels -> panel pixels
        for s, row in zip(seeds, rows, strict=True):
            t = by_seed.get(s["seed_id"])
            fb = int(t["frame_b"]) if t is not None else int(s["frame"])
            fa_img, fb_img = (np.ascontiguousarray(f) for f in r.get_batch([int(s["frame"]), fb]))
            for img, f in ((fa_img, int(s["frame"])), (fb_img, fb)):
                truth = seq.truth(f)
                if truth is not None and truth.ndim == 1:
                    _draw(img, [v / scale * k for v in truth], (40, 90, 255))
                elif truth is not None:
                    m = cv2.resize(truth.astype(np.uint8), img.shape[1::-1]) > 0
                    cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                             cv2.CHAIN_APPROX_SIMPLE)  # fmt: skip
                    cv2.drawContours(img, cs, -1, (40, 90, 255), 2)
            _draw(fa_img, [s[c] * k for c in "xywh"], (0, 220, 0) if row["a_on"] else (230, 0, 0))
            if t is not None:
                colour = (0, 220, 0) if row["b_on"] else (230, 0, 0)
                _draw(fb_img, [t[f"b_{c}"] * k for c in "xywh"], colour)
            out.append(([fa_img, fb_img], f"{name[:14]} f{s['frame']} {row['reason']}"))
    return out


def evaluate_sequence(
    name: str, seq: LabelledSequence, path: Path, mcfg: MotionConfig, tcfg: TrackingConfig
) -> tuple[dict[str, dict[str, Any]], list[tuple[list[NDArray[np.uint8]], str]]]:
    """Mine one sequence's video as DetectMotion + TrackObjects do; score it and the floor."""
    seeds, _ = detect_video(name, str(path), mcfg)
    tracks, _ = track_video(name, str(path), seeds, tcfg, mcfg.frame_height)
    first = imaging.decode_jpeg(seq.frames[0].read_bytes())
    with VideoReader(str(path)) as r:
        vh, vw = r.source_size
    scale = first.shape[1] / vw  # video pixels -> truth pixels
    ours, rows = score(seeds, tracks, seq, scale)
    floor_seeds = centre_seeds(seeds, vw, vh)
    floor_tracks, _ = track_video(name, str(path), floor_seeds, tcfg, mcfg.frame_height)
    floor, _ = score(floor_seeds, floor_tracks, seq, scale)
    panels = _panels(path, seq, seeds, tracks, rows, scale, name)
    return {"stage": ours, FLOOR: floor}, panels


@stage_params(MotionConfig, TrackingConfig)
class EvaluateMining(EvaluationTask):
    """DetectMotion + TrackObjects vs DAVIS/OTB truth -> seeds.png, metrics.json, metrics.md."""

    data_root = luigi.Parameter(description="DAVIS- or OTB-layout folder with ground truth")
    out_dir = luigi.Parameter(description="where metrics.json, metrics.md and seeds.png go")
    video_dir = luigi.Parameter(
        default="", description="folder of <seq>.mp4 (else the frames are encoded once)"
    )

    def run(self) -> None:
        mcfg: MotionConfig = config_from_params(self, MotionConfig)
        tcfg: TrackingConfig = config_from_params(self, TrackingConfig)
        root, out = Path(self.data_root), Path(self.out_dir)
        seqs = find_sequences(root)
        out.mkdir(parents=True, exist_ok=True)
        per: dict[str, dict[str, dict[str, Any]]] = {}
        panels: list[tuple[list[NDArray[np.uint8]], str]] = []
        for k, (name, seq) in enumerate(seqs.items()):
            self.set_status_message(f"{name} ({k + 1}/{len(seqs)})")
            self.set_progress_percentage(round(100 * k / len(seqs), 1))
            path = _video(seq, name, str(self.video_dir), out, mcfg.frame_height)
            per[name], p = evaluate_sequence(name, seq, path, mcfg, tcfg)
            panels += p

        def block(method: str) -> dict[str, Any]:
            return {
                "sequences": {n: rates(v[method]) for n, v in per.items()},
                "overall": pool([v[method] for v in per.values()]),
            }

        result: dict[str, Any] = {
            "data_root": str(root),
            "params": self.to_str_params(only_significant=True),
            **block("stage"),
            FLOOR: block(FLOOR),
        }
        (out / "metrics.md").write_text(_table(result))
        if panels:
            imaging.save_png(
                out / "seeds.png",
                imaging.montage([p for p, _ in panels], labels=[lb for _, lb in panels]),
            )
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(f"EvaluateMining wrote {out / 'metrics.json'}, {out / 'metrics.md'}, seeds.png")


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"Stage (DetectMotion + TrackObjects) beside the floor `{FLOOR}` (each seed's box "
        "moved to the frame centre, same frames, same tracker and scoring).",
        "",
        "| sequence | method | frames | seeds | on object | seeds/100 frames | kept "
        "| precision | yield | drops |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = [*result["sequences"], "**overall**"]
    for n in names:
        for method, block in (("stage", result), (FLOOR, result[FLOOR])):
            m = block["overall"] if n == "**overall**" else block["sequences"][n]
            drops = ", ".join(f"{r} {c}" for r, c in sorted(m["reasons"].items()) if r != "ok")
            lines.append(
                f"| {n} | {method} | {m['frames']} | {m['seeds']} | {m['seeds_on_share']:.3f} "
                f"| {m['seeds_per_100_frames']:.2f} | {m['kept']} | {m['precision']:.3f} "
                f"| {m['yield']:.3f} | {drops} |"
            )
    return "\n".join(lines) + "\n"
