"""load(): pyarrow, pandas and DuckDB over the same files; additive schema evolution."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

import data_manifests
from data_manifests import schema as S
from data_manifests.loader import files
from data_manifests.publish import publish
from data_manifests.registry import Registry
from tests.data_manifests.fakerun import PAIR_TYPES, PAIRS, make_run, test_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("test_tables")


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    run = make_run(tmp_path / "run", n_pairs=120)
    r = Registry(str(tmp_path / "reg"))
    publish(run, "ds", "1", ["pairs", "videos"], r, target_file_mb=0.004)
    return r


def test_load_pyarrow_pandas_duckdb_agree(reg: Registry) -> None:
    ds = data_manifests.load("ds@1", "pairs", registry=reg)
    t = ds.to_table()
    assert t.num_rows == 120 and len(files("ds@1", "pairs", reg)) > 1
    assert t.column("pair_id").to_pylist() == list(range(120))
    df = pd.read_parquet(files("ds@1", "pairs", reg))
    assert df["pair_id"].tolist() == list(range(120))
    assert (
        df["pair_type"].value_counts().to_dict()
        == pd.Series([PAIR_TYPES[i % 60] for i in range(120)]).value_counts().to_dict()
    )
    con = duckdb.connect()
    got = con.execute(
        "SELECT pair_type, count(*) FROM read_parquet(?) GROUP BY 1 ORDER BY 1",
        [files("ds@1", "pairs", reg)],
    ).fetchall()
    assert got == [("inter", 24), ("intra", 60), ("transitive", 36)]
    assert ds.to_table(filter=pa.compute.field("pair_type") == "inter").num_rows == 24


def test_registry_from_environment(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOMINE_REGISTRY", reg.url)
    assert data_manifests.load("ds@1", "videos").count_rows() == 6
    assert data_manifests.load("ds", "videos").count_rows() == 6  # newest version


def test_unknown_table_lists_the_tables(reg: Registry) -> None:
    with pytest.raises(KeyError, match=r"no table 'pair'; its tables: \['pairs', 'videos'\]"):
        data_manifests.load("ds@1", "pair", registry=reg)


def _pairs_v3(extra: list[pa.Field], drop: str | None = None) -> S.TableSchema:
    fields = [f for f in PAIRS.fields if f.name != drop] + extra
    return S.TableSchema("pairs", 3, pa.schema(fields), "pairs v3", key=("pair_id",))


def test_newer_reader_reads_older_dataset_when_additive(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(S.SCHEMAS, "pairs", _pairs_v3([pa.field("score", pa.float32())]))
    t = data_manifests.load("ds@1", "pairs", registry=reg).to_table()
    assert t.schema.field("score").type == pa.float32()
    assert t.column("score").null_count == 120
    assert t.column("pair_id").to_pylist() == list(range(120))


@pytest.mark.parametrize(
    ("extra", "drop", "message"),
    [
        (
            [pa.field("kind", pa.string(), nullable=False)],
            "pair_type",
            "column 'pair_type' .* not additive \\(renamed or removed\\)",
        ),
        (
            [pa.field("pair_type", pa.int32(), nullable=False)],
            "pair_type",
            "column 'pair_type' has type string, .* declares int32: the change is not additive",
        ),
        ([pa.field("score", pa.float32(), nullable=False)], None, "lacks required column 'score'"),
    ],
    ids=["renamed", "retyped", "required-added"],
)
def test_newer_reader_refuses_non_additive_change(
    reg: Registry,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[pa.Field],
    drop: str | None,
    message: str,
) -> None:
    monkeypatch.setitem(S.SCHEMAS, "pairs", _pairs_v3(extra, drop))
    with pytest.raises(S.SchemaError, match=message):
        data_manifests.load("ds@1", "pairs", registry=reg)


def test_older_reader_refuses_newer_dataset(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    old = S.TableSchema("pairs", 1, PAIRS.fields, "pairs v1", key=("pair_id",))
    monkeypatch.setitem(S.SCHEMAS, "pairs", old)
    with pytest.raises(S.SchemaError, match="schema version 2, newer than this reader's 1"):
        data_manifests.load("ds@1", "pairs", registry=reg)
