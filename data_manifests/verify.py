"""Check a published dataset byte for byte and schema by schema.

Every file the manifest lists is re-hashed; a missing file, a file shorter than recorded
(truncated in transit), any other size or sha256 difference (tampered), a Parquet footer
that does not match the recorded schema or row count, and files the manifest does not list
are reported by path. The manifest itself is checked against the hash in the catalog entry.

A Parquet file whose bytes changed is still opened: when its footer reads, the file was
rewritten, not cut short, and a column renamed, added, dropped or retyped against the
declared schema is reported first ("schema mismatch: ..."), then the byte difference.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data_manifests.manifest import FileEntry, ManifestError, TableEntry
from data_manifests.registry import DatasetMissingError, Registry
from data_manifests.schema import (
    SchemaError,
    check_compatible,
    file_schema_info,
    get,
    schema_differences,
)
from data_manifests.storage import Store, sha256_file

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class VerifyReport:
    ref: str
    location: str
    files_checked: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"{self.ref} at {self.location}: {self.files_checked} files, "
            f"{self.bytes_checked} bytes checked"
        )
        if self.ok:
            return head + ": OK"
        lines = [head + f": {len(self.problems)} problem(s)"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])


def _check_file(store: Store, f: FileEntry) -> str | None:
    """Why ``f`` is not intact, or None."""
    path = store.path(f.path)
    if not store.fs.exists(path):
        return "missing"
    size = int(store.fs.size(path))
    if size < f.bytes:
        return f"truncated: {size} of {f.bytes} bytes"
    digest, size = sha256_file(store, f.path)
    if size != f.bytes:
        return f"size {size} bytes, manifest says {f.bytes}: tampered"
    if digest != f.sha256:
        return f"sha256 {digest[:12]}... differs from the manifest's {f.sha256[:12]}...: tampered"
    return None


def _footer(store: Store, f: FileEntry) -> tuple[pa.Schema, int] | None:
    """(arrow schema, rows) from a Parquet file's footer; None when it does not read."""
    try:
        with store.fs.open(store.path(f.path), "rb") as fh:
            pf = pq.ParquetFile(fh)
            return pf.schema_arrow, int(pf.metadata.num_rows)
    except (OSError, pa.ArrowException):
        return None


def _check_parquet(t: TableEntry, f: FileEntry, schema: pa.Schema, rows: int) -> list[str]:
    """Schema and row count of one Parquet file against the manifest and the code."""
    out = []
    diffs = schema_differences(schema, t.arrow_schema())
    if diffs:
        out.append(
            f"schema mismatch: differs from the manifest's {t.schema_name} "
            f"v{t.schema_version}: {'; '.join(diffs)}"
        )
    name, version, _ = file_schema_info(schema)
    if (name, version) != (t.schema_name, t.schema_version):
        out.append(
            f"file says schema {name} v{version}, manifest says {t.schema_name} v{t.schema_version}"
        )
    if f.rows is not None and rows != f.rows:
        out.append(f"{rows} rows, manifest says {f.rows}")
    try:
        check_compatible(schema, get(t.schema_name), f.path)
    except KeyError:
        out.append(f"table {t.schema_name!r} is not declared in this code version")
    except SchemaError as e:
        out.append(f"not readable by this code's schema: {e}")
    return out


def _verify_bytes(
    report: VerifyReport,
    store: Store,
    f: FileEntry,
    progress: Callable[[int], None] | None,
) -> str | None:
    """Re-hash one file, counting it in ``report``; why its bytes are not intact, or None."""
    report.files_checked += 1
    reason = _check_file(store, f)
    if progress is not None:
        progress(f.bytes)
    if reason is None:
        report.bytes_checked += f.bytes
    return reason


def _table_file_problems(
    store: Store, t: TableEntry, f: FileEntry, bytes_reason: str | None
) -> list[str]:
    """Schema problems first, then the byte difference, of one file of a table."""
    footer = None if bytes_reason == "missing" else _footer(store, f)
    if footer is None:
        return [bytes_reason] if bytes_reason else ["not a readable Parquet file"]
    out = _check_parquet(t, f, *footer)
    if bytes_reason is not None and bytes_reason.startswith("truncated: "):
        # its footer reads: rewritten (a shorter valid file), not cut off in transit
        size = bytes_reason.removeprefix("truncated: ")
        bytes_reason = f"rewritten as a complete Parquet file of {size}: tampered"
    return out + ([bytes_reason] if bytes_reason else [])


def verify(
    ref: str,
    registry: Registry | str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Re-hash every file of ``name@version`` and check every table's schema.

    ``progress`` is called with the byte count of each file once it is checked.
    """
    reg = registry if isinstance(registry, Registry) else Registry(registry, storage_options)
    entry = reg.entry(ref)
    store = reg.dataset_store(entry)
    store.fs.invalidate_cache(store.root)  # re-read the listing: files may have changed
    report = VerifyReport(entry.ref, store.url)
    try:
        manifest = reg.manifest(entry)
    except (DatasetMissingError, ManifestError) as e:
        report.problems.append(Problem("manifest.json", str(e)))
        return report
    for table, t in sorted(manifest.tables.items()):
        for f in t.files:
            reason = _verify_bytes(report, store, f, progress)
            for r in _table_file_problems(store, t, f, reason):
                report.problems.append(Problem(f.path, r))
        rows = sum(int(f.rows or 0) for f in t.files)
        if rows != t.rows or entry.rows.get(table) != t.rows:
            report.problems.append(
                Problem(
                    table,
                    f"row counts disagree: files {rows}, manifest {t.rows}, "
                    f"catalog {entry.rows.get(table)}",
                )
            )
    for f in manifest.files:
        reason = _verify_bytes(report, store, f, progress)
        if reason is not None:
            report.problems.append(Problem(f.path, reason))
    listed = {f.path for f in manifest.all_files()} | {"manifest.json"}
    for found in store.fs.find(store.root):
        rel = posixpath.relpath(str(found), store.root)
        if rel not in listed:
            report.problems.append(Problem(rel, "not listed in the manifest"))
    return report
