"""publish(): manifest fields, re-sharding, card, immutability, incomplete runs, races."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_manifests.publish import publish
from data_manifests.registry import DatasetExistsError, Registry
from data_manifests.runs import IncompleteRunError
from tests.data_manifests.fakerun import (
    PAIR_TYPES,
    TINY_PNG,
    iter_files,
    make_run,
    test_tables,  # noqa: F401  (fixture)
    write_stage,
)

pytestmark = pytest.mark.usefixtures("test_tables")


def _dataset_dir(reg: Registry, ref: str) -> Path:
    return Path(reg.dataset_store(reg.entry(ref)).root)


def test_publish_writes_manifest_with_every_file_hashed(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (tmp_path / "urls.txt").write_text("file:///videos/v0.mp4\n")
    reg = Registry(str(tmp_path / "reg"))
    parent = publish(run, "base", "1", ["videos"], reg, owner="team-a")
    entry = publish(
        run,
        "pairs-demo",
        "1.0",
        ["pairs", "videos"],
        reg,
        owner="team-a",
        description="demo pairs",
        parents=[parent.ref],
        images={"pairs": TINY_PNG},
        input_url_list=str(tmp_path / "urls.txt"),
    )
    d = _dataset_dir(reg, "pairs-demo@1.0")
    m = json.loads((d / "manifest.json").read_text())
    assert hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest() == entry.manifest_sha256
    listed = {f["path"]: f for t in m["tables"].values() for f in t["files"]}
    listed.update({f["path"]: f for f in m["files"]})
    on_disk = {str(p.relative_to(d)) for p in iter_files(d)} - {"manifest.json"}
    assert set(listed) == on_disk
    for rel, f in listed.items():
        data = (d / rel).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest()
        assert f["bytes"] == len(data)
    assert m["tables"]["pairs"]["schema_version"] == 2
    assert m["tables"]["pairs"]["rows"] == len(PAIR_TYPES)
    assert m["tables"]["videos"]["rows"] == 6
    assert m["licences"] == {"cc-by": 3, "cc0": 2, "unknown": 1}
    assert m["pair_types"] == {"intra": 30, "inter": 12, "transitive": 18}
    assert m["parents"] == ["base@1"]
    assert m["code_version"] == "abc123def456"
    assert m["input_url_list_sha256"] == hashlib.sha256(b"file:///videos/v0.mp4\n").hexdigest()
    assert m["config"] == {"BuildGraph": {"k": "4"}, "FetchVideos": {}}
    assert sorted(s["task_family"] for s in m["sources"]) == [
        "BuildGraph",
        "FetchVideos",
        "FetchVideos",
    ]
    assert m["counts"]["FetchVideos"] == {"ok": 5, "failed": 1}
    assert entry.rows == {"pairs": 60, "videos": 6} and entry.owner == "team-a"
    readme = (d / "README.md").read_text()
    assert "cc-by | 3" in readme and "transitive | 18" in readme and "card/example-00.png" in readme
    assert "base@1" in readme and "Known limits" in readme
    assert "| pairs | pairs v2 | 60 | 1 |" in readme and "test pairs" in readme


def test_reshard_respects_target_size_and_keeps_rows_in_order(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_pairs=400, image_bytes=2000)  # ~0.8 MB of images
    reg = Registry(str(tmp_path / "reg"))
    publish(run, "big", "1", ["pairs"], reg, target_file_mb=0.2, row_group_mb=0.05)
    t = reg.manifest("big@1").tables["pairs"]
    assert 4 <= len(t.files) <= 6, [f.rows for f in t.files]
    d = _dataset_dir(reg, "big@1")
    ids = []
    for i, f in enumerate(t.files):
        pf = pq.ParquetFile(d / f.path)
        assert pf.metadata.num_rows == f.rows
        if i < len(t.files) - 1:  # full files: ~0.2 MB in ~0.05 MB row groups
            assert 0.15e6 <= pf.read().nbytes <= 0.2e6
            assert 3 <= pf.metadata.num_row_groups <= 5
        ids += pf.read(columns=["pair_id"]).column(0).to_pylist()
    assert ids == list(range(400))


def test_existing_version_is_refused_and_nothing_overwritten(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    reg = Registry(str(tmp_path / "reg"))
    publish(run, "ds", "1", ["pairs"], reg)
    before = {p: p.read_bytes() for p in iter_files(tmp_path / "reg")}
    with pytest.raises(DatasetExistsError, match="ds@1 is already published"):
        publish(run, "ds", "1", ["videos"], reg)
    assert {p: p.read_bytes() for p in iter_files(tmp_path / "reg")} == before


def test_incomplete_run_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    write_stage(run, "TrackObjects", {"pairs": []}, params={"shard": 0}, complete=False)
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(IncompleteRunError, match=r"TrackObjects/.* has no _SUCCESS marker"):
        publish(run, "ds", "1", ["pairs"], reg)
    assert not (tmp_path / "reg" / "catalog").exists()


def test_missing_shard_and_missing_table_are_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_stage(run, "FetchVideos", {"videos": []}, params={"shard": 1})
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(IncompleteRunError, match=r"FetchVideos is missing shards \[0\]"):
        publish(run, "ds", "1", ["videos"], reg)
    write_stage(run, "FetchVideos", {"videos": []}, params={"shard": 0})
    with pytest.raises(IncompleteRunError, match=r"missing shards \[2\] of 3"):
        publish(run, "ds", "1", ["videos"], reg, expected_shards=3)
    with pytest.raises(IncompleteRunError, match="no completed stage output holds table 'pairs'"):
        publish(run, "ds", "1", ["pairs"], reg)


def test_required_upstream_output_must_be_complete(tmp_path: Path) -> None:
    run = tmp_path / "run"
    gone = str(tmp_path / "elsewhere" / "FetchVideos" / "x-12345678")
    write_stage(run, "BuildGraph", {"pairs": []}, requires=[gone])
    with pytest.raises(IncompleteRunError, match="requires .*x-12345678, not complete"):
        publish(run, "ds", "1", ["pairs"], Registry(str(tmp_path / "reg")))


def test_bad_names_tables_and_images(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(ValueError, match="dataset name '../x' is not allowed"):
        publish(run, "../x", "1", ["pairs"], reg)
    with pytest.raises(KeyError, match="unknown table 'parts'"):
        publish(run, "ds", "1", ["parts"], reg)
    with pytest.raises(ValueError, match="card image 'x' is not a PNG"):
        publish(run, "ds", "1", ["pairs"], reg, images={"x": b"GIF89a"})
    with pytest.raises(KeyError, match="no dataset 'nope'"):
        publish(run, "ds", "1", ["pairs"], reg, parents=["nope@1"])


def _race(run: Path, reg: str, barrier: threading.Barrier, results: list[str], i: int) -> None:
    barrier.wait()
    try:
        publish(run, "race", "1", ["pairs"], reg, owner=f"p{i}")
        results.append(f"won p{i}")
    except DatasetExistsError as e:
        results.append(f"lost: {e}")


def test_two_threads_racing_exactly_one_wins(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    reg = str(tmp_path / "reg")
    results: list[str] = []
    barrier = threading.Barrier(4)
    threads = [
        threading.Thread(target=_race, args=(run, reg, barrier, results, i)) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r.startswith("won")]) == 1, results
    assert all("race@1 is already published" in r for r in results if r.startswith("lost")), results
    owner = Registry(reg).entry("race@1").owner
    assert f"won {owner}" in results
    # the losers' prefixes are gone: exactly one dataset directory remains
    assert len(list((tmp_path / "reg" / "datasets" / "race").iterdir())) == 1


def _proc_publish(run: str, reg: str, i: int, q: mp.Queue[str]) -> None:
    from data_manifests import schema as S
    from tests.data_manifests.fakerun import PAIRS, VIDEOS

    S.all_schemas()
    S.SCHEMAS["pairs"], S.SCHEMAS["videos"] = PAIRS, VIDEOS
    try:
        publish(run, "race", "1", ["pairs"], reg, owner=f"p{i}")
        q.put("won")
    except DatasetExistsError as e:
        q.put(f"lost: {e}")


def test_two_processes_racing_exactly_one_wins(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    ctx = mp.get_context("spawn")
    q: mp.Queue[str] = ctx.Queue()
    procs = [
        ctx.Process(target=_proc_publish, args=(str(run), str(tmp_path / "reg"), i, q))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(r.split(":")[0] for r in results) == ["lost", "won"], results
    assert Registry(str(tmp_path / "reg")).versions("race") == ["1"]
