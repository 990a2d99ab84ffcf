"""Publish chosen tables of a finished run as an immutable ``name@version`` dataset.

Steps: check the name is free and the run complete; re-shard each table into Parquet files
of about ``target_file_mb`` (row groups of about ``row_group_mb``) under a fresh temp
prefix, hashing every file; write the card and ``manifest.json``; then commit by creating
the catalog entry exclusively (:meth:`Registry.commit`). Two racing publishers of one
``name@version`` both write their own prefix; exactly one creates the entry, the other gets
:class:`DatasetExistsError` and its prefix is removed. Nothing is ever overwritten.
"""

from __future__ import annotations

import getpass
import io
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_manifests.card import check_png, render_card
from data_manifests.manifest import FileEntry, Manifest, TableEntry
from data_manifests.registry import DatasetExistsError, Entry, Registry, parse_ref
from data_manifests.runs import RunOutput, StageDir, scan_run
from data_manifests.schema import TableSchema, check_compatible, conform, get
from data_manifests.storage import Store, open_store, sha256_bytes

log = logging.getLogger(__name__)

# 128 MB files: large enough that a reader's per-file overhead vanishes, small enough to
# parallelise a pull; 16 MB row groups: a training reader's unit of read and shuffle.
DEFAULT_FILE_MB = 128.0
DEFAULT_ROW_GROUP_MB = 16.0
_PAIR_TYPE_COLUMNS = ("pair_type", "type", "kind")
_LICENCE_COLUMNS = ("licence", "license")

__all__ = ["DEFAULT_FILE_MB", "DEFAULT_ROW_GROUP_MB", "publish", "reshard"]


def _batches(run: RunOutput, table: str, ts: TableSchema) -> Iterator[pa.RecordBatch]:
    for stage, name in run.table_files(table):
        source = stage.store.url_of(name)
        with stage.store.fs.open(stage.store.path(name), "rb") as f:
            pf = pq.ParquetFile(f)
            check_compatible(pf.schema_arrow, ts, source)
            for batch in pf.iter_batches(batch_size=4096):
                yield from conform(pa.Table.from_batches([batch]), ts).to_batches()


