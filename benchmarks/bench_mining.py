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
- where the time goes: each stage's steps in seconds on the moving clip (cProfile);
- the ``workers`` option (threads) beside the single-core figures (the goal is per core);
- real footage: the dev tracking videos (``../shared/devdata/tracking/*.mp4``, or
  ``$VIDEOMINE_DEVDATA/tracking``) mined with the defaults before issue 11 and with today's,
  in one run, each as its ratio to decoding the same clips (it must not fall).

`python -m benchmarks mining [--quick] [--real-only]` (``--real-only``: the real-footage rows
only, a few minutes; the full benchmark is long)
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
import numpy as np

from benchmarks.devdata import devdata
from benchmarks.timing import best_of
from pipeline.motion import DenseFlow, MotionConfig, analyse_pair, prefilter_score, thumbnail
from pipeline.surf import detect
from pipeline.synthetic import SyntheticConfig, generate, write_video
from pipeline.tracking import TrackingConfig, no_ipp
from pipeline.video_io import VideoReader
from tasks.mining import detect_video, track_video


def _videos(d: Path, n: int) -> dict[str, Path]:
    """``moving``: a textured object crossing a panning background in every frame (seeds
    every min_seed_gap frames: the densest case); ``static``; ``mixed``: one shot of each kind
    the issue names, n/2 frames each: object over a pan (``moving``'s first half), static,
    pure pan, all-moving (hard cuts between)."""
    moving = generate(
        SyntheticConfig(height=448, width=600, n_frames=n, object_size=200, speed=2.7,
                        camera_pan=(1.3, 0.4), seed=1, object_textures=("noise", "checker"))
    ).frames  # fmt: skip
    static = generate(SyntheticConfig(height=448, width=600, n_frames=n, mode="static", seed=2))
    half = n // 2
    shots = [
        moving[:half],
        static.frames[:half],
        generate(SyntheticConfig(height=448, width=600, n_frames=half, mode="pan_only",
                                 camera_pan=(1.5, 0.5), seed=3)).frames,
        generate(SyntheticConfig(height=448, width=600, n_frames=half, mode="all_moving",
                                 object_size=48, speed=2.0, seed=4)).frames,
    ]  # fmt: skip
    return {
        "moving": write_video(d / "moving.mp4", moving, 25.0),
        "mixed": write_video(d / "mixed.mp4", np.concatenate(shots), 25.0),
        "static": write_video(d / "static.mp4", static.frames, 25.0),
    }


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
        t = best_of(lambda fn=fn: [fn(i) for i in range(pairs)], 2) / pairs
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


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of the whole process, result): CPU time counts every thread (decord's
    decoding threads, OpenCV's, the workers), so it is the per-core cost on a shared machine."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def _stage_seconds(
    path: Path,
    mcfg: MotionConfig,
    tcfg: TrackingConfig,
    workers: int,
    repeat: int,
    on_demand: bool = True,
) -> tuple[list[float], int, int, int]:
    """Best of ``repeat`` (each a decode-only pass, DetectMotion, TrackObjects in a row, so
    that all three see the same load): wall and CPU seconds, in the order decode wall, decode
    CPU, motion wall, motion CPU, tracking wall, tracking CPU; the number of seeds, of
    frames and of kept tracks. ``on_demand``: both stages' reading (``detect_video``,
    ``track_video``)."""
    best = [float("inf")] * 6
    seeds: list[dict[str, Any]] = []
    n_frames = n_kept = 0

    def decode() -> int:
        with VideoReader(path, height=mcfg.frame_height) as r:
            return sum(1 for _ in r.iter_frames())

    def motion() -> list[dict[str, Any]]:
        return detect_video(path.stem, str(path), mcfg, workers, on_demand=on_demand)[0]

    def tracking() -> Any:
        return track_video(
            path.stem, str(path), seeds, tcfg, mcfg.frame_height, None, workers,
            on_demand=on_demand,
        )  # fmt: skip

    for _ in range(repeat):
        dw, dc, n_frames = _timed(decode)
        mw, mc, seeds = _timed(motion)
        tw, tc, (tracks, _) = _timed(tracking)
        n_kept = sum(t["kept"] for t in tracks)
        best = [min(a, b) for a, b in zip(best, (dw, dc, mw, mc, tw, tc), strict=True)]
    return best, len(seeds), n_frames, n_kept


def _cum(st: pstats.Stats, file: str, func: str, caller: str | None = None) -> float:
    """Cumulative seconds of ``file:func`` in a profile (only the calls from ``caller``)."""
    total = 0.0
    for (f, _, name), row in st.stats.items():  # type: ignore[attr-defined]
        if not (f.endswith(file) and name == func):
            continue
        if caller is None:
            total += row[3]
        else:
            total += sum(v[3] for (_, _, c), v in row[4].items() if c == caller)
    return total


def _profiled(fn: Callable[[], Any]) -> pstats.Stats:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    return pstats.Stats(prof)


def _where(path: Path, mcfg: MotionConfig, tcfg: TrackingConfig) -> list[tuple[str, str, float]]:
    """Where each stage's time goes on one video: (stage, step, seconds) under cProfile."""
    seeds, _ = detect_video(path.stem, str(path), mcfg)
    sm = _profiled(lambda: detect_video(path.stem, str(path), mcfg))
    st = _profiled(lambda: track_video(path.stem, str(path), seeds, tcfg, mcfg.frame_height))
    rows: list[tuple[str, str, float]] = []
    total = _cum(sm, "mining.py", "detect_video")
    surf = _cum(sm, "surf.py", "detect")
    flow = _cum(sm, "motion.py", "__call__", "analyse_pair")
    corners = _cum(sm, "~", "<goodFeaturesToTrack>")
    hom = _cum(sm, "~", "<findHomography>")
    pair = _cum(sm, "motion.py", "analyse_pair")
    decode = _cum(sm, "video_io.py", "_iter")
    pre = _cum(sm, "motion.py", "prefilter_score")
    thumbs = _cum(sm, "seeding.py", "_thumb") + _cum(sm, "motion.py", "is_cut")
    for step, sec in [
        ("decode at 448 (VideoReader)", decode),
        ("thumbnails + cut test, every frame", thumbs),
        ("pre-filter (thumbnail DIS + affine)", pre),
        ("SURF Fast-Hessian", surf),
        ("dense flow (DIS)", flow),
        ("Shi-Tomasi corners", corners),
        ("homography (LMEDS)", hom),
        (
            "rest of the pair analysis (matching, moving test, box)",
            pair - surf - flow - corners - hom,
        ),
        ("other (loop, seed choice)", total - decode - thumbs - pre - pair),
    ]:
        rows.append(("DetectMotion", step, sec))
    rows.append(("DetectMotion", "**total** (profiled)", total))
    total = _cum(st, "mining.py", "track_video")
    decode = _cum(st, "video_io.py", "_iter")
    trk = _cum(st, "tracking.py", "track")
    kcf = _cum(st, "kcf.py", "run")  # forward and backward passes
    scale = _cum(st, "tracking.py", "_scale_frames")
    n_kcf = sum(
        row[1]
        for (f, _, name), row in st.stats.items()  # type: ignore[attr-defined]
        if "update" in name and "Tracker" in name
    )
    rows += [
        ("TrackObjects", "decode at 448 (VideoReader)", decode),
        ("TrackObjects", f"KCF forward + backward ({n_kcf} updates)", kcf),
        ("TrackObjects", "frame scaling to the tracking box", scale),
        ("TrackObjects", "validity checks and crops", trk - kcf - scale),
        ("TrackObjects", "other (windows, rows, JPEG)", total - decode - trk),
        ("TrackObjects", "**total** (profiled)", total),
    ]
    return rows


# The mining defaults before issue 11 (what the real-footage row compares against).
BEFORE_ISSUE_11_TRACKING: dict[str, Any] = {
    "detect_thresh": 0.5,
    "max_upscale": 1e9,
    "track_box": 96,
    "track_target": "box",  # the 227 seed box itself
    "min_end_match": -1.0,  # no A/A' appearance check
}
BEFORE_ISSUE_11_MOTION: dict[str, Any] = {
    "min_moving_fraction": 0.25,
    "prefilter_max_fraction": 0.7,
    "epipolar_threshold": 0.0,
    "frame_step": 10,  # unchanged; stated so that the row stays the past if the default moves
}


def _real_rows(quick: bool) -> list[str]:
    """Mining the dev tracking videos with the old and the new defaults, one run: decode,
    DetectMotion and TrackObjects seconds (CPU, all threads) summed over the clips, and
    each stage's CPU per frame (DetectMotion, its own decoding included) and per seed
    (TrackObjects). The stages read as before issue 11 (every frame to RGB) or on demand
    (``video_io.scan_reader``: RGB for DetectMotion's screened pairs and TrackObjects'
    windows only; the same seeds and tracks)."""
    clips = sorted((devdata() / "tracking").glob("*.mp4"))[: 2 if quick else None]
    if not clips:
        return ["", f"(no dev tracking videos under {devdata()}: real-footage row skipped)"]
    new_m, new_t = MotionConfig(), TrackingConfig()
    old_m = dataclasses.replace(new_m, **BEFORE_ISSUE_11_MOTION)
    old_t = dataclasses.replace(new_t, **BEFORE_ISSUE_11_TRACKING)
    configs = {
        "before issue 11 (defaults and reading)": (old_m, old_t, False),
        "today's defaults, reading before issue 11": (new_m, new_t, False),
        "today's defaults (on-demand RGB)": (new_m, new_t, True),
        # departures (other seeds), measured, not adopted: docs/mining.md "Speed"
        "today's, frame_step 15 (departure)": (
            dataclasses.replace(new_m, frame_step=15),
            new_t,
            True,
        ),
        "today's, frame_step 20 (departure)": (
            dataclasses.replace(new_m, frame_step=20),
            new_t,
            True,
        ),
    }
    lines = [
        "",
        f"Real footage: {len(clips)} dev tracking videos ({', '.join(c.stem for c in clips)}), "
        "1 worker, CPU seconds summed over the clips (best of 1 per clip: decode, DetectMotion "
        "and TrackObjects back to back, so all three see the same load, and the rows' runs "
        "of one clip back to back). DetectMotion's CPU "
        "includes its own decoding; decode = VideoReader at 448, every frame to RGB.",
        "",
        "| defaults | frames | seeds | kept tracks | decode ms/frame | DetectMotion ms/frame "
        "| TrackObjects ms/frame | TrackObjects s/seed | ratio to decode (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    # Clip by clip, every configuration back to back: a load change on the shared machine
    # hits all rows alike.
    tot = {name: np.zeros(6) for name in configs}
    counts = {name: np.zeros(3, np.int64) for name in configs}  # frames, seeds, kept
    for c in clips:
        for name, (mcfg, tcfg, on_demand) in configs.items():
            secs, k, nf, kept = _stage_seconds(c, mcfg, tcfg, 1, 1, on_demand)
            tot[name] += secs
            counts[name] += (nf, k, kept)
    for name in configs:
        _, dc, _, mc, _, tc = tot[name]
        n_frames, n_seeds, n_kept = (int(x) for x in counts[name])
        lines.append(
            f"| {name} | {n_frames} | {n_seeds} | {n_kept} | {1000 * dc / n_frames:.2f} "
            f"| {1000 * mc / n_frames:.2f} | {1000 * tc / n_frames:.2f} "
            f"| {tc / max(n_seeds, 1):.3f} | {dc / (mc + tc):.3f} |"
        )
    return lines


def main(quick: bool = False, real_only: bool = False) -> str:
    if real_only:  # `python -m benchmarks mining --real-only`: the real-footage row alone
        table = "\n".join(_real_rows(quick)).strip()
        print(table)
        return table
    n = 90 if quick else 300
    repeat = 1 if quick else 3  # best of 3: the machine is shared
    motion_cfg, track_cfg = MotionConfig(), TrackingConfig()
    lines: list[str] = []
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        vids = _videos(Path(tmp), n)
        lines += [
            f"Synthetic 448x600 H.264 clips (moving, static: {n} frames; mixed: 4 shots of "
            f"{n // 2}: object over a pan, static, pure pan, all-moving); defaults of MotionConfig / "
            f"TrackingConfig (frame_step={motion_cfg.frame_step}, flow={motion_cfg.flow_method}, "
            f"homography={motion_cfg.ransac_method}, track_box={track_cfg.track_box}); "
            f"best of {repeat}. workers = threads per stage (the `threads` task parameter); "
            "the goal is per core: workers 1, and the CPU-time ratio (decoding's CPU seconds "
            "over the stages', all threads counted) is the per-core figure on a shared machine.",
            "",
            "| video | workers | decode fps @448 | DetectMotion fps | seeds | TrackObjects fps | "
            "motion+tracking fps | ratio to decode (wall) | ratio (CPU time: per core) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        dense: tuple[float, float, int] = (
            0.0,
            0.0,
            0,
        )  # moving, 1 worker: decode s, track s, seeds
        for name, path in vids.items():
            for workers in (1, 2):
                (dw, dc, mw, mc, tw, tc), k, nf, _ = _stage_seconds(
                    path, motion_cfg, track_cfg, workers, repeat
                )
                if name == "moving" and workers == 1:
                    dense = (dw / nf, tw, k)
                lines.append(
                    f"| {name} | {workers} | {nf / dw:.0f} | {nf / mw:.0f} | {k} | "
                    f"{nf / tw if k else float('inf'):.0f} | {nf / (mw + tw):.0f} | "
                    f"{dw / (mw + tw):.2f} | {dc / (mc + tc):.2f} |"
                )
                summary.append(
                    f"{name}, {workers} worker(s): {dw / (mw + tw):.2f} wall, "
                    f"{dc / (mc + tc):.2f} CPU"
                )
        steps = []
        for fs in (5, 10, 20, 30):
            cfg = dataclasses.replace(motion_cfg, frame_step=fs)
            t = time.perf_counter()
            seeds, _ = detect_video("moving", str(vids["moving"]), cfg)
            steps.append((fs, n / (time.perf_counter() - t), len(seeds)))
        comp = _components(vids["moving"], motion_cfg, 6 if quick else 20)
        where = _where(vids["moving"], motion_cfg, track_cfg)
    lines += [
        "",
        "Goal: motion + tracking at >= 0.33 of decode speed. Measured: " + "; ".join(summary) + ".",
    ]
    per_frame, track_s, k = dense
    pair_ms = next(ms for name, ms in comp if name.startswith("whole pair"))
    if k:
        gap, step = motion_cfg.min_seed_gap, motion_cfg.frame_step
        lines += [
            "",
            f"Densest case, per unit of video (moving clip, 1 worker): one seed costs "
            f"{1000 * track_s / k:.0f} ms of TrackObjects (2 x {track_cfg.track_length} KCF "
            f"updates, crops, checks) for the min_seed_gap = {gap} frames it stands for, whose "
            f"decoding takes {1000 * per_frame * gap:.0f} ms; one analysed pair costs "
            f"{pair_ms:.0f} ms for the frame_step = {step} frames whose decoding takes "
            f"{1000 * per_frame * step:.0f} ms. Tracking and analysis together: "
            f"{(track_s / k + pair_ms / 1000 * gap / step) / (per_frame * gap):.1f}x the "
            f"decoding time of the same frames, before either stage decodes anything.",
        ]
    lines += [
        "",
        "| where the time goes (moving clip, one cProfile'd run) | step | s | % of stage |",
        "|---|---|---|---|",
    ]
    totals = {stage: sec for stage, step, sec in where if step.startswith("**total")}
    lines += [
        f"| {stage} | {step} | {sec:.3f} | {100 * sec / max(totals[stage], 1e-9):.0f} |"
        for stage, step, sec in where
    ]
    lines += ["", "| frame_step (moving clip) | DetectMotion fps | seeds |", "|---|---|---|"]
    lines += [f"| {fs} | {fps:.0f} | {k} |" for fs, fps, k in steps]
    lines += ["", "| per analysed 448x600 pair | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in comp]
    kcf = _kcf_sizes([24, 32, 40, 48, 64, 96, 128, 224, 227], 10 if quick else 30)
    lines += [
        "",
        "| KCF box (px) | window after OpenCV's resize | ms / update, IPP on | IPP off (stage) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {b} | {w} | {on:.1f} | {off:.1f} |" for b, w, on, off in kcf]
    lines += _real_rows(quick)
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
