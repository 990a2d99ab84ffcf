"""Reading the tables a training run is given: by path or by published dataset name.

A *source* is one of (nothing is guessed; anything else is a ``ValueError`` naming it):

- ``name@version`` of a published dataset: read with ``data_manifests.load`` (registry in
  ``$VIDEOMINE_REGISTRY`` or ``[videomine] registry`` in luigi.cfg);
- a Parquet file: it is the table;
- a directory holding ``<table>.parquet`` (a stage output, e.g. ``BuildGraph``'s);
- a directory ``<table>/`` of Parquet part files (a resharded published layout).

Several sources (e.g. every shard of ``TrackObjects``) are concatenated in order. When the
table's schema is declared in ``data_manifests`` the read is checked against it.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_dataset_ref(source: str) -> bool:
    """``name@version`` (and not an existing path)."""
    return bool(_REF.match(source)) and not Path(source).exists()


def _declared(table: str) -> object | None:
    try:
        from data_manifests import schema
    except ImportError:  # pragma: no cover - data_manifests is part of this package
        return None
    try:
        return schema.get(table)
    except KeyError:
        return None


def _read_file(path: Path, table: str) -> pa.Table:
    ts = _declared(table)
    if ts is not None:
        from data_manifests import schema

        return schema.read_parquet(path, ts)  # type: ignore[arg-type]
    return pq.read_table(path)


def _open_dataset(ref: str, table: str, registry: str | None) -> Any:
    """``data_manifests.load``: a pyarrow dataset (KeyError names unknown names/tables)."""
    dm = importlib.import_module("data_manifests")
    return dm.load(ref, table, registry or None)


def _read_dataset(ref: str, table: str, registry: str | None) -> pa.Table:
    out = _open_dataset(ref, table, registry)
    return out if isinstance(out, pa.Table) else out.to_table()


def table_path(source: str | Path, table: str) -> Path:
    """The Parquet file or part directory of ``table`` in a path source."""
    p = Path(source)
    if p.is_file():
        if p.suffix != ".parquet":
            raise ValueError(f"{p} is not a Parquet file (expected {table}.parquet)")
        return p
    if p.is_dir():
        if (p / f"{table}.parquet").is_file():
            return p / f"{table}.parquet"
        if (p / table).is_dir() and any((p / table).glob("*.parquet")):
            return p / table
        found = sorted(x.name for x in p.iterdir() if x.suffix == ".parquet" or x.is_dir())
        raise ValueError(
            f"{p} has no table {table!r} (looked for {table}.parquet and {table}/*.parquet); "
            f"it holds: {found}"
        )
    raise ValueError(f"data source {str(source)!r} is neither a file, a directory nor name@version")


def read_table(
    sources: str | Path | Sequence[str | Path], table: str, registry: str | None = None
) -> pa.Table:
    """Table ``table`` from one source or several (concatenated in the given order).
    ``registry``: where ``name@version`` sources live (default: $VIDEOMINE_REGISTRY / luigi.cfg)."""
    if isinstance(sources, str | Path):
        sources = [sources]
    if not sources:
        raise ValueError(f"no data source given for table {table!r}")
    parts: list[pa.Table] = []
    for src in sources:
        if isinstance(src, str) and is_dataset_ref(src):
            parts.append(_read_dataset(src, table, registry))
            continue
        path = table_path(src, table)
        if path.is_dir():
            parts.extend(_read_file(f, table) for f in sorted(path.glob("*.parquet")))
        else:
            parts.append(_read_file(path, table))
    out = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
    log.info("read %d rows of %s from %d source(s)", out.num_rows, table, len(sources))
    return out


def has_table(
    sources: str | Path | Sequence[str | Path], table: str, registry: str | None = None
) -> bool:
    """Whether every source holds ``table`` (paths are checked without reading)."""
    if isinstance(sources, str | Path):
        sources = [sources]
    for src in sources:
        if isinstance(src, str) and is_dataset_ref(src):
            try:
                _open_dataset(src, table, registry)
            except KeyError:
                return False
            continue
        if Path(src).is_file():
            if Path(src).stem != table:
                return False
            continue
        try:
            table_path(src, table)
        except ValueError:
            return False
    return bool(sources)


def require_columns(t: pa.Table, table: str, columns: Sequence[str]) -> None:
    """``ValueError`` naming the missing columns and the ones present."""
    missing = [c for c in columns if c not in t.column_names]
    if missing:
        raise ValueError(f"table {table!r} lacks column(s) {missing}; it has {t.column_names}")
