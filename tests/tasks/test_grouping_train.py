"""TrainEdges rounds and TrainGrouping on manifests given as ``--dataset``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import torch

from data_manifests import schema as schemas
from models.data_grouping import decode_labels
from models.synthetic_regions import write_region_manifest
from tasks.grouping_train import MOTION_COLUMN, MOTION_TABLE, TrainEdges, TrainGrouping
from tests.conftest import build

TINY = {"crop": {"input_size": 48}, "val_fraction": 0.0, "log_every": 1}


def _motion_edges(data: Path) -> None:
    """A motion-edge table for the synthetic frames: the leaves' outlines (strength 255)."""
    regions = pq.read_table(data / "regions.parquet").to_pylist()
    rows = []
    for r in regions:
        lab = decode_labels(r["leaves_png"]).astype(np.uint8)
        edge = cv2.morphologyEx(lab, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        png = cv2.imencode(".png", edge.astype(np.uint8) * 255)[1].tobytes()
        kept = len(rows) < 4  # the last 2 pairs were skipped (no edges)
        rows.append({
            "video_id": r["video_id"], "shot": 0, "frame": r["frame"], "width": 64,
            "height": 64, "next_frame": r["frame"] + 1, "kept": kept,
            "reason": "" if kept else "too_small", "residual_p99": 2.0, "flow_p99": 2.0,
            "moving_share": 0.2, "homography_inliers": 100, "detail": "",
            MOTION_COLUMN: png if kept else None, "orientation_png": None,
        })  # fmt: skip
    ts = schemas.get(MOTION_TABLE)
    schemas.write_parquet(
        schemas.table_from_rows(rows, ts), data / f"{MOTION_TABLE}.parquet", ts, {}
    )


def test_train_edges_rounds_retrain_on_own_edges_over_every_frame(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config()
    data = write_region_manifest(tmp_path / "data", n=6, size=64)
    _motion_edges(data)  # motion edges for 4 of the 6 frames (2 pairs were skipped)
    task = TrainEdges(dataset=str(data), rounds=2, steps=2, batch_size=2, loader_workers=0,
                      options=TINY, device="cpu")  # fmt: skip
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    out = task.output().local_path()
    rounds = json.loads((out / "rounds.json").read_text())
    # round 0: the frames with motion edges; round 1: the network's edges on every frame
    assert [r["round"] for r in rounds] == [0, 1] and [r["frames"] for r in rounds] == [4, 6]
    assert 0 < rounds[0]["edge_share"] < 0.5
    # later rounds keep at most round 0's edge share per frame (an untrained net over-fires)
    assert rounds[1]["edge_share"] <= 1.5 * rounds[0]["edge_share"]
    last = pq.read_table(out / "edge_targets.parquet")
    assert set(last.column("round").to_pylist()) == {1}
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["network"]["kind"] == "edges" and ck["step"] == 2
    assert (out / "round0.pt").is_file() and (out / "round1.pt").is_file()


def test_train_grouping_on_region_trees(tmp_path: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config()
    data = write_region_manifest(tmp_path / "data", n=4, size=64)
    task = TrainGrouping(dataset=str(data), steps=2, batch_size=2, loader_workers=0, options=TINY,
                         device="cpu")  # fmt: skip
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    ck = torch.load(task.checkpoint_path(), weights_only=True)
    assert (
        ck["network"]["kind"] == "grouping" and ck["config"]["columns"]["frames_table"] == "masks"
    )
    # the run report's embedding sheet: 4 frames of 64 px (resized to 160) beside their PCA colours
    sheet = cv2.imread(str(Path(task.output().path) / "embedding_pca.png"))
    assert sheet is not None and sheet.shape == (4 * 160, 2 * 160, 3)
    assert sheet[:, 160:].std() > 0  # the embedding half is not blank


def test_train_tasks_parse_as_root_tasks_on_the_command_line() -> None:
    # a root task's parameter named "workers" collided with luigi's own --workers (argparse
    # error before anything ran); the loader's is --loader-workers
    from luigi.cmdline_parser import CmdlineParser

    for name in ("TrainGrouping", "TrainEdges", "TrainMasks"):
        with CmdlineParser.global_instance(
            ["--module", "tasks", name, "--loader-workers", "0", "--workers", "2"]
        ) as cp:
            assert cp.get_task_obj().loader_workers == 0
