"""Mining speed: decode vs DetectMotion vs TrackObjects, SURF vs SIFT, KCF window sizes.

Videos: synthetic H.264 clips at 448x600 (a textured object over a panning background, and a
static clip), written once. In one process it measures

- decode-only frames/s at height 448 (``VideoReader.iter_frames``: the physical floor of
  any stage that reads every frame);
- DetectMotion (``tasks.mining.detect_video``) and TrackObjects (``tasks.mining.track_video``)
  in video frames per second, and their ratio to decoding (goal: motion + tracking together
  at >= 1/3 of decode speed);
- where DetectMotion's time goes per analysed pair: SURF, dense flow (DIS vs Farneback, as
  IDT), Shi-Tomasi, homography, pre-filter; SURF vs ``cv2.SIFT_create().detect`` per frame;
- OpenCV KCF cost per update against the box side (the window is 2x the box; OpenCV halves
  the image when the window exceeds 80x80 and does not pad its FFT), with Intel IPP on
  (OpenCV's default) and off (how the stage runs KCF);
- a cProfile of DetectMotion on the moving clip (where the remaining time goes).

`python -m benchmarks mining [--quick]`
"""

from __future__ import annotations

import cProfile
import dataclasses
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from pipeline.motion import DenseFlow, MotionConfig, analyse_pair, prefilter_score, thumbnail
from pipeline.surf import detect
from pipeline.synthetic import SyntheticConfig, generate, write_video
from pipeline.tracking import TrackingConfig, no_ipp
from pipeline.video_io import VideoReader
from tasks.mining import detect_video, track_video


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _videos(d: Path, n: int) -> dict[str, Path]:
    moving = generate(
        SyntheticConfig(height=448, width=600, n_frames=n, object_size=200, speed=2.7,
                        camera_pan=(1.3, 0.4), seed=1, object_textures=("noise", "checker"))
    )  # fmt: skip
    static = generate(SyntheticConfig(height=448, width=600, n_frames=n, mode="static", seed=2))
    return {
        "moving": write_video(d / "moving.mp4", moving.frames, 25.0),
        "static": write_video(d / "static.mp4", static.frames, 25.0),
    }


def _decode_fps(path: Path, height: int) -> tuple[float, int]:
    t = time.perf_counter()
    with VideoReader(path, height=height) as r:
        n = sum(1 for _ in r.iter_frames())
    return n / (time.perf_counter() - t), n


def _components(path: Path, cfg: MotionConfig, pairs: int) -> list[tuple[str, float]]:
    with VideoReader(path, height=cfg.frame_height) as r:
        frames = r.get_batch(list(range(pairs + 1)))
    greys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    thumbs = [thumbnail(g, cfg.prefilter_height) for g in greys]
    dis, farn = DenseFlow("dis", cfg.dis_preset), DenseFlow("farneback")
    coarse = DenseFlow("dis", "ultrafast")
    sift = cv2.SIFT_create()
    rows = []
    for name, fn in [
        ("SURF Fast-Hessian (ours, numpy)", lambda i: detect(greys[i], cfg.surf)),
        ("SIFT detect (cv2, yardstick)", lambda i: sift.detect(greys[i], None)),
        (f"DIS flow ({cfg.dis_preset})", lambda i: dis(greys[i], greys[i + 1])),
        ("Farneback flow (IDT's choice)", lambda i: farn(greys[i], greys[i + 1])),
        ("Shi-Tomasi 1000 corners",
         lambda i: cv2.goodFeaturesToTrack(greys[i], 1000, 0.001, 3.0)),
        ("pre-filter (64 px thumbnails)",
         lambda i: prefilter_score(thumbs[i], thumbs[i + 1], coarse, cfg)),
        ("whole pair analysis (analyse_pair)",
         lambda i: analyse_pair(greys[i], greys[i + 1], dis, cfg)),
    ]:  # fmt: skip
        t = _best(lambda fn=fn: [fn(i) for i in range(pairs)], 2) / pairs
        rows.append((name, t * 1000))
    return rows


