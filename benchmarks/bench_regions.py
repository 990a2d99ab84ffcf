"""Hierarchical grouping (issue 14): speed on one core and checks on real DAVIS frames.

Speed (one core, 480p frames): gradient edges + region tree (watershed, OWT, merging) per
frame against the 0.2 s/frame uNLC takes; motion edges per pair; propagation frames/s of
both protocols with 32-d features at stride 8 (the embedding network's 1/4 resolution of a
half-size input would be similar).

Checks on the dev DAVIS sequences (``VIDEOMINE_DAVIS`` or ../shared/devdata/davis; DAVIS layout):

- edges against the object boundary (DAVIS boundary precision / recall, tolerance 0.008 x
  diagonal) at several thresholds, for the gradient baseline and the motion edges of
  (t, t+1) on the frames where the motion pair is kept; floor: a uniform random edge map;
- the oracle IoU a union of tree leaves reaches (<= 40 leaves), for trees on gradient and
  motion edges; floor: a regular grid of 40 cells;
- mask propagation with colour-only features (CIELAB, stride 8, centred) against copying
  the first mask, J and F with the DAVIS conventions, on the first frames of each sequence.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from benchmarks.devdata import davis_root

THRESHOLDS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], np.float64)


def _load(paths: list[Path]) -> np.ndarray:
    from pipeline import imaging

    return np.stack([imaging.decode_jpeg(p.read_bytes()) for p in paths])


def _truth(path: Path) -> np.ndarray:
    from pipeline import imaging

    a = np.asarray(imaging.decode_png(path.read_bytes()))
    return (a.any(axis=2) if a.ndim == 3 else a > 0).astype(np.uint8)


def _grid_leaves(h: int, w: int, n: int = 40) -> np.ndarray:
    rows = max(1, int(round(np.sqrt(n * h / w))))
    cols = max(1, n // rows)
    ys = np.minimum(np.arange(h) * rows // h, rows - 1)
    xs = np.minimum(np.arange(w) * cols // w, cols - 1)
    return (ys[:, None] * cols + xs[None, :]).astype(np.int32)


def colour_features(frames: np.ndarray, stride: int = 8) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 3, H / stride, W / stride) CIELAB centred on the clip mean."""
    import cv2

    t, h, w = frames.shape[:3]
    out = np.stack(
        [
            cv2.resize(
                cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2LAB),
                (w // stride, h // stride),
                interpolation=cv2.INTER_AREA,
            )
            for f in frames
        ]
    )
    out -= out.reshape(-1, 3).mean(axis=0)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _speed(frames: np.ndarray, source: str) -> list[str]:
    from benchmarks.timing import best_of
    from pipeline import edges, propagation, regions

    ecfg, rcfg = edges.EdgeConfig(), regions.RegionConfig()
    f0, f1 = frames[0], frames[1]
    e = edges.gradient_edges(f0, ecfg)
    h, w = f0.shape[:2]
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((12, 32, h // 8, w // 8)).astype(np.float32)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = 1
    steps = [
        ("gradient edges (full size)", lambda: edges.gradient_edges(f0, ecfg), 1, 3),
        ("region tree of those edges (pooled to work size)", lambda: regions.build_tree(e, rcfg), 1, 3),
        (f"**regions per frame** (`frame_tree`: edges + watershed + OWT + merging at work "
         f"size {rcfg.work_side}, ComputeRegions' path; goal well under uNLC's 0.2)",
         lambda: regions.frame_tree(f0, lambda f: edges.gradient_edges(f, ecfg), rcfg), 1, 3),
        ("motion edges of a pair (DIS flow, IDT homography, SLIC snap)",
         lambda: edges.motion_edges_verdict(f0, f1, ecfg), 1, 2),
    ]  # fmt: skip
    for proto in ("paper", "common"):
        cfg = propagation.PropagationConfig(protocol=proto)
        steps.append(
            (f"propagation `{proto}` (32-d features, {h // 8}x{w // 8} cells), per frame",
             lambda cfg=cfg: propagation.propagate(feats, mask, cfg), len(feats) - 1, 1)
        )  # fmt: skip
    rows = [
        f"One core ({h}x{w} {source} frame; OpenCV and BLAS at 1 thread). CPU s is the process's "
        "CPU time (the one-core cost); wall s is inflated when other jobs share the cores.",
        "",
        "| step | CPU s/frame | frames/s (CPU) | wall s/frame |",
        "|---|---|---|---|",
    ]
    for name, fn, n, reps in steps:
        cpu = best_of(fn, reps, clock=time.process_time) / n
        wall = best_of(fn, reps) / n
        rows.append(f"| {name} | {cpu:.3f} | {1 / cpu:.1f} | {wall:.3f} |")
    return rows


def _checks(root: Path, step: int, n_prop: int) -> list[str]:
    from pipeline import davis_metrics as dm
    from pipeline import edges, propagation, regions
    from tasks.segment_eval import find_sequences

    ecfg, rcfg = edges.EdgeConfig(), regions.RegionConfig()
    rng = np.random.default_rng(0)
    pr = {"gradient (all frames)": [], "gradient (motion-kept frames)": [], "motion": [],
          "random (floor)": []}  # fmt: skip
    oracle: dict[str, list[float]] = {"gradient tree": [], "motion tree": [], "grid (floor)": []}
    oracle_kept: list[float] = []
    reasons: dict[str, int] = {}
    n_leaves: list[int] = []
    jf: dict[str, list[tuple[float, float]]] = {}
    seqs = find_sequences(root)
    for paths, anns in seqs.values():
        for i in range(0, len(paths) - 1, step):
            f0, f1 = _load([paths[i], paths[i + 1]])
            gt = _truth(anns[paths[i].stem])
            g = edges.gradient_edges(f0, ecfg)
            pr["gradient (all frames)"].append(dm.edge_boundary_pr(g.strength, gt, THRESHOLDS))
            rnd = rng.random(gt.shape).astype(np.float32)
            pr["random (floor)"].append(dm.edge_boundary_pr(rnd, gt, THRESHOLDS))
            tree = regions.frame_tree(f0, lambda f: edges.gradient_edges(f, ecfg), rcfg)[0]
            n_leaves.append(tree.n_leaves)
            oracle["gradient tree"].append(regions.oracle_iou(tree.leaves, gt > 0))
            oracle["grid (floor)"].append(regions.oracle_iou(_grid_leaves(*gt.shape), gt > 0))
            m, verdict = edges.motion_edges_verdict(f0, f1, ecfg)
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
            if m is not None:
                pr["motion"].append(dm.edge_boundary_pr(m.strength, gt, THRESHOLDS))
                pr["gradient (motion-kept frames)"].append(pr["gradient (all frames)"][-1])
                oracle["motion tree"].append(regions.oracle_iou(regions.build_tree(m, rcfg).leaves, gt > 0))  # fmt: skip
                oracle_kept.append(oracle["gradient tree"][-1])
        frames = _load(paths[:n_prop])
        gts = np.stack([_truth(anns[p.stem]) for p in paths[:n_prop]])
        feats = colour_features(frames)
        for proto in ("paper", "common"):
            pred = propagation.propagate(
                feats, gts[0], propagation.PropagationConfig(protocol=proto)
            )
            s = dm.score_sequence(pred, gts)
            jf.setdefault(f"colour features, `{proto}`", []).append((s.j_mean, s.f_mean))
        copy = dm.score_sequence(np.repeat(gts[:1], len(gts), axis=0), gts)
        jf.setdefault("copy the first mask (floor)", []).append((copy.j_mean, copy.f_mean))
    n_frames = sum(reasons.values())
    rows = [
        f"Edges vs DAVIS object boundaries ({len(seqs)} sequences, every {step}th frame: "
        f"{n_frames} frames; motion pairs kept {reasons.get('ok', 0)}, skipped "
        + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()) if k != "ok")
        + "; boundary P / R at tolerance 0.008 x diagonal):",
        "",
        "| edges | " + " | ".join(f"P / R @{t:.1f}" for t in THRESHOLDS) + " | best F |",
        "|---|" + "---|" * (len(THRESHOLDS) + 1),
    ]
    for key, vals in pr.items():
        if not vals:
            continue
        mean = np.mean(vals, axis=0)
        f = [dm.f_measure(p, r) for p, r in mean]
        rows.append(f"| {key} ({len(vals)}) | "
                    + " | ".join(f"{p:.2f} / {r:.2f}" for p, r in mean)
                    + f" | {max(f):.3f} |")  # fmt: skip
    rows += [
        "",
        f"Oracle IoU of the best union of leaves (trees of <= {rcfg.max_leaves} leaves; "
        f"mean {np.mean(n_leaves):.1f} leaves on gradient edges):",
        "",
        "| tree | frames | mean oracle IoU |",
        "|---|---|---|",
    ]
    for key, vals in oracle.items():
        rows.append(
            f"| {key} | {len(vals)} | {np.mean(vals):.3f} |" if vals else f"| {key} | 0 | - |"
        )
    if oracle_kept:
        rows.append(f"| gradient tree, same frames as motion | {len(oracle_kept)} "
                    f"| {np.mean(oracle_kept):.3f} |")  # fmt: skip
    rows += [
        "",
        f"Mask propagation, first {n_prop} frames of each sequence (J and F exclude the first "
        "and last frames), colour-only features at stride 8:",
        "",
        "| method | J mean | F mean | J&F |",
        "|---|---|---|---|",
    ]
    for key, vals in jf.items():
        j, f = np.mean(vals, axis=0)
        rows.append(f"| {key} | {j:.3f} | {f:.3f} | {(j + f) / 2:.3f} |")
    return rows


def main(quick: bool = False) -> str:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import cv2

    from pipeline.synthetic import SyntheticConfig, generate
    from tasks.segment_eval import find_sequences

    cv2.setNumThreads(1)
    t0 = time.time()
    root = davis_root()
    if root is not None:
        paths = next(iter(find_sequences(root).values()))[0]
        frames = _load(paths[10:12])
    else:
        frames = generate(SyntheticConfig(height=480, width=854, n_frames=2, seed=0)).frames
    rows = _speed(frames, "DAVIS" if root is not None else "synthetic")
    if root is None:
        rows += ["", "_No DAVIS data (set VIDEOMINE_DAVIS): real-frame checks skipped._"]
    else:
        rows += ["", *_checks(root, step=20 if quick else 5, n_prop=10 if quick else 25)]
    rows += ["", f"_bench regions took {time.time() - t0:.0f} s._"]
    return "\n".join(rows)
