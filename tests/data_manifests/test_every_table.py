"""Every declared table (as stages land) publishes, verifies and loads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

import data_manifests
from data_manifests import schema as S
from data_manifests.publish import publish
from data_manifests.registry import Registry
from data_manifests.verify import verify
from tests.data_manifests.fakerun import ROWS, example_table, write_stage


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
