"""Every declared table (as stages land) publishes, verifies and loads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import data_manifests
from data_manifests import schema as S
from data_manifests.publish import publish
from data_manifests.registry import Registry
from data_manifests.verify import verify
from tests.data_manifests.fakerun import write_stage

ROWS = 5


def example_array(t: pa.DataType, n: int, rng: np.random.Generator) -> pa.Array:
    """``n`` values of arrow type ``t`` (any type the table declarations use)."""
    if pa.types.is_boolean(t):
        return pa.array(rng.integers(0, 2, n).astype(bool))
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pa.array(rng.integers(0, 100, n).astype(t.to_pandas_dtype()), type=t)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.array([f"v{i}" for i in range(n)], type=t)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([rng.bytes(16) for _ in range(n)], type=t)
    if pa.types.is_fixed_size_binary(t):
        return pa.array([rng.bytes(t.byte_width) for _ in range(n)], type=t)
    if (
        pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
    ):
        return (
            pa.array(np.arange(n, dtype=np.int64))
            .cast(pa.int32() if t.bit_width == 32 else pa.int64())
            .cast(t)
        )
    if pa.types.is_fixed_size_list(t):
        flat = example_array(t.value_type, n * t.list_size, rng)
        return pa.FixedSizeListArray.from_arrays(flat, t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        flat = example_array(t.value_type, n * 2, rng)
        offsets = pa.array(
            np.arange(0, 2 * n + 1, 2, dtype=np.int32 if pa.types.is_list(t) else np.int64)
        )
        cls = pa.ListArray if pa.types.is_list(t) else pa.LargeListArray
        return cls.from_arrays(offsets, flat)
    if pa.types.is_struct(t):
        return pa.StructArray.from_arrays(
            [example_array(f.type, n, rng) for f in t], fields=list(t)
        )
    if pa.types.is_dictionary(t):
        return example_array(t.value_type, n, rng).dictionary_encode().cast(t)
    raise NotImplementedError(f"no example values for arrow type {t}")


def example_table(ts: S.TableSchema, n: int = ROWS, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.Table.from_arrays(
        [example_array(f.type, n, rng) for f in ts.fields], schema=ts.fields
    )


def _declared() -> list[str]:
    """The project's tables (names starting with ``_`` are test-only declarations)."""
    return sorted(n for n in S.all_schemas() if not n.startswith("_"))


@pytest.mark.parametrize("name", _declared())
def test_declared_table_round_trips_through_a_published_dataset(name: str, tmp_path: Path) -> None:
    ts = S.get(name)
    table = example_table(ts)
    write_stage(tmp_path / "run", "Stage", {name: table})
    reg = Registry(str(tmp_path / "reg"))
    entry = publish(tmp_path / "run", "every", "1", [name], reg)
    assert entry.rows == {name: ROWS}
    report = verify("every@1", reg)
    assert report.ok, str(report)
    m = reg.manifest("every@1")
    assert m.tables[name].schema_version == ts.version
    got = data_manifests.load("every@1", name, registry=reg).to_table()
    assert got.equals(table), f"{name}: loaded table differs from the one written"
    json.loads(m.to_json())  # the manifest stays plain JSON whatever the types


def test_some_tables_are_declared() -> None:
    """Guards the parametrisation above against silently testing nothing."""
    assert _declared(), "no table declared in data_manifests/tables"


def test_example_values_cover_nested_types() -> None:
    t = pa.schema(
        [
            pa.field("f16", pa.float16()),
            pa.field("emb", pa.list_(pa.float16(), 8)),
            pa.field("boxes", pa.list_(pa.float32())),
            pa.field("ts", pa.timestamp("us")),
            pa.field("s", pa.struct([pa.field("x", pa.int32())])),
        ]
    )
    ts = S.TableSchema("_dm_nested", 1, t, "nested")
    table = example_table(ts)
    assert table.num_rows == ROWS and table.schema.equals(t)
    assert table.column("emb").type == pa.list_(pa.float16(), 8)
