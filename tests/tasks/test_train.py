"""Training and evaluation tasks under luigi.build, on synthetic manifests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from models.synthetic import (
    SyntheticPatchConfig,
    write_labelled_folder,
    write_mask_manifest,
    write_pair_manifest,
)
from pipeline import features
from tasks.feature_source import build_source, feature_model_task
from tasks.train import TrainContext, TrainMasks, TrainTracking
from tasks.train_eval import EvaluateMasks, EvaluateRetrieval
from tasks.train_transitive import TrainTransitive
from tests.conftest import build
from tests.models.test_evaluate import _davis

TINY: dict[str, Any] = {
    "trunk_options": {"widths": [8, -1, 8, -1, 8, -1, 8, -1, 8, -1]},
    "network": {"hidden": 16, "embed_dim": 8, "input_size": 32},
    "tensorboard": False, "log_every": 1, "val_fraction": 0.0,
}  # fmt: skip
SMALL = dict(steps=3, batch_size=8, loader_workers=0, options=TINY)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = SyntheticPatchConfig(n_classes=3, instances_per_class=6, size=32)
    return write_pair_manifest(tmp_path_factory.mktemp("pairs"), cfg)


def test_train_transitive_then_evaluate_retrieval(
    pairs: Path,
    tmp_path: Path,
    luigi_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    luigi_config()
    # configured the operator's way, so EvaluateRetrieval(model="transitive") finds this task
    luigi_config(section="TrainTransitive", dataset=str(pairs), steps=3, batch_size=8, loader_workers=0,
                 options=json.dumps(TINY))  # fmt: skip
    task = TrainTransitive()
    assert task == TrainTransitive(dataset=str(pairs), **SMALL)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    out = task.output().local_path()
    for name in ("checkpoint.pt", "summary.json", "metrics.jsonl", "config.json", "train.log"):
        assert (out / name).is_file(), name
    meta = task.output().meta()
    assert meta["counts"]["steps"] == 3 and meta["notes"]["train_summary"]["task"] == "ranking"
    assert not task.work_dir().exists()  # committed: the resume state is gone
    assert json.loads((out / "config.json").read_text())["pair_types"] is None

    labelled = write_labelled_folder(
        tmp_path / "labelled", SyntheticPatchConfig(n_classes=3, size=32), 4
    )
    ev = EvaluateRetrieval(
        data_root=str(labelled), out_dir=str(tmp_path / "ev"), model="transitive", k=3
    )
    ev_res = build([ev])  # the train task is complete: only the evaluation runs
    assert ev_res.scheduling_succeeded, ev_res.summary_text
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(m["methods"]) == {"checkpoint", "random_init", "hog"}
    assert m["checkpoint"] == str(out / "checkpoint.pt")
    assert f"EvaluateRetrieval: wrote {tmp_path / 'ev' / 'metrics.json'}" in capsys.readouterr().out


def test_train_tracking_under_torchrun_uses_intra_pairs_only(
    pairs: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config()
    task = TrainTracking(dataset=str(pairs), nproc=2, **SMALL)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    out = task.output().local_path()
    assert json.loads((out / "config.json").read_text())["pair_types"] == ["intra"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    # the tracking network is now a feature source of pipeline.features
    src = build_source(
        features.FeatureConfig(
            source="tracking", checkpoint=str(out / "checkpoint.pt"), patch_size=32
        )
    )
    assert src.embed(torch.zeros(2, 32, 32, 3, dtype=torch.uint8).numpy()).shape == (2, 8)
    with pytest.raises(ValueError, match="needs a 'context' network"):
        build_source(
            features.FeatureConfig(source="context", checkpoint=str(out / "checkpoint.pt"))
        )


def test_train_masks_and_context_then_evaluate_masks(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config()
    data = write_mask_manifest(tmp_path / "masks", n=12)
    common = dict(steps=2, batch_size=4, loader_workers=0)
    masks = TrainMasks(
        dataset=str(data), trunk="vgg16", **common,
        options={**TINY, "crop": {"input_size": 64, "mask_size": 16},
                 "network": {"input_size": 64, "mask_size": 16, "reduce_channels": 4, "hidden": 8}},
    )  # fmt: skip
    context = TrainContext(
        dataset=str(data), **common,
        options={**TINY, "crop": {"patch_size": 32, "patch": 24, "gap": 8},
                 "network": {"input_size": 32, "fc6": 8, "fc7": 8}},
    )  # fmt: skip
    res = build([masks, context])
    assert res.scheduling_succeeded, res.summary_text
    ck = torch.load(context.checkpoint_path(), weights_only=True)
    assert ck["network"]["kind"] == "context"
    _davis(tmp_path / "davis")
    ev = EvaluateMasks(data_root=str(tmp_path / "davis"), out_dir=str(tmp_path / "ev"),
                       checkpoint=str(masks.checkpoint_path()), unlc_root=str(tmp_path / "davis" / "unlc"))  # fmt: skip
    assert build([ev]).scheduling_succeeded
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(m["methods"]) == {"mask_network", "unlc"}


def test_failed_training_leaves_no_output(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config()
    (tmp_path / "empty").mkdir()
    task = TrainTransitive(dataset=str(tmp_path / "empty"), **SMALL)
    res = build([task])
    assert not res.scheduling_succeeded
    assert not task.output().exists()
    assert "has no table 'patches'" in (task.work_dir() / "train.log").read_text()


def test_upstream_requirements_without_dataset(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    lst = tmp_path / "list.csv"
    lst.write_text("url,video_id\n" + "".join(f"file:///v{i}.mp4,v{i}\n" for i in range(3)))
    luigi_config(video_list=str(lst), videos_per_shard=2)
    assert [t.task_family for t in TrainTracking().requires()] == ["TrackObjects"] * 2
    assert [t.task_family for t in TrainTransitive().requires()] == ["BuildGraph"]
    assert [t.task_family for t in TrainMasks().requires()] == ["SegmentMotion"] * 2
    assert [t.task_family for t in TrainContext().requires()] == ["SegmentMotion"] * 2
    assert TrainTracking(dataset="synth@1").requires() == []
    assert TrainTracking(dataset="synth@1").sources() == ["synth@1"]
    ctx = feature_model_task("context")
    assert ctx is not None and ctx.task_family == "TrainContext"
    assert feature_model_task("hog") is None


def test_demo_retrieval_from_a_published_dataset(
    tmp_path: Path, luigi_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_manifests.publish import publish
    from tasks import train_eval

    stage = tmp_path / "mined" / "BuildGraph" / "BuildGraph__99914b932b-0123abcd"
    write_pair_manifest(stage, SyntheticPatchConfig(n_classes=3, instances_per_class=6, size=32))
    meta = {"task_family": "BuildGraph", "task_id": "BuildGraph__99914b932b",
            "lineage": "0123abcd" * 8, "params": {}, "tables": {}}  # fmt: skip
    (stage / "_meta.json").write_text(json.dumps(meta))
    (stage / "_SUCCESS").write_text("{}")
    publish(str(tmp_path / "mined"), "demo", "1", ["pairs", "nodes"], str(tmp_path / "reg"))
    monkeypatch.delenv("VIDEOMINE_REGISTRY", raising=False)
    luigi_config(registry=str(tmp_path / "reg"))  # in-process only: passed on in the config
    small = {**train_eval.DEMO_TRAIN, "steps": 3, "batch_size": 8, "loader_workers": 0,
             "options": {**TINY, "network": {"hidden": 16, "embed_dim": 8, "input_size": 32}}}  # fmt: skip
    monkeypatch.setattr(train_eval, "DEMO_TRAIN", small)
    line = train_eval.demo_retrieval("demo@1", tmp_path / "demo")
    assert line.startswith("retrieval precision@") and "vs random init" in line
    assert len(list((tmp_path / "demo" / "labelled").iterdir())) == 18  # one class per video
    # make demo's linear probe: the trained transitive network on that folder, beside the
    # floor, HOG and random init; the frame runs not trained here are listed, not scored
    from tasks.train_frames import demo_frame_runs

    listed = tmp_path / "videos.txt"  # the frame runs' paths depend on the video list
    listed.write_text("/nowhere/a.mp4\n")
    luigi_config(video_list=str(listed))
    runs = demo_frame_runs()
    nets = train_eval.demo_networks(train_eval.demo_transitive("demo@1"), runs)
    assert set(nets) == {"transitive", "counting", "jigsaw", "student"}
    assert nets["student"] == str(runs[2].checkpoint_path())
    table = train_eval.demo_linear(tmp_path / "demo", nets)
    rows = json.loads((tmp_path / "demo" / "linear" / "metrics.json").read_text())["methods"]
    assert rows["transitive"]["checkpoint"] == nets["transitive"]
    assert 0.0 <= rows["transitive"]["mean_class_accuracy"] <= 1.0
    assert rows["majority_class"]["mean_class_accuracy"] == pytest.approx(1 / 18)
    assert {rows[n]["status"] for n in ("counting", "jigsaw", "student")} == {"not available"}
    assert "| transitive | " in table and "| student | not available |" in table
