"""EvaluateClusters: the two clustering stages on a labelled image folder.

Input (``--data-root DIR``): one sub-folder per class holding images (.jpg .jpeg .png .bmp);
each image is resized to ``patch_size`` squared (the whole image, like a mined patch).
The images are embedded with the chosen feature source (``--source hog|random|checkpoint``,
``--checkpoint FILE``), clustered into parents (spherical K-means, K scaled to the data
unless ``--k`` / ``--points-per-parent`` say otherwise) and children (mutual top-10).

Output (``--out-dir DIR``):

- ``predictions.csv``: path, label, parent id (-1: dropped), children holding the image;
- ``metrics.md``: the table below;
- ``metrics.json`` (written last: the task's completion marker): child purity (share of
  children whose members share a label), parent purity (share of clustered images with
  their parent's majority label), coverage of both stages, ARI of parents, and the stats of
  both stages (K used, threshold, iterations, training sample, seed).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import luigi
import numpy as np

from pipeline import features, imaging
from pipeline.cluster_metrics import clustering_report
from pipeline.clustering import ChildConfig, ParentConfig, cluster_children, cluster_parents
from pipeline.features import FeatureConfig
from tasks.common import EvaluationTask, config_from_params, stage_params
from tasks.feature_source import build_source

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def find_images(root: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Image paths, int labels and class names of a folder-per-class tree (sorted)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory (expected one sub-folder per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    paths: list[Path] = []
    labels: list[int] = []
    for i, c in enumerate(classes):
        files = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [i] * len(files)
    if not paths:
        raise FileNotFoundError(f"{root}: no images in class sub-folders ({IMAGE_SUFFIXES})")
    return paths, np.asarray(labels, dtype=np.int64), classes


def load_images(paths: list[Path], size: int) -> np.ndarray:
    out = np.empty((len(paths), size, size, 3), np.uint8)
    for i, p in enumerate(paths):
        try:
            img = imaging.decode_jpeg(p.read_bytes())
        except imaging.ImageDecodeError as e:
            raise ValueError(f"{p}: not a readable image ({e})") from e
        out[i] = imaging.crop_resize(img, (0, 0, img.shape[1], img.shape[0]), size)
    return out


@stage_params(FeatureConfig, ParentConfig, ChildConfig)
class EvaluateClusters(EvaluationTask):
    """Child / parent purity and coverage of the two clustering stages on labelled images."""

    data_root = luigi.Parameter(description="folder with one sub-folder of images per class")
    out_dir = luigi.Parameter(description="where metrics.json, metrics.md, predictions go")

    def run(self) -> None:
        fcfg = config_from_params(self, FeatureConfig)
        pcfg = config_from_params(self, ParentConfig)
        ccfg = config_from_params(self, ChildConfig)
        root, out = Path(self.data_root), Path(self.out_dir)
        paths, labels, classes = find_images(root)
        self.set_status_message(f"embedding {len(paths)} images ({fcfg.source})")
        source = build_source(fcfg)
        feats = features.embed(load_images(paths, fcfg.patch_size), source, fcfg.batch_size)
        valid = np.abs(feats.astype(np.float32)).sum(axis=1) > 0
        parents = np.full(len(paths), -1, np.int64)
        self.set_status_message("clustering")
        pres = cluster_parents(feats[valid], pcfg)
        parents[valid] = pres.labels
        cres = cluster_children(feats[valid], pres.labels, ccfg)
        members = np.flatnonzero(valid)[cres.members] if cres.members.size else cres.members
        report = clustering_report(parents, members, labels)
        result: dict[str, Any] = {
            "data_root": str(root),
            "classes": classes,
            "feature_source": source.spec(),
            "metrics": report,
            "parents": {k: v for k, v in pres.stats.items() if k != "objective_per_iter"},
            "children": cres.stats,
            "invalid_features": int((~valid).sum()),
            "params": self.to_str_params(only_significant=True),
        }
        out.mkdir(parents=True, exist_ok=True)
        holders: list[list[int]] = [[] for _ in paths]
        for c, row in enumerate(members.tolist()):
            for i in row:
                holders[i].append(c)
        with open(out / "predictions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "parent_id", "children"])
            for i, p in enumerate(paths):
                w.writerow([str(p.relative_to(root)), classes[labels[i]], int(parents[i]),
                            " ".join(map(str, holders[i]))])  # fmt: skip
        keys = ("images", "classes", "parents_kept", "children", "child_purity",
                "parent_purity", "parent_coverage", "child_coverage", "parent_ari")  # fmt: skip
        lines = [
            f"EvaluateClusters on {root} with features '{fcfg.source}' "
            f"(K={pres.stats['k']}, min parent size {pres.stats['min_parent_size']})",
            "",
            "| " + " | ".join(keys) + " |",
            "|" + "---|" * len(keys),
            "| " + " | ".join(_fmt(report[k]) for k in keys) + " |",
        ]
        (out / "metrics.md").write_text("\n".join(lines) + "\n")
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
        print(
            f"EvaluateClusters wrote {out / 'metrics.json'}, {out / 'metrics.md'} and "
            f"{out / 'predictions.csv'}"
        )


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)