def reshard(
    batches: Iterator[pa.RecordBatch],
    ts: TableSchema,
    out: Store,
    table: str,
    extra_meta: Mapping[str, Any],
    target_file_mb: float = DEFAULT_FILE_MB,
    row_group_mb: float = DEFAULT_ROW_GROUP_MB,
) -> list[FileEntry]:
    """Write ``batches`` as ``<table>/part-NNNNN.parquet`` files of ~``target_file_mb``.

    Sizes are measured on the uncompressed arrow data (image bytes dominate the tables and
    do not compress further). Always writes at least one file so the schema travels.
    """
    if target_file_mb <= 0 or row_group_mb <= 0:
        raise ValueError(
            f"target_file_mb and row_group_mb must be > 0, got {target_file_mb}, {row_group_mb}"
        )
    file_bytes = int(target_file_mb * 1e6)
    group_bytes = int(min(row_group_mb, target_file_mb) * 1e6)
    schema = ts.arrow_schema(dict(extra_meta))
    entries: list[FileEntry] = []
    pending: list[pa.RecordBatch] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        t = pa.Table.from_batches(pending, schema=ts.fields).replace_schema_metadata(
            schema.metadata
        )
        per_row = max(1, t.nbytes // max(1, t.num_rows))
        buf = io.BytesIO()
        pq.write_table(t, buf, compression="zstd", row_group_size=max(1, group_bytes // per_row))
        data = buf.getvalue()
        rel = f"{table}/part-{len(entries):05d}.parquet"
        out.write_bytes(rel, data)
        entries.append(FileEntry(rel, sha256_bytes(data), len(data), t.num_rows))
        pending, pending_bytes = [], 0

    for batch in batches:
        # Split batches so that a file ends as close to the target as one row allows.
        per_row = max(1, batch.nbytes // max(1, batch.num_rows))
        start = 0
        while start < batch.num_rows:
            room = max(1, (file_bytes - pending_bytes) // per_row)
            piece = batch.slice(start, room)
            pending.append(piece)
            pending_bytes += piece.num_rows * per_row
            start += piece.num_rows
            if pending_bytes + per_row > file_bytes:
                flush()
    if pending or not entries:
        flush()
    return entries


def _licences(run: RunOutput) -> dict[str, int]:
    """Videos per licence from the run's ``videos`` table ({} when there is none)."""
    counts: dict[str, int] = {}
    seen: set[str] = set()
    for stage, name in run.table_files("videos"):
        with stage.store.fs.open(stage.store.path(name), "rb") as f:
            pf = pq.ParquetFile(f)
            wanted = [c for c in ("video_id", *_LICENCE_COLUMNS) if c in pf.schema_arrow.names]
            t = pf.read(columns=wanted)  # never the other columns (probe data, bytes)
        col = next((c for c in _LICENCE_COLUMNS if c in t.column_names), None)
        ids = t.column("video_id").to_pylist() if "video_id" in t.column_names else None
        values = t.column(col).to_pylist() if col else [None] * t.num_rows
        for i, lic in enumerate(values):
            vid = str(ids[i]) if ids is not None else f"{name}:{i}"
            if vid in seen:
                continue
            seen.add(vid)
            key = str(lic).strip() if lic not in (None, "") else "unknown"
            counts[key] = counts.get(key, 0) + 1
    return counts


def _pair_types(run: RunOutput) -> dict[str, int]:
    counts: dict[str, int] = {}
    for stage, name in run.table_files("pairs"):
        with stage.store.fs.open(stage.store.path(name), "rb") as f:
            pf = pq.ParquetFile(f)
            col = next((c for c in _PAIR_TYPE_COLUMNS if c in pf.schema_arrow.names), None)
            if col is None:
                continue
            t = pf.read(columns=[col])
        for row in pc.value_counts(t.column(col)).to_pylist():
            key = str(row["values"])
            counts[key] = counts.get(key, 0) + int(row["counts"])
    return counts


def _default_owner() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def _config(stages: Sequence[StageDir]) -> dict[str, Any]:
    """Parameters per task family (shard numbers dropped); differing runs are refused."""
    config: dict[str, Any] = {}
    for s in stages:
        params = {k: v for k, v in s.params.items() if k != "shard"}
        old = config.setdefault(s.family, params)
        if old != params:
            raise ValueError(
                f"the run root holds {s.family} outputs with different parameters ({old} vs "
                f"{params}): more than one run; publish from a root with a single run"
            )
    return config


def _input_hash(
    stages: Sequence[StageDir], input_url_list: str | None, storage_options: dict[str, Any] | None
) -> str | None:
    if input_url_list is not None:
        store = open_store(input_url_list, storage_options)
        return sha256_bytes(store.read_bytes())
    for s in stages:
        for key in ("input_sha256", "video_list_sha256", "url_list_sha256"):
            if isinstance(s.meta.get(key), str):
                return str(s.meta[key])
    for s in stages:
        path = s.params.get("video_list")
        if isinstance(path, str) and path:
            try:
                return sha256_bytes(open_store(path, storage_options).read_bytes())
            except (FileNotFoundError, ValueError, IsADirectoryError):
                continue
    return None


def publish(
    run_root: str | Store,
    name: str,
    version: str,
    tables: Sequence[str],
    registry: Registry | str | None = None,
    *,
    owner: str | None = None,
    description: str = "",
    parents: Sequence[str] = (),
    images: Mapping[str, bytes] | None = None,
    input_url_list: str | None = None,
    target_file_mb: float = DEFAULT_FILE_MB,
    row_group_mb: float = DEFAULT_ROW_GROUP_MB,
    storage_options: dict[str, Any] | None = None,
    expected_shards: int | None = None,
    outputs: Sequence[str] | None = None,
) -> Entry:
    """Publish ``tables`` of the finished run at ``run_root`` as ``name@version``.

    ``images`` maps a caption to PNG bytes shown in the card. Raises
    :class:`DatasetExistsError` if the version exists (also when another publisher commits
    it first), :class:`~data_manifests.runs.IncompleteRunError` for an unfinished run,
    ``KeyError`` for an undeclared table. ``expected_shards`` is the run's shard count
    (a sharded stage missing any of ``0..expected_shards-1`` makes the run incomplete).
    ``outputs``: the run's final output URLs; the run is they and everything they require
    (default: every output under the root, which must then hold a single run).
    """
    reg = registry if isinstance(registry, Registry) else Registry(registry, storage_options)
    parse_ref(f"{name}@{version}", require_version=True)
    if not tables:
        raise ValueError("no tables to publish; name at least one")
    schemas = {t: get(t) for t in tables}
    for p in parents:
        parse_ref(p, require_version=True)
        reg.entry(p)  # a parent must be published (UnknownDatasetError otherwise)
    if reg.exists(f"{name}@{version}"):
        raise DatasetExistsError(f"{name}@{version} is already published in {reg.url}")
    for caption, png in (images or {}).items():
        check_png(caption, png)

    run = scan_run(run_root, storage_options)
    if outputs is not None:
        run = run.select(outputs)
    run.require_complete(tables, expected_shards)
    run.require_single_run()
    stages = run.complete_stages()
    config = _config(stages)
    out, location = reg.staging(name, version, uuid.uuid4().hex[:12])
    try:
        ref = f"{name}@{version}"
        table_entries = {}
        for t, ts in schemas.items():
            files = reshard(
                _batches(run, t, ts), ts, out, t, {"dataset": ref}, target_file_mb, row_group_mb
            )
            fields, ipc = TableEntry.describe(ts.arrow_schema({"dataset": ref}))
            table_entries[t] = TableEntry(
                ts.name,
                ts.version,
                fields,
                ipc,
                sum(int(f.rows or 0) for f in files),
                sum(f.bytes for f in files),
                files,
                ts.description,
            )
        counts: dict[str, dict[str, int]] = {}
        for s in stages:
            fam = counts.setdefault(s.family, {})
            for k, v in s.counts.items():
                fam[k] = fam.get(k, 0) + v
        code_versions = sorted({s.code_version for s in stages if s.code_version})
        m = Manifest(
            name=name,
            version=version,
            owner=owner or _default_owner(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            description=description,
            code_version=",".join(code_versions) or None,
            input_url_list_sha256=_input_hash(stages, input_url_list, storage_options),
            parents=list(parents),
            licences=_licences(run),
            tables=table_entries,
            sources=[
                {
                    "task_family": s.family,
                    "task_id": s.task_id,
                    "dir": s.store.url,
                    "params": s.params,
                    "code_version": s.code_version,
                    "counts": s.counts,
                    "wall_s": s.wall_s,
                }
                for s in stages
            ],
            config=config,
            counts=counts,
            pair_types=_pair_types(run),
        )
        card_paths: dict[str, str] = {}
        for i, (caption, png) in enumerate((images or {}).items()):
            rel = f"card/example-{i:02d}.png"
            out.write_bytes(rel, png)
            m.files.append(FileEntry(rel, sha256_bytes(png), len(png)))
            card_paths[caption] = rel
        readme = render_card(m, card_paths).encode()
        out.write_bytes("README.md", readme)
        m.files.append(FileEntry("README.md", sha256_bytes(readme), len(readme)))
        manifest = m.to_json()
        out.write_bytes("manifest.json", manifest)
        entry = Entry(
            name=name,
            version=version,
            owner=m.owner,
            created_at=m.created_at,
            location=location,
            total_bytes=m.total_bytes + len(manifest),
            n_files=len(m.all_files()) + 1,
            rows={t: e.rows for t, e in table_entries.items()},
            manifest_sha256=sha256_bytes(manifest),
            description=description,
            parents=list(parents),
        )
        reg.commit(entry)
    except BaseException:
        out.remove_tree()
        raise
    log.info("published %s to %s (%d bytes)", ref, out.url, entry.total_bytes)
    return entry
