"""verify(): tampered, missing, truncated, unlisted files, altered manifests, lost datasets."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from data_manifests.publish import publish
from data_manifests.registry import DatasetMissingError, Registry
from data_manifests.verify import verify
from tests.data_manifests.fakerun import TINY_PNG, make_run, test_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("test_tables")


@pytest.fixture
def published(tmp_path: Path) -> tuple[Registry, Path]:
    run = make_run(tmp_path / "run", n_pairs=200, image_bytes=500)
    reg = Registry(str(tmp_path / "reg"))
    publish(
        run, "ds", "1", ["pairs", "videos"], reg, images={"pairs": TINY_PNG}, target_file_mb=0.05
    )
    return reg, Path(reg.dataset_store(reg.entry("ds@1")).root)


def test_intact_dataset_verifies(published: tuple[Registry, Path]) -> None:
    reg, d = published
    report = verify("ds@1", reg)
    assert report.ok, str(report)
    n_files = len(reg.manifest("ds@1").all_files())
    assert n_files >= 5 and report.files_checked == n_files
    assert str(report).endswith(": OK")


def test_sha256_mismatch_is_named(published: tuple[Registry, Path]) -> None:
    reg, d = published
    victim = d / "pairs" / "part-00001.parquet"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF  # same size, one byte flipped
    victim.write_bytes(bytes(data))
    report = verify("ds@1", reg)
    assert [p.path for p in report.problems] == ["pairs/part-00001.parquet"]
    assert "sha256" in report.problems[0].reason and "tampered" in report.problems[0].reason


def test_missing_and_truncated_files_are_named(published: tuple[Registry, Path]) -> None:
    reg, d = published
    (d / "videos" / "part-00000.parquet").unlink()
    victim = d / "pairs" / "part-00000.parquet"
    size = victim.stat().st_size
    victim.write_bytes(victim.read_bytes()[: size // 2])  # cut off in transit
    (d / "card" / "example-00.png").unlink()
    report = verify("ds@1", reg)
    got = {p.path: p.reason for p in report.problems}
    assert got["videos/part-00000.parquet"] == "missing"
    assert got["card/example-00.png"] == "missing"
    assert got["pairs/part-00000.parquet"] == f"truncated: {size // 2} of {size} bytes"
    assert len(got) == 3


def test_unlisted_file_is_reported(published: tuple[Registry, Path]) -> None:
    reg, d = published
    (d / "pairs" / "part-99999.parquet").write_bytes(b"smuggled")
    report = verify("ds@1", reg)
    assert [(p.path, p.reason) for p in report.problems] == [
        ("pairs/part-99999.parquet", "not listed in the manifest")
    ]


def test_manifest_altered_after_publish_is_caught(published: tuple[Registry, Path]) -> None:
    reg, d = published
    m = json.loads((d / "manifest.json").read_text())
    m["tables"]["pairs"]["files"][0]["sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(m))
    report = verify("ds@1", reg)
    assert not report.ok and report.problems[0].path == "manifest.json"
    assert "the manifest was altered" in report.problems[0].reason


def _forge_manifest(reg: Registry, d: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite manifest.json and the catalog's hash of it consistently (a careful forger)."""
    m = json.loads((d / "manifest.json").read_text())
    mutate(m)
    raw = (json.dumps(m, indent=2, sort_keys=True) + "\n").encode()
    (d / "manifest.json").write_bytes(raw)
    entry_path = Path(reg.store.root) / "catalog" / "ds" / "1.json"
    e = json.loads(entry_path.read_text())
    e["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    entry_path.write_text(json.dumps(e))


def test_file_rewritten_with_renamed_column_fails_schema_check(
    published: tuple[Registry, Path],
) -> None:
    """A consistent forgery (file and manifest hashes both updated) still fails on schema."""
    reg, d = published
    victim = d / "videos" / "part-00000.parquet"
    t = pq.read_table(victim)
    t = t.rename_columns(["video_id", "url", "license", "status", "error"])
    pq.write_table(t.replace_schema_metadata(pq.read_schema(victim).metadata), victim)

    def mutate(m: dict[str, Any]) -> None:
        f = m["tables"]["videos"]["files"][0]
        f["sha256"] = hashlib.sha256(victim.read_bytes()).hexdigest()
        f["bytes"] = victim.stat().st_size

    _forge_manifest(reg, d, mutate)
    report = verify("ds@1", reg)
    assert {p.path for p in report.problems} == {"videos/part-00000.parquet"}
    reasons = " ".join(p.reason for p in report.problems)
    assert "differs from the manifest's" in reasons
    assert "'license'" in reasons and "not additive" in reasons


def test_row_counts_come_from_the_footer(published: tuple[Registry, Path]) -> None:
    reg, d = published

    def mutate(m: dict[str, Any]) -> None:
        m["tables"]["pairs"]["files"][0]["rows"] += 1

    _forge_manifest(reg, d, mutate)
    got = {(p.path, p.reason) for p in verify("ds@1", reg).problems}
    first = reg.manifest("ds@1").tables["pairs"].files[0]
    assert ("pairs/part-00000.parquet", f"{first.rows - 1} rows, manifest says {first.rows}") in got
    assert any(path == "pairs" and "row counts disagree" in r for path, r in got)


def test_registry_entry_pointing_nowhere(published: tuple[Registry, Path]) -> None:
    reg, d = published
    shutil.rmtree(d)
    report = verify("ds@1", reg)
    assert not report.ok
    assert "points to" in report.problems[0].reason
    assert "holds no manifest.json" in report.problems[0].reason
    with pytest.raises(DatasetMissingError, match="ds@1 points to .* which holds no manifest"):
        reg.manifest("ds@1")
