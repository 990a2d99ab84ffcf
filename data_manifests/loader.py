"""Read a published table by name: ``load("name@version", "pairs")`` -> pyarrow dataset.

The dataset is opened with *this* code's declared schema for the table, so a reader of a
newer schema version reads an older dataset when the change is additive (columns it lacks
come back as nulls) and is refused with :class:`~data_manifests.schema.SchemaError` naming
the column when it is not (renamed, removed or retyped columns, or a dataset newer than the
reader). Each file's own footer is checked against the schema its manifest declares, so a
file rewritten with a column renamed, added, dropped or retyped is refused too (it would
otherwise read as a column of nulls). The same files are plain Parquet: ``files(...)`` gives their URLs for pandas,
DuckDB or anything else that reads Parquet.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from data_manifests.manifest import Manifest, TableEntry
from data_manifests.registry import Registry
from data_manifests.schema import (
    SchemaError,
    check_compatible,
    file_schema_info,
    get,
    schema_differences,
)
from data_manifests.storage import Store

__all__ = ["files", "load"]


def _resolve(
    ref: str, table: str, registry: Registry | str | None, storage_options: dict[str, Any] | None
) -> tuple[Store, Manifest, TableEntry]:
    reg = registry if isinstance(registry, Registry) else Registry(registry, storage_options)
    entry = reg.entry(ref)
    manifest = reg.manifest(entry)
    if table not in manifest.tables:
        raise KeyError(
            f"dataset {entry.ref} has no table {table!r}; its tables: {sorted(manifest.tables)}"
        )
    return reg.dataset_store(entry), manifest, manifest.tables[table]


def _check_file_schema(store: Store, path: str, t: TableEntry, where: str, ref: str) -> None:
    """Refuse a file whose footer schema is not the one its manifest declares."""
    try:
        with store.fs.open(path, "rb") as fh:
            schema = pq.read_schema(fh)
    except (OSError, pa.ArrowException) as e:
        raise SchemaError(f"{where}: not a readable Parquet file ({e}); check it with "
                          f"`python -m data_manifests verify {ref}`") from e  # fmt: skip
    name, version, _ = file_schema_info(schema)
    diffs = schema_differences(schema, t.arrow_schema())
    if (name, version) != (t.schema_name, t.schema_version):
        diffs.insert(0, f"file says schema {name} v{version}")
    if diffs:
        raise SchemaError(
            f"{where}: schema mismatch against its declared {t.schema_name} "
            f"v{t.schema_version}: {'; '.join(diffs)}"
        )


def files(
    ref: str,
    table: str,
    registry: Registry | str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """URLs (local paths for a local registry) of the Parquet files of ``table``."""
    store, _, t = _resolve(ref, table, registry, storage_options)
    return [store.url_of(f.path) for f in t.files]


def load(
    ref: str,
    table: str,
    registry: Registry | str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pads.Dataset:
    """A pyarrow dataset over ``table`` of ``name@version`` (newest version if omitted).

    Raises ``KeyError`` (unknown dataset, version or table, with the valid names) and
    :class:`~data_manifests.schema.SchemaError` when the stored schema is not readable by
    this code's declaration of the table.
    """
    store, manifest, t = _resolve(ref, table, registry, storage_options)
    ts = get(t.schema_name)
    where = f"dataset {manifest.ref} table {table!r}"
    check_compatible(t.arrow_schema(), ts, where)
    paths = [store.path(f.path) for f in t.files]
    for f, path in zip(t.files, paths, strict=True):
        _check_file_schema(store, path, t, f"{where} file {f.path}", manifest.ref)
    return pads.dataset(paths, schema=ts.arrow_schema(), format="parquet", filesystem=store.fs)
