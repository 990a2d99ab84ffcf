"""Scanning a run root: tables by sidecar or Parquet footer, staging dirs, mixed runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_manifests import schema as S
from data_manifests.publish import publish
from data_manifests.registry import Registry
from data_manifests.runs import AmbiguousRunError, IncompleteRunError, scan_run
from tests.data_manifests.fakerun import (  # noqa: F401
    VIDEOS,
    make_run,
    pairs_rows,
    test_tables,
    videos_rows,
    write_stage,
)

pytestmark = pytest.mark.usefixtures("test_tables")


def test_tables_found_by_sidecar_and_by_footer(tmp_path: Path) -> None:
    out = write_stage(tmp_path, "FetchVideos", {"videos": videos_rows(0)}, params={"shard": 0})
    # a file the sidecar does not describe: recognised by the schema name in its footer
    S.write_parquet(S.table_from_rows(videos_rows(1), VIDEOS), out / "extra-name.parquet", VIDEOS)
    (tmp_path / "FetchVideos" / ".staging" / "half-written").mkdir(parents=True)
    run = scan_run(str(tmp_path))
    assert [s.dirname for s in run.stages] == [out.name]
    assert run.stages[0].tables == {"videos": ["extra-name.parquet", "videos.parquet"]}
    assert run.stages[0].wall_s == 1.5 and run.stages[0].code_version == "abc123def456"
    run.require_complete(["videos"], expected_shards=1)


def test_sidecar_that_is_not_json_makes_the_output_incomplete(tmp_path: Path) -> None:
    out = write_stage(tmp_path, "FetchVideos", {"videos": videos_rows(0)})
    (out / "_meta.json").write_text("{not json")
    assert scan_run(str(tmp_path)).incomplete_stages()[0].dirname == out.name


def test_two_runs_under_one_root_are_not_mixed(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    other = write_stage(run, "BuildGraph", {"pairs": pairs_rows(7)}, params={"k": 5})
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(
        AmbiguousRunError, match=r"more than one run \(several outputs of BuildGraph: "
    ):
        publish(run, "ds", "1", ["pairs"], reg)
    # choosing the run by its final output publishes exactly that run
    entry = publish(run, "ds", "1", ["pairs"], reg, outputs=[str(other)])
    assert entry.rows == {"pairs": 7}
    m = reg.manifest("ds@1")
    assert {s["task_family"] for s in m.sources} == {"BuildGraph"}


def test_selected_run_follows_requires(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    write_stage(run, "FetchVideos", {"videos": videos_rows(0)}, params={"shard": 0, "x": 1})
    final = next((run / "BuildGraph").iterdir())
    entry = publish(
        run, "ds", "1", ["pairs", "videos"], Registry(str(tmp_path / "reg")), outputs=[str(final)]
    )
    assert entry.rows == {"pairs": 60, "videos": 6}
    with pytest.raises(IncompleteRunError, match="is not an output under"):
        publish(
            run,
            "ds",
            "2",
            ["pairs"],
            Registry(str(tmp_path / "reg")),
            outputs=[str(tmp_path / "elsewhere")],
        )


def test_missing_run_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run root .*nowhere does not exist"):
        scan_run(str(tmp_path / "nowhere"))
