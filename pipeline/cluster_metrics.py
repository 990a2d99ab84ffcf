"""Quality of a two-stage clustering against known labels (EvaluateClusters)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def child_purity(members: npt.NDArray[np.int64], labels: npt.NDArray[np.integer]) -> float:
    """Share of children (rows of member indices) whose members all carry one label."""
    if members.shape[0] == 0:
        return 0.0
    lab = labels[members]
    return float((lab == lab[:, :1]).all(axis=1).mean())


def parent_purity(parents: npt.NDArray[np.integer], labels: npt.NDArray[np.integer]) -> float:
    """Share of clustered points (parent >= 0) carrying their parent's majority label."""
    keep = parents >= 0
    if not keep.any():
        return 0.0
    p = np.asarray(parents[keep], dtype=np.int64)
    lab = np.asarray(labels[keep], dtype=np.int64)
    n_lab = int(lab.max()) + 1
    joint = np.bincount(p * n_lab + lab, minlength=(int(p.max()) + 1) * n_lab)
    return float(joint.reshape(-1, n_lab).max(axis=1).sum() / keep.sum())


def adjusted_rand(a: npt.NDArray[np.integer], b: npt.NDArray[np.integer]) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985), from the contingency table."""
    a = np.unique(a, return_inverse=True)[1]
    b = np.unique(b, return_inverse=True)[1]
    n = a.size
    if n < 2:
        return 1.0
    table = np.bincount(a * (b.max() + 1) + b, minlength=(a.max() + 1) * (b.max() + 1))

    def comb2(v: npt.NDArray[np.int64]) -> float:
        return float((v * (v - 1) // 2).sum())

    sum_ij = comb2(table)
    sum_a = comb2(np.bincount(a))
    sum_b = comb2(np.bincount(b))
    expected = sum_a * sum_b / (n * (n - 1) / 2)
    top = (sum_a + sum_b) / 2
    return 1.0 if top == expected else (sum_ij - expected) / (top - expected)


def clustering_report(
    parents: npt.NDArray[np.integer],
    members: npt.NDArray[np.int64],
    labels: npt.NDArray[np.integer],
) -> dict[str, Any]:
    """Child purity, parent purity, coverage and ARI of parents (points in kept parents)."""
    n = labels.shape[0]
    keep = parents >= 0
    covered = np.zeros(n, dtype=bool)
    if members.size:
        covered[members.ravel()] = True
    return {
        "images": int(n),
        "classes": int(np.unique(labels).size),
        "parents_kept": int(np.unique(parents[keep]).size),
        "children": int(members.shape[0]),
        "child_purity": child_purity(members, labels),
        "parent_purity": parent_purity(parents, labels),
        "parent_coverage": float(keep.mean()) if n else 0.0,
        "child_coverage": float(covered.mean()) if n else 0.0,
        "parent_ari": adjusted_rand(parents[keep], labels[keep]) if keep.any() else 0.0,
        "classes_with_children": int(np.unique(labels[members[:, 0]]).size) if members.size else 0,
    }
