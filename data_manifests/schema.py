"""Parquet table schemas: declared once, versioned, used by every writer and reader.

A table is declared in ``data_manifests/tables/<table>.py`` with :class:`TableSchema` and
:func:`register`. Writers call :func:`write_parquet`, readers :func:`read_parquet`; both
check the columns against the declaration, so a producer and a consumer can never drift
apart silently.

Evolution rule (checked by :func:`read_parquet`): a reader of schema version ``v`` reads a
file written with version ``u <= v`` when the change is *additive*: every column of the
file exists in the reader's schema with the same type, and every column the file lacks is
nullable (it comes back as nulls). Anything else (a renamed, removed or retyped column,
or a file newer than the reader) is refused with a :class:`SchemaError` naming the column.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "SCHEMAS",
    "SchemaError",
    "TableSchema",
    "conform",
    "get",
    "schema_differences",
    "read_parquet",
    "register",
    "table_from_rows",
    "write_parquet",
]

META_SCHEMA = b"videomine.schema"
META_VERSION = b"videomine.schema_version"
META_EXTRA = b"videomine.meta"


class SchemaError(ValueError):
    """A table does not match its declared schema (names the table and column)."""


@dataclass(frozen=True)
class TableSchema:
    """One Parquet table's contract.

    ``fields`` is the arrow schema (column names, types, nullability); ``key`` the columns
    that identify a row (unique within a table); ``version`` grows with every change.
    """

    name: str
    version: int
    fields: pa.Schema
    description: str
    key: tuple[str, ...] = ()
    column_docs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [k for k in self.key if k not in self.fields.names]
        if missing:
            raise SchemaError(f"table {self.name!r}: key columns {missing} are not in its fields")

    @property
    def names(self) -> list[str]:
        return list(self.fields.names)

    def arrow_schema(self, extra: Mapping[str, Any] | None = None) -> pa.Schema:
        """The arrow schema with the table name, version and ``extra`` in its metadata."""
        meta = {META_SCHEMA: self.name.encode(), META_VERSION: str(self.version).encode()}
        if extra:
            meta[META_EXTRA] = json.dumps(extra, sort_keys=True, default=str).encode()
        return self.fields.with_metadata(meta)


SCHEMAS: dict[str, TableSchema] = {}
_DISCOVERED = False


def register(ts: TableSchema) -> TableSchema:
    """Declare a table. Declaring the same name twice with another definition is a bug."""
    old = SCHEMAS.get(ts.name)
    if old is not None and (old.version != ts.version or not old.fields.equals(ts.fields)):
        raise SchemaError(f"table {ts.name!r} is declared twice with different definitions")
    SCHEMAS[ts.name] = ts
    return ts


def _discover() -> None:
    """Import every module of ``data_manifests.tables`` so all tables are registered."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    from data_manifests import tables

    for mod in pkgutil.iter_modules(tables.__path__):
        importlib.import_module(f"{tables.__name__}.{mod.name}")
    _DISCOVERED = True


