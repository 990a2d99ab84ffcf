"""EvaluatePropagation on a synthetic DAVIS-layout clip whose moving object's mask is known."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from models import checkpoint as ckpt_io
from models.grouping import GroupingNet, GroupingNetConfig
from pipeline.imaging import encode_jpeg, encode_png
from pipeline.synthetic import SyntheticConfig, generate
from tasks.grouping_eval import EvaluatePropagation, read_labels
from tests.conftest import build


def _write_davis(root: Path) -> None:
    v = generate(
        SyntheticConfig(height=96, width=128, n_frames=10, object_size=40, speed=4.0, seed=2)
    )
    img_dir = root / "JPEGImages" / "480p" / "mover"
    ann_dir = root / "Annotations" / "480p" / "mover"
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    for i, (f, m) in enumerate(zip(v.frames, v.masks, strict=True)):
        (img_dir / f"{i:05d}.jpg").write_bytes(encode_jpeg(f, 95))
        (ann_dir / f"{i:05d}.png").write_bytes(encode_png((m > 0).astype(np.uint8) * 255))


def test_propagation_table_follows_the_moving_object(
    tmp_path: Path, luigi_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    luigi_config()
    data, out = tmp_path / "davis", tmp_path / "eval"
    _write_davis(data)
    ck = tmp_path / "grouping.pt"
    net = GroupingNet(GroupingNetConfig(trunk_options={"init_seed": 3}))
    ckpt_io.save_atomic({"model": net.state_dict(), "config": {},
                         "network": {"kind": "grouping", "config": {"trunk_options": {"init_seed": 3}}}},
                        ck)  # fmt: skip
    task = EvaluatePropagation(data_root=str(data), out_dir=str(out), grouping_checkpoint=str(ck),
                               height=96, hog_cell=4)  # fmt: skip
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    printed = capsys.readouterr().out
    assert "| copy_first | paper |" in printed and "not run: no --context-checkpoint" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["not_run"]) == {"transitive", "context"}
    meth = m["methods"]
    assert set(meth) == {"copy_first", "random", "hog", "grouping"}
    copy_j = meth["copy_first"]["paper"]["overall"]["J_mean"]
    # the object moves off its first position: copying loses it, features follow it
    assert copy_j < 0.6
    for name in ("random", "grouping"):
        for proto in ("paper", "common"):
            assert meth[name][proto]["overall"]["J_mean"] > copy_j + 0.15, (name, proto)
    assert (out / "pca" / "mover.png").is_file()


def test_read_labels_numbers_grey_objects(tmp_path: Path) -> None:
    arr = np.zeros((4, 4), np.uint8)
    arr[0, 0], arr[3, 3] = 255, 128
    p = tmp_path / "a.png"
    p.write_bytes(encode_png(arr))
    lab = read_labels(p)
    assert lab[0, 0] == 2 and lab[3, 3] == 1 and lab[1, 1] == 0


def test_evaluate_edges_scores_baseline_above_floor_and_lists_each_round(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    from models.edge_net import EdgeNet, EdgeNetConfig
    from tasks.edges_eval import EvaluateEdges

    luigi_config()
    data, out = tmp_path / "davis", tmp_path / "edges"
    _write_davis(data)
    ck = tmp_path / "round0.pt"
    ckpt_io.save_atomic({"model": EdgeNet(EdgeNetConfig()).state_dict(), "config": {},
                         "network": {"kind": "edges", "config": {}}}, ck)  # fmt: skip
    task = EvaluateEdges(data_root=str(data), out_dir=str(out), checkpoints=str(ck), frame_step=3)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    m = json.loads((out / "metrics.json").read_text())
    src = m["sources"]
    assert set(src) == {"random (floor)", "gradient (baseline)", "network round0"}
    assert m["frames"] == 4
    # the square's outline is a strong colour edge: the baseline beats noise
    assert src["gradient (baseline)"]["best_f"] > src["random (floor)"]["best_f"] + 0.2
    assert all(0 < s["oracle_iou"] <= 1 and 1 <= s["leaves"] <= 40 for s in src.values())
