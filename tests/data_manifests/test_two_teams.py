"""The docs' two-team example: A publishes to a shared registry; B lists, verifies, reads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest

import data_manifests
from data_manifests.__main__ import main
from data_manifests.loader import files
from data_manifests.publish import publish
from tests.data_manifests.fakerun import make_run, test_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("test_tables")


def test_team_a_publishes_team_b_lists_verifies_and_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared-registry"
    # team A
    run = make_run(tmp_path / "team-a" / "run")
    publish(
        run,
        "street-pairs",
        "1",
        ["pairs", "videos"],
        str(shared),
        owner="team-a",
        description="Street scenes",
    )
    # team B: only the registry location, from the environment
    monkeypatch.setenv("VIDEOMINE_REGISTRY", str(shared))
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    assert "street-pairs@1" in capsys.readouterr().out
    assert main(["verify", "street-pairs@1"]) == 0
    assert capsys.readouterr().out.strip().endswith("OK")
    ds = data_manifests.load("street-pairs@1", "pairs")
    assert sum(b.num_rows for b in ds.to_batches(batch_size=7)) == 60
    inter = ds.to_table(filter=pc.field("pair_type") == "inter").to_pandas()
    assert len(inter) == 12 and set(inter["pair_type"]) == {"inter"}
    paths = files("street-pairs@1", "pairs")
    got = duckdb.sql(
        f"SELECT pair_type, count(*) FROM read_parquet({paths}) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == [("inter", 12), ("intra", 30), ("transitive", 18)]
    # the card team B reads
    assert main(["show", "street-pairs@1"]) == 0
    out = capsys.readouterr().out
    assert "owner       team-a" in out and "description Street scenes" in out
