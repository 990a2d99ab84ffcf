"""EvaluateEdges: the edge network's rounds against DAVIS object boundaries (issue 14, 6).

    luigi --module tasks EvaluateEdges --data-root DIR --out-dir DIR \\
        --checkpoints round0.pt,round1.pt,... --local-scheduler

Every ``frame_step``-th frame of every DAVIS-layout sequence is scored for each edge source:
``random`` (uniform noise: the floor), ``gradient`` (the multi-scale colour-gradient
baseline, ``pipeline.edges``) and each given edge-network checkpoint (``models.edge_net``,
thinned by ``pipeline.learned_edges``), by

- boundary precision / recall against the object mask's boundary (tolerance 0.008 x the
  diagonal, ``pipeline.davis_metrics.edge_boundary_pr``), mean over frames at each threshold,
  and the best F over thresholds (the dataset-scale ODS figure);
- the oracle IoU of the region tree built on that edge map (``pipeline.regions``): the best
  IoU with the object a union of its <= 40 leaves reaches, so a bad tree shows before any
  embedding is trained.

Output: ``metrics.md`` (one table) and ``metrics.json`` (written last).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import luigi
import numpy as np
from numpy.typing import NDArray

from pipeline import davis_metrics as dm
from pipeline import imaging, regions
from pipeline.edges import EdgeConfig, EdgeMap, gradient_edges
from pipeline.learned_edges import edge_map_from_probability
from tasks.common import EvaluationTask
from tasks.grouping_eval import read_labels
from tasks.segment_eval import find_sequences

THRESHOLDS = np.round(np.arange(0.1, 0.95, 0.1), 2)
U8 = NDArray[np.uint8]


def _network(path: str) -> Callable[[U8], EdgeMap]:
    from models.edge_net import load_edge_net, predict_edges

    net = load_edge_net(path)
    return lambda f: edge_map_from_probability(predict_edges(net, f[None])[0])


class EvaluateEdges(EvaluationTask):
    """Edge maps (random floor, gradient baseline, network rounds) vs object boundaries."""

    data_root = luigi.Parameter(description="DAVIS-layout folder (JPEGImages, Annotations)")
    out_dir = luigi.Parameter(description="where metrics.json and metrics.md go")
    checkpoints = luigi.Parameter(default="", description="edge-network checkpoints, comma-sep.")
    frame_step = luigi.IntParameter(default=10, description="score every Nth frame")

    def run(self) -> None:
        root, out = Path(str(self.data_root)), Path(str(self.out_dir))
        ckpts = [c.strip() for c in str(self.checkpoints).split(",") if c.strip()]
        for c in ckpts:
            if not Path(c).is_file():
                raise FileNotFoundError(f"--checkpoints: {c} is not a file")
        rng = np.random.default_rng(0)
        sources: dict[str, Callable[[U8], EdgeMap]] = {
            "random (floor)": lambda f: EdgeMap(
                rng.random(f.shape[:2]).astype(np.float32), np.zeros(f.shape[:2], np.float32)
            ),
            "gradient (baseline)": lambda f: gradient_edges(f, EdgeConfig()),
        }
        for c in ckpts:
            sources[f"network {Path(c).stem}"] = _network(c)
        pr: dict[str, list[NDArray[np.float64]]] = {k: [] for k in sources}
        oracle: dict[str, list[float]] = {k: [] for k in sources}
        leaves: dict[str, list[int]] = {k: [] for k in sources}
        seqs = find_sequences(root)
        for k, (name, (paths, anns)) in enumerate(seqs.items()):
            self.set_status_message(f"{name} ({k + 1}/{len(seqs)})")
            for p in paths[:: int(self.frame_step)]:
                frame = imaging.decode_jpeg(p.read_bytes())
                gt = read_labels(anns[p.stem]) > 0
                for src, fn in sources.items():
                    em = fn(frame)
                    pr[src].append(dm.edge_boundary_pr(em.strength, gt, THRESHOLDS))
                    tree = regions.build_tree(em, regions.RegionConfig())
                    oracle[src].append(regions.oracle_iou(tree.leaves, gt))
                    leaves[src].append(tree.n_leaves)
        result: dict[str, Any] = {"frames": len(oracle["random (floor)"]),
                                  "thresholds": THRESHOLDS.tolist(), "sources": {}}  # fmt: skip
        lines = [
            f"Edges vs DAVIS object boundaries: {len(seqs)} sequences, every "
            f"{int(self.frame_step)}th frame ({result['frames']} frames); tolerance 0.008 x "
            "diagonal; P/R mean over frames; best F over thresholds "
            f"{THRESHOLDS.min():.1f}..{THRESHOLDS.max():.1f}",
            "",
            "| edges | best F | at threshold | P | R | tree oracle IoU | leaves |",
            "|---|---|---|---|---|---|---|",
        ]
        for src in sources:
            mean = np.mean(np.stack(pr[src]), axis=0)  # (T, 2)
            f = np.array([dm.f_measure(float(p), float(r)) for p, r in mean])
            b = int(np.argmax(f))
            entry = {
                "best_f": round(float(f[b]), 4), "threshold": float(THRESHOLDS[b]),
                "precision": round(float(mean[b, 0]), 4), "recall": round(float(mean[b, 1]), 4),
                "pr_curve": np.round(mean, 4).tolist(),
                "oracle_iou": round(float(np.mean(oracle[src])), 4),
                "leaves": round(float(np.mean(leaves[src])), 1),
            }  # fmt: skip
            result["sources"][src] = entry
            lines.append(
                f"| {src} | {entry['best_f']:.3f} | {entry['threshold']:.1f} "
                f"| {entry['precision']:.3f} | {entry['recall']:.3f} "
                f"| {entry['oracle_iou']:.3f} | {entry['leaves']:.1f} |"
            )
        out.mkdir(parents=True, exist_ok=True)
        table = "\n".join(lines) + "\n"
        (out / "metrics.md").write_text(table)
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(table)