def get(name: str) -> TableSchema:
    """The declared schema of ``name``; ``KeyError`` lists the valid names."""
    _discover()
    try:
        return SCHEMAS[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; declared tables: {sorted(SCHEMAS)}") from None


def all_schemas() -> dict[str, TableSchema]:
    _discover()
    return dict(SCHEMAS)


def table_from_rows(rows: Iterable[Mapping[str, Any]], ts: TableSchema) -> pa.Table:
    """Build a table from dict rows; unknown keys or missing non-nullable values are errors."""
    rows = list(rows)
    names = set(ts.names)
    for i, row in enumerate(rows):
        extra = set(row) - names
        if extra:
            raise SchemaError(f"table {ts.name!r} row {i}: unknown columns {sorted(extra)}")
    cols = {n: [r.get(n) for r in rows] for n in ts.names}
    try:
        return pa.Table.from_pydict(cols, schema=ts.fields)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(f"table {ts.name!r}: {e}") from e


def conform(table: pa.Table, ts: TableSchema) -> pa.Table:
    """Return ``table`` with exactly the declared columns, order and types.

    Columns may be cast when the cast is lossless (e.g. int32 -> int64); a missing
    non-nullable column, an unknown column or a failing cast is a :class:`SchemaError`.
    """
    extra = [n for n in table.column_names if n not in ts.names]
    if extra:
        raise SchemaError(f"table {ts.name!r}: unknown columns {extra}; declared: {ts.names}")
    arrays = []
    for f in ts.fields:
        if f.name not in table.column_names:
            if not f.nullable:
                raise SchemaError(f"table {ts.name!r}: missing required column {f.name!r}")
            arrays.append(pa.nulls(table.num_rows, type=f.type))
            continue
        col = table.column(f.name)
        if not col.type.equals(f.type):
            try:
                col = col.cast(f.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SchemaError(
                    f"table {ts.name!r}: column {f.name!r} has type {col.type}, "
                    f"declared {f.type}: {e}"
                ) from e
        if not f.nullable and col.null_count:
            raise SchemaError(f"table {ts.name!r}: column {f.name!r} has {col.null_count} nulls")
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=ts.fields)


def write_parquet(
    table: pa.Table,
    where: str | Path | BinaryIO,
    ts: TableSchema,
    metadata: Mapping[str, Any] | None = None,
) -> int:
    """Write ``table`` (conformed to ``ts``) as Parquet with the schema in its metadata.

    Returns the row count. zstd compression; row groups of 64k rows keep image-bearing
    tables streamable.
    """
    table = conform(table, ts)
    table = table.replace_schema_metadata(ts.arrow_schema(metadata).metadata)
    pq.write_table(table, where, compression="zstd", row_group_size=65536)
    return int(table.num_rows)


def file_schema_info(schema: pa.Schema) -> tuple[str | None, int | None, dict[str, Any]]:
    """(table name, schema version, extra metadata) stored in a Parquet file's schema."""
    meta = schema.metadata or {}
    name = meta.get(META_SCHEMA)
    version = meta.get(META_VERSION)
    extra = json.loads(meta[META_EXTRA]) if META_EXTRA in meta else {}
    return (
        name.decode() if name else None,
        int(version) if version else None,
        extra,
    )


def check_compatible(file_schema: pa.Schema, ts: TableSchema, source: str) -> None:
    """Raise :class:`SchemaError` unless a file with ``file_schema`` is readable as ``ts``."""
    name, version, _ = file_schema_info(file_schema)
    if name is not None and name != ts.name:
        raise SchemaError(f"{source}: holds table {name!r}, expected {ts.name!r}")
    if version is not None and version > ts.version:
        raise SchemaError(
            f"{source}: table {ts.name!r} written with schema version {version}, newer than "
            f"this reader's {ts.version}; upgrade videomine to read it"
        )
    declared = {f.name: f for f in ts.fields}
    for f in file_schema:
        if f.name not in declared:
            raise SchemaError(
                f"{source}: column {f.name!r} (schema v{version}) is not in table "
                f"{ts.name!r} v{ts.version}: the change is not additive (renamed or removed)"
            )
        if not f.type.equals(declared[f.name].type):
            raise SchemaError(
                f"{source}: column {f.name!r} has type {f.type}, table {ts.name!r} "
                f"v{ts.version} declares {declared[f.name].type}: the change is not additive"
            )
    present = set(file_schema.names)
    for f in ts.fields:
        if f.name not in present and not f.nullable:
            raise SchemaError(
                f"{source}: lacks required column {f.name!r} of table {ts.name!r} "
                f"v{ts.version}: the change is not additive"
            )


def schema_differences(found: pa.Schema, expected: pa.Schema) -> list[str]:
    """How a file's columns differ from ``expected`` (empty: the same names, order, types
    and nullability). A missing column with an extra one of the same type in its place is
    reported as renamed."""
    want = {f.name: f for f in expected}
    have = {f.name: f for f in found}
    missing = [f for f in expected if f.name not in have]
    extra = [f for f in found if f.name not in want]
    out = []
    for m in missing:
        i = expected.get_field_index(m.name)
        x = found.field(i) if i < len(found) else None
        if x is not None and x in extra and x.type.equals(m.type):
            out.append(f"column {m.name!r} renamed to {x.name!r}")
            extra.remove(x)
        else:
            out.append(f"missing column {m.name!r} ({m.type})")
    out += [f"extra column {x.name!r} ({x.type})" for x in extra]
    for f in found:
        w = want.get(f.name)
        if w is not None and not f.type.equals(w.type):
            out.append(f"column {f.name!r} retyped: {f.type}, declared {w.type}")
        elif w is not None and f.nullable != w.nullable:
            out.append(f"column {f.name!r} nullable={f.nullable}, declared {w.nullable}")
    if not out and found.names != expected.names:
        out.append(f"columns reordered: {found.names}, declared {expected.names}")
    return out


def read_parquet(where: str | Path | BinaryIO, ts: TableSchema) -> pa.Table:
    """Read a Parquet file as table ``ts``, applying the additive-evolution rule."""
    source = str(where) if isinstance(where, str | Path) else getattr(where, "name", "<stream>")
    pf = pq.ParquetFile(where)
    check_compatible(pf.schema_arrow, ts, source)
    return conform(pf.read(), ts)
