"""SegmentMotion frames -> DetectEdges and ComputeRegions under luigi.build."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import imaging
from pipeline.edges import EdgeMap
from pipeline.regions import leaf_distance
from pipeline.synthetic import SyntheticConfig, generate, write_video
from tasks import common
from tasks.grouping import (
    EDGE_SOURCES,
    ComputeRegions,
    DetectEdges,
    EdgeSource,
    register_edge_source,
    tree_from_row,
)
from tests.conftest import build

CLIP = SyntheticConfig(height=120, width=160, n_frames=24, object_size=48,
                       camera_pan=(1.5, 0.0), seed=1)  # fmt: skip


@pytest.fixture
def video_list(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    write_video(d / "moving.mp4", generate(CLIP).frames, 25.0)
    lst = tmp_path / "list.csv"
    with open(lst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["url", "video_id"])
        w.writeheader()
        w.writerow({"url": str(d / "moving.mp4"), "video_id": "moving"})
    return lst


def test_detect_edges_and_compute_regions(
    video_list: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config(video_list=str(video_list), videos_per_shard=5)
    luigi_config(section="SegmentMotion", n_superpixels=150)
    edges_task = DetectEdges(shard=0, superpixels=300)
    regions_task = ComputeRegions(shard=0, max_leaves=12)
    res = build([edges_task, regions_task])
    assert res.scheduling_succeeded, res.summary_text
    rows = common.read_stage_table(edges_task.output(), "motion_edges").to_pylist()
    assert len(rows) == 23  # every mined frame but the last of the shot
    kept = [r for r in rows if r["kept"]]
    assert len(kept) >= 15, [r["reason"] for r in rows]  # an object moves throughout
    r = kept[0]
    strength = imaging.decode_png(r["edge_png"])
    assert strength.shape == (120, 160) and strength.dtype == np.uint8
    obj = generate(CLIP).masks[r["frame"]] > 0  # motion edges lie on the object's outline
    outline = cv2.dilate(
        cv2.morphologyEx(obj.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)),
        np.ones((7, 7), np.uint8),
    )
    on = strength[outline > 0].astype(float).mean()
    assert on > 10 * max(strength[outline == 0].astype(float).mean(), 0.1), on
    assert imaging.decode_png(r["orientation_png"]).max() < 180
    assert all(r["edge_png"] is None for r in rows if not r["kept"])
    trees = common.read_stage_table(regions_task.output(), "regions").to_pylist()
    assert len(trees) == 24 and {t["edge_source"] for t in trees} == {"gradient"}
    tree = tree_from_row(trees[5])
    assert tree.leaves.shape == (120, 160) and tree.n_leaves == trees[5]["n_leaves"] <= 12
    d = leaf_distance(tree)
    assert d.shape == (tree.n_leaves, tree.n_leaves)
    assert (Path(edges_task.output().path) / "edges.png").is_file()
    assert (Path(regions_task.output().path) / "ucm.png").is_file()
    # another edge source joins by name (as the trained edge network does): a flat edge
    # map gives one-leaf trees, and its rows say which source built them
    flat = EdgeSource(lambda t: [], lambda t, deps: lambda f: EdgeMap(
        np.zeros(f.shape[:2], np.float32), np.zeros(f.shape[:2], np.float32)))  # fmt: skip
    register_edge_source("flat_for_test", flat)
    try:
        other = ComputeRegions(shard=0, max_leaves=12, edge_source="flat_for_test")
        assert build([other]).scheduling_succeeded
        rows = common.read_stage_table(other.output(), "regions").to_pylist()
        assert {(r["edge_source"], r["n_leaves"]) for r in rows} == {("flat_for_test", 1)}
    finally:
        EDGE_SOURCES.pop("flat_for_test")


def test_unknown_edge_source_lists_the_valid_ones(luigi_config: Callable[..., Path]) -> None:
    with pytest.raises(KeyError, match="gradient"):
        ComputeRegions(shard=0, edge_source="structured").requires()
