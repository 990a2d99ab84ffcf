"""PublishDataset over a real run (tiny StageTasks on the run model), and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import data_manifests
from data_manifests.registry import DatasetExistsError, Registry
from data_manifests.runs import AmbiguousRunError, IncompleteRunError
from data_manifests.verify import verify
from tasks.publish import PublishDataset
from tests.conftest import build
from tests.data_manifests.fakerun import test_tables  # noqa: F401
from tests.tasks.minirun import _Fetch, _Graph, _patch

pytestmark = pytest.mark.usefixtures("test_tables")


def test_publish_dataset_task_from_a_real_run(luigi_config, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"file:///videos/v{i}.mp4\n" for i in range(6)))
    reg = tmp_path / "reg"
    luigi_config(registry=str(reg), video_list=str(urls), videos_per_shard=3)
    assert build([_Graph()]).scheduling_succeeded
    task = PublishDataset(
        name="team-a-pairs", version="1", tables=["pairs", "videos"], owner="team-a"
    )
    assert not task.complete()
    assert build([task]).scheduling_succeeded
    assert task.complete()
    m = Registry(str(reg)).manifest("team-a-pairs@1")
    assert m.licences == {"cc-by": 3, "cc0": 2, "unknown": 1}
    assert m.pair_types == {"intra": 30, "inter": 12, "transitive": 18}
    assert {s["task_family"] for s in m.sources} == {"_Fetch", "_Graph"}
    assert m.input_url_list_sha256 is not None
    assert m.config["_Graph"]["n_shards"] == "2"
    captions = (
        Path(Registry(str(reg)).dataset_store(Registry(str(reg)).entry("team-a-pairs@1")).root)
        / "README.md"
    ).read_text()
    assert "_Graph: pairs_montage" in captions and "pairs: first rows" in captions
    assert len([f for f in m.files if f.path.endswith(".png")]) == 2
    assert verify("team-a-pairs@1", str(reg)).ok
    df = data_manifests.load("team-a-pairs@1", "pairs", registry=str(reg)).to_table().to_pandas()
    assert len(df) == 60 and df["image"].iloc[0] == _patch(0)
    # rerunning the same command is a no-op; nothing is rewritten
    entry = (reg / "catalog" / "team-a-pairs" / "1.json").read_bytes()
    assert build(
        [PublishDataset(name="team-a-pairs", version="1", tables=["pairs", "videos"])]
    ).scheduling_succeeded
    assert (reg / "catalog" / "team-a-pairs" / "1.json").read_bytes() == entry


def test_publish_dataset_refuses_an_incomplete_run(luigi_config, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"file:///videos/v{i}.mp4\n" for i in range(6)))
    luigi_config(registry=str(tmp_path / "reg"), video_list=str(urls), videos_per_shard=3)
    assert build([_Fetch(shard=0)]).scheduling_succeeded  # shard 1 never ran
    task = PublishDataset(name="x", version="1", tables=["videos"])
    with pytest.raises(IncompleteRunError, match=r"_Fetch is missing shards \[1\] of 2"):
        task.run()
    assert not task.complete()
    assert not (tmp_path / "reg" / "catalog").exists()


def test_version_published_from_another_run_is_refused(luigi_config, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"file:///videos/v{i}.mp4\n" for i in range(6)))
    reg = tmp_path / "reg"
    luigi_config(registry=str(reg), video_list=str(urls), videos_per_shard=3)
    assert build([_Graph()]).scheduling_succeeded
    assert build([PublishDataset(name="d", version="1", tables=["videos"])]).scheduling_succeeded
    luigi_config(root=str(tmp_path / "other-run"))
    assert build([_Fetch(shard=0), _Fetch(shard=1)]).scheduling_succeeded
    task = PublishDataset(name="d", version="1", tables=["videos"])
    assert not task.complete()
    with pytest.raises(DatasetExistsError, match="d@1 is already published"):
        task.run()
    assert json.loads((reg / "catalog" / "d" / "1.json").read_text())["rows"] == {"videos": 6}


def test_upstream_chooses_the_run_when_the_root_holds_two(luigi_config, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"file:///videos/v{i}.mp4\n" for i in range(6)))
    reg = tmp_path / "reg"
    luigi_config(registry=str(reg), video_list=str(urls), videos_per_shard=3)
    assert build([_Graph(), _Graph(n_shards=1)]).scheduling_succeeded
    with pytest.raises(AmbiguousRunError, match="several outputs of _Graph"):
        PublishDataset(name="d", version="1", tables=["pairs"]).run()
    task = PublishDataset(
        name="d", version="1", tables=["pairs", "videos"], upstream=["_Graph", "_Fetch"]
    )
    assert [t.task_id for t in task.requires()][1:] == [
        _Fetch(shard=0).task_id,
        _Fetch(shard=1).task_id,
    ]
    assert build([task]).scheduling_succeeded and task.complete()
    m = Registry(str(reg)).manifest("d@1")
    assert m.config["_Graph"]["n_shards"] == "2"
    assert sorted(s["task_family"] for s in m.sources) == ["_Fetch", "_Fetch", "_Graph"]
    with pytest.raises(ValueError, match="upstream 'NoSuchStage'"):
        PublishDataset(name="d", version="2", tables=["pairs"], upstream=["NoSuchStage"]).requires()
