"""Schema declaration, conformance and the additive-evolution rule."""

from __future__ import annotations

import pyarrow as pa
import pytest

from data_manifests import schema as S

V1 = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int64())])
V2 = V1.append(pa.field("score", pa.float32()))  # additive: a new nullable column


def ts(fields: pa.Schema, version: int) -> S.TableSchema:
    return S.TableSchema(name="_evo", version=version, fields=fields, description="t", key=("id",))


def test_newer_reader_reads_older_file_when_additive(tmp_path):
    p = tmp_path / "t.parquet"
    S.write_parquet(pa.table({"id": ["a", "b"], "n": [1, 2]}), p, ts(V1, 1))
    t = S.read_parquet(p, ts(V2, 2))
    assert t.column_names == ["id", "n", "score"]
    assert t.column("score").null_count == 2


def test_renamed_column_is_refused_with_its_name(tmp_path):
    p = tmp_path / "t.parquet"
    S.write_parquet(pa.table({"id": ["a"], "n": [1]}), p, ts(V1, 1))
    renamed = pa.schema(
        [pa.field("id", pa.string(), nullable=False), pa.field("count", pa.int64())]
    )
    with pytest.raises(S.SchemaError, match="'n'.*not additive"):
        S.read_parquet(p, ts(renamed, 2))


def test_file_newer_than_reader_is_refused(tmp_path):
    p = tmp_path / "t.parquet"
    S.write_parquet(pa.table({"id": ["a"], "n": [1], "score": [0.5]}), p, ts(V2, 2))
    with pytest.raises(S.SchemaError, match="newer than this reader"):
        S.read_parquet(p, ts(V1, 1))


def test_rows_with_unknown_or_missing_required_columns():
    with pytest.raises(S.SchemaError, match="unknown columns"):
        S.table_from_rows([{"id": "a", "bogus": 1}], ts(V1, 1))
    with pytest.raises(S.SchemaError, match="missing required column 'id'"):
        S.conform(pa.table({"n": [1]}), ts(V1, 1))


def test_unknown_table_lists_valid_names():
    with pytest.raises(KeyError, match="declared tables"):
        S.get("no_such_table")