def _kcf_sizes(sizes: list[int], updates: int) -> list[tuple[int, int, float, float]]:
    """ms per OpenCV KCF update for each box side, with Intel IPP on (OpenCV's default) and
    off (what the stage runs)."""
    v = generate(SyntheticConfig(height=448, width=600, n_frames=updates + 1, object_size=120,
                                 speed=2.0, seed=0))  # fmt: skip
    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in v.frames]

    def per_update(box: int) -> float:
        tr = cv2.TrackerKCF_create()  # type: ignore[attr-defined]
        tr.init(frames[0], (200, 150, box, box))
        t = time.perf_counter()
        for f in frames[1:]:
            tr.update(f)
        return (time.perf_counter() - t) / updates * 1000

    out = []
    for box in sizes:
        window = 2 * box if 4 * box * box <= 6400 else box  # OpenCV halves above 80x80
        with_ipp = per_update(box)
        with no_ipp():
            without = per_update(box)
        out.append((box, window, with_ipp, without))
    return out


def _profile_motion(path: Path, cfg: MotionConfig, top: int) -> list[tuple[str, float]]:
    """Top functions (own time, % of DetectMotion on one video) under cProfile."""
    prof = cProfile.Profile()
    prof.enable()
    detect_video("p", str(path), cfg)
    prof.disable()
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-9)  # type: ignore[attr-defined]
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    return [(f"{Path(k[0]).name}:{k[2]}", 100 * v[2] / total) for k, v in rows]


def main(quick: bool = False) -> str:
    n = 90 if quick else 300
    motion_cfg, track_cfg = MotionConfig(), TrackingConfig()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        vids = _videos(Path(tmp), n)
        lines += [
            f"Synthetic 448x600 H.264 clips of {n} frames; defaults of MotionConfig / "
            f"TrackingConfig (frame_step={motion_cfg.frame_step}, flow={motion_cfg.flow_method}, "
            f"homography={motion_cfg.ransac_method}, track_box={track_cfg.track_box}).",
            "",
            "| video | decode fps @448 | DetectMotion fps | seeds | TrackObjects fps | "
            "motion+tracking fps | ratio to decode |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, path in vids.items():
            dec_fps, frames = _decode_fps(path, motion_cfg.frame_height)
            t = time.perf_counter()
            seeds, _ = detect_video(name, str(path), motion_cfg)
            t_motion = time.perf_counter() - t
            t = time.perf_counter()
            track_video(name, str(path), seeds, track_cfg, motion_cfg.frame_height)
            t_track = time.perf_counter() - t
            both = frames / (t_motion + t_track)
            lines.append(
                f"| {name} | {dec_fps:.0f} | {frames / t_motion:.0f} | {len(seeds)} | "
                f"{frames / t_track if seeds else float('inf'):.0f} | {both:.0f} | "
                f"{both / dec_fps:.2f} |"
            )
        steps = []
        for fs in (5, 10, 20, 30):
            cfg = dataclasses.replace(motion_cfg, frame_step=fs)
            t = time.perf_counter()
            seeds, _ = detect_video("moving", str(vids["moving"]), cfg)
            steps.append((fs, n / (time.perf_counter() - t), len(seeds)))
        comp = _components(vids["moving"], motion_cfg, 6 if quick else 20)
        prof = _profile_motion(vids["moving"], motion_cfg, 8)
    lines += ["", "| frame_step (moving clip) | DetectMotion fps | seeds |", "|---|---|---|"]
    lines += [f"| {fs} | {fps:.0f} | {k} |" for fs, fps, k in steps]
    lines += ["", "| per analysed 448x600 pair | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in comp]
    lines += ["", "| DetectMotion profile (moving clip), own time | % |", "|---|---|"]
    lines += [f"| `{name}` | {pct:.1f} |" for name, pct in prof]
    kcf = _kcf_sizes([24, 32, 40, 48, 64, 96, 128, 224, 227], 10 if quick else 30)
    lines += [
        "",
        "| KCF box (px) | window after OpenCV's resize | ms / update, IPP on | IPP off (stage) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {b} | {w} | {on:.1f} | {off:.1f} |" for b, w, on, off in kcf]
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
