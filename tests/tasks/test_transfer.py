"""ClusterPseudoLabels -> TrainStudent under luigi.build, on synthetic frames."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.manifests import read_table
from models.synthetic import SyntheticPatchConfig, write_frames_manifest
from tasks.transfer import ClusterPseudoLabels, TrainStudent
from tests.conftest import build

TINY: dict[str, Any] = {
    "trunk_options": {"widths": [8, -1, 8, -1, 8, -1, 8, -1, 8, -1]},
    "network": {"hidden": 16, "input_size": 32},
    "tensorboard": False, "log_every": 1, "val_fraction": 0.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = SyntheticPatchConfig(n_classes=4, instances_per_class=20, size=48, seed=1)
    return write_frames_manifest(tmp_path_factory.mktemp("frames"), cfg)


def test_hog_pseudo_labels_then_student(frames: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config()
    luigi_config(section="ClusterPseudoLabels", frames=str(frames), source="hog", patch_size=48,
                 points_per_cluster=40)  # fmt: skip
    labels_task = ClusterPseudoLabels()
    student = TrainStudent(steps=3, batch_size=8, loader_workers=0, trunk="vgg16", options=TINY)
    res = build([student])
    assert res.scheduling_succeeded, res.summary_text
    out = labels_task.output()
    t = read_table(out.local_path(), "pseudo_labels")
    assert t.num_rows == 160 and set(t.column("teacher").to_pylist()) == {"hog"}
    assert set(t.column("k").to_pylist()) == {4}  # min(2000, 160 // 40)
    # HOG sees the stripe orientation, not the colours: clusters follow the planted classes
    truth = read_table(
        write_frames_manifest(
            frames.parent / "truth",
            SyntheticPatchConfig(n_classes=4, instances_per_class=20, size=48, seed=1),
            labels=True,
        ),
        "pseudo_labels",
    )
    y, got = np.asarray(truth.column("label")), np.asarray(t.column("label"))
    purity = sum(np.bincount(y[got == c]).max() for c in np.unique(got)) / len(y)
    assert purity > 0.85, purity  # measured 0.93 (8 whitened components of N = 160)
    sizes = np.bincount(got)
    assert (np.asarray(t.column("cluster_size")) == sizes[got]).all()
    meta = out.meta()
    assert (
        meta["notes"]["pseudo_labels"]["pca_dim"] > 0 and meta["notes"]["teacher"]["name"] == "hog"
    )
    assert (out.local_path() / "clusters.png").is_file()
    cfg = json.loads((student.output().local_path() / "config.json").read_text())
    assert cfg["network"]["n_classes"] == 4 and cfg["task"] == "student"
    ck = torch.load(student.checkpoint_path(), weights_only=True)
    assert ck["network"]["kind"] == "student" and ck["step"] == 3


def test_teacher_checkpoint_must_exist(frames: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config()
    task = ClusterPseudoLabels(frames=str(frames), source="checkpoint", patch_size=48)
    res = build([task])
    assert not res.scheduling_succeeded
    with pytest.raises(ValueError, match="needs FeatureConfig.checkpoint"):
        task.run()


def test_evaluate_linear_lists_every_compared_network(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    from models.synthetic import write_labelled_folder
    from tasks.train_eval import COMPARED, EvaluateLinear

    luigi_config()
    root = write_labelled_folder(tmp_path / "lab", SyntheticPatchConfig(n_classes=3), per_class=6)
    task = EvaluateLinear(data_root=str(root), out_dir=str(tmp_path / "out"))
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    rows = json.loads((tmp_path / "out" / "metrics.json").read_text())["methods"]
    assert all(rows[n]["status"] == "not available" for n in COMPARED)
    assert {"majority_class", "hog", "random_init"} <= set(rows)
    assert task.complete()


def test_train_tasks_parse_on_the_luigi_command_line() -> None:
    """A root task with a ``workers`` parameter clashed with luigi's own --workers."""
    from luigi.cmdline_parser import CmdlineParser

    from tasks.train import TrainContext

    for cls in (TrainStudent, TrainContext):
        argv = [cls.__name__, "--loader-workers", "0", "--workers", "2", "--steps", "5"]
        with CmdlineParser.global_instance(argv) as cp:
            task = cp.get_task_obj()
        assert isinstance(task, cls) and task.loader_workers == 0 and task.steps == 5
