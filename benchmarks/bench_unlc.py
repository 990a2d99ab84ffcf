"""uNLC (SegmentMotion) cost per step, on one core, at the default sizes.

A synthetic 650 x 488 clip (the stage's frame size for 4:3 video) with one moving object
over a panning background is written as H.264, decoded (the floor: what reading the
frames costs anyway) and segmented as one shot of 110 frames (30 with ``quick``). Every
step's seconds per frame come from `segment_shot`'s own timers; peak memory from
tracemalloc (numpy buffers) and the process's max RSS. Reference points measured in the
same run: scikit-image SLIC and the original per-superpixel descriptor loop (scikit-image
HOG + np.histogram per patch) on one frame, and the size of the original dense
transition matrix.

Real section (``benchmarks.unlc_real``): when the dev DAVIS folder exists
(``$VIDEOMINE_DAVIS``, else ``../shared/devdata/davis``: ``benchmarks.devdata``),
our defaults, the authors' ``videoseg`` preset and each departure set back alone, scored
beside the compensated-flow floor and the centre rectangle (``--quick``: ours and the preset
only).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks.devdata import davis_root


def _naive_descriptors(frame: np.ndarray, labels: np.ndarray) -> float:
    """Seconds for the original per-superpixel loop (skimage hog + np.histogram)."""
    from skimage import color
    from skimage.feature import hog

    t = time.perf_counter()
    h, w = labels.shape
    for j in range(int(labels.max()) + 1):
        ys, xs = np.nonzero(labels == j)
        y0 = min(max(int((ys.min() + ys.max() - 15) / 2), 0), h - 15)
        x0 = min(max(int((xs.min() + xs.max() - 15) / 2), 0), w - 15)
        patch = frame[y0 : y0 + 15, x0 : x0 + 15]
        hog(color.rgb2gray(patch), orientations=6, pixels_per_cell=(5, 5), cells_per_block=(3, 3))
        arr = np.concatenate([patch, color.rgb2lab(patch)], axis=2).reshape(-1, 6)
        for c in range(6):
            np.histogram(arr[:, c], bins=20, range=(0, 255))
    return time.perf_counter() - t


def main(quick: bool = False) -> str:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import cv2
    import faiss
    from skimage.segmentation import slic

    from pipeline import superpixels as spx
    from pipeline.synthetic import SyntheticConfig, generate, write_video
    from pipeline.unlc import ShotSegmentation, UnlcConfig, segment_shot
    from pipeline.video_io import VideoReader

    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)
    n = 30 if quick else 110
    syn = generate(
        SyntheticConfig(
            height=488,
            width=650,
            n_frames=n,
            object_size=150,
            speed=4.0,
            camera_pan=(2.0, 0.5),
            seed=11,
        )
    )
    with tempfile.TemporaryDirectory() as d:
        path = write_video(Path(d) / "clip.mp4", syn.frames, 25.0)
        t = time.perf_counter()
        with VideoReader(path) as r:
            frames = r.get_batch(np.arange(len(r)))
        t_decode = (time.perf_counter() - t) / n
    cfg = UnlcConfig(faiss_threads=1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t = time.perf_counter()
    res = segment_shot(frames, cfg)
    wall = (time.perf_counter() - t) / n
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not isinstance(res, ShotSegmentation):
        raise RuntimeError(f"benchmark clip rejected: {res.detail}")
    iou = np.mean(
        [
            ((res.soft_mask(i) > 0.5) & (syn.masks[i] > 0)).sum()
            / max(((res.soft_mask(i) > 0.5) | (syn.masks[i] > 0)).sum(), 1)
            for i in range(n)
        ]
    )
    s = res.stats
    steps = ["t_flow", "t_saliency", "t_slic", "t_descriptors", "t_graph", "t_voting"]
    per = {k[2:]: s[k] / n for k in steps}
    total = sum(per.values())
    worst = max(per, key=lambda k: per[k])

    # References on one frame.
    f0 = frames[n // 2]
    t = time.perf_counter()
    slic(f0, n_segments=400, sigma=5, start_label=0)
    t_sk_slic = time.perf_counter() - t
    lab = res.labels[n // 2]
    t_naive_desc = _naive_descriptors(f0, lab)
    t = time.perf_counter()
    spx.describe(f0, lab, patch=15, hog_bins=6, hog_cell=5, hog_norm="L1", colour_bins=20)
    t_desc1 = time.perf_counter() - t
    n_sp = int(s["n_superpixels"])
    dense_gb = n_sp * n_sp * 8 / 1e9
    sparse_mb = s["graph_nnz"] * 8 / 1e6

    lines = [
        f"### uNLC, one shot of {n} frames at 650x488, one core "
        f"({n_sp / n:.0f} superpixels/frame, mean IoU vs truth {iou:.2f})",
        "",
        "| step | s / frame | share of uNLC |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v:.4f} | {v / total:.0%} |" for k, v in per.items()]
    lines += [
        f"| **uNLC total** (sum of steps) | **{total:.4f}** | 100% |",
        f"| uNLC wall (incl. bookkeeping) | {wall:.4f} | |",
        f"| decode alone (floor, H.264 650x488) | {t_decode:.4f} | {t_decode / total:.1%} of uNLC |",
        "",
        f"Goal < 0.2 s/frame: {'met' if total < 0.2 else 'NOT met'} "
        f"({total:.3f} s/frame). Bottleneck: **{worst}** ({per[worst] / total:.0%}).",
        "",
        "| reference (one frame) | seconds | ratio |",
        "|---|---|---|",
        f"| SLIC: ours (OpenCV) / scikit-image (original) | {per['slic']:.4f} / {t_sk_slic:.4f} "
        f"| {t_sk_slic / per['slic']:.1f}x faster |",
        f"| descriptors: ours (vectorised) / original loop | {t_desc1:.4f} / {t_naive_desc:.4f} "
        f"| {t_naive_desc / t_desc1:.0f}x faster |",
        f"| transition matrix: sparse CSR / dense float64 (original) | {sparse_mb:.0f} MB / "
        f"{dense_gb:.1f} GB | {dense_gb * 1e3 / sparse_mb:.0f}x smaller |",
        "",
        f"Peak memory per shot of {n} frames: {peak / 1e6:.0f} MB of numpy buffers "
        f"(tracemalloc; the frames themselves are {frames.nbytes / 1e6:.0f} MB), "
        f"max RSS grew {max(rss1 - rss0, 0) / 1e3:.0f} MB.",
    ]
    davis = davis_root()
    if davis is not None:
        from benchmarks.unlc_real import load_davis, table

        lines += ["", table(load_davis(davis), quick=quick)]
    else:
        lines += [
            "",
            "(real section skipped: no DAVIS folder: set VIDEOMINE_DAVIS or put ../shared/devdata beside the repo)",
        ]
    out = "\n".join(lines)
    print(out)
    return out


if __name__ == "__main__":
    main()
