"""EvaluateClusters on a tiny generated folder of labelled shape images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline import imaging
from pipeline.shapes import ShapeConfig, shape_patches
from tasks.graph_eval import EvaluateClusters
from tests.conftest import build


def _folder(root: Path) -> None:
    cfg = ShapeConfig(n_per_kind=30, kinds=("disc", "cross", "bars", "triangle"), seed=5)
    patches, labels = shape_patches(cfg)
    for i, (p, lab) in enumerate(zip(patches, labels, strict=True)):
        d = root / cfg.kinds[lab]
        d.mkdir(parents=True, exist_ok=True)
        if i % 2:
            (d / f"{i:03d}.jpg").write_bytes(imaging.encode_jpeg(p, 95))
        else:
            imaging.save_png(d / f"{i:03d}.png", p)


def test_evaluate_clusters(tmp_path: Path, luigi_config, capsys) -> None:  # type: ignore[no-untyped-def]
    data, out = tmp_path / "data", tmp_path / "out"
    _folder(data)
    task = EvaluateClusters(
        data_root=str(data), out_dir=str(out), k=8, points_per_parent=10, min_parent_size=5
    )
    assert build([task]).scheduling_succeeded
    m = json.loads((out / "metrics.json").read_text())
    r = m["metrics"]
    assert (r["images"], r["classes"]) == (120, 4)
    assert r["children"] >= 10
    assert r["child_purity"] == 1.0
    assert r["parent_purity"] >= 0.9  # over-clustered parents (K=2x classes) stay pure
    assert 0 < r["child_coverage"] <= 1
    assert m["parents"]["k"] == 8
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 120 and rows[0]["label"] == "bars"
    assert "child_purity" in (out / "metrics.md").read_text()
    assert str(out / "metrics.json") in capsys.readouterr().out


def test_evaluate_clusters_rejects_empty_folder(tmp_path: Path) -> None:
    from tasks.graph_eval import find_images

    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        find_images(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        find_images(tmp_path / "missing")
