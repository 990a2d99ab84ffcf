"""A published Parquet file rewritten with a renamed, extra, missing or retyped column
(issue 12.6): ``verify`` names the schema mismatch (not "truncated") and ``load()``
refuses the file instead of returning the column as nulls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import data_manifests
from data_manifests.publish import publish
from data_manifests.registry import Registry
from data_manifests.schema import SchemaError
from data_manifests.verify import verify
from tests.data_manifests.fakerun import make_run, test_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("test_tables")

Edit = Callable[[pa.Table], pa.Table]
CASES: dict[str, tuple[Edit, str]] = {
    "renamed": (
        lambda t: t.rename_columns(["video_id", "url", "license", "status", "error"]),
        "column 'licence' renamed to 'license'",
    ),
    "extra": (
        lambda t: t.append_column("note", pa.array(["x"] * t.num_rows)),
        "extra column 'note' (string)",
    ),
    "missing": (lambda t: t.drop_columns(["error"]), "missing column 'error' (string)"),
    "retyped": (
        lambda t: t.set_column(
            3,
            pa.field("status", pa.int64(), nullable=False),
            pc.utf8_length(t["status"]).cast(pa.int64()),
        ),
        "column 'status' retyped: int64, declared string",
    ),
}


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry(str(tmp_path / "reg"))
    publish(make_run(tmp_path / "run", n_pairs=60), "ds", "1", ["videos", "pairs"], r)
    return r


def rewrite(reg: Registry, edit: Edit) -> str:
    """Rewrite the first videos file as a user's script would (pyarrow, metadata kept)."""
    m = reg.manifest("ds@1")
    rel = m.tables["videos"].files[0].path
    path = Path(reg.dataset_store(reg.entry("ds@1")).root) / rel
    pq.write_table(edit(pq.read_table(path)), path)
    return rel


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_names_the_schema_mismatch(reg: Registry, case: str) -> None:
    edit, expected = CASES[case]
    rel = rewrite(reg, edit)
    report = verify("ds@1", reg)
    reasons = [p.reason for p in report.problems if p.path == rel]
    assert reasons and reasons[0].startswith("schema mismatch"), reasons
    assert expected in reasons[0]
    assert not any(r.startswith("truncated") for r in reasons), reasons
    assert {p.path for p in report.problems} == {rel}


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_refuses_a_file_whose_schema_does_not_match(reg: Registry, case: str) -> None:
    assert data_manifests.load("ds@1", "videos", reg).count_rows() == 6  # intact: reads
    edit, expected = CASES[case]
    rel = rewrite(reg, edit)
    with pytest.raises(SchemaError, match="schema mismatch") as e:
        data_manifests.load("ds@1", "videos", reg).to_table()
    assert rel in str(e.value) and expected in str(e.value)
    assert data_manifests.load("ds@1", "pairs", reg).count_rows() == 60  # other tables read
