"""Reading a mining run's completed stage outputs (without importing ``tasks``).

A run root holds one directory per stage output (``tasks/common.py``)::

    <root>/<TaskFamily>/<task_id>-<lineage8>/   _SUCCESS (written last), _meta.json,
                                                 <table>.parquet files, *.png montages

Tables are recognised by the schema name each Parquet file carries in its metadata
(``data_manifests.schema.write_parquet``), not by file name. A directory without
``_SUCCESS`` is an output still being written or left by a killed task: the run is
incomplete, and nothing may be published from it.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from data_manifests.schema import file_schema_info
from data_manifests.storage import Store, open_store

SUCCESS = "_SUCCESS"
META = "_meta.json"

__all__ = ["AmbiguousRunError", "IncompleteRunError", "RunOutput", "StageDir", "scan_run"]


class IncompleteRunError(RuntimeError):
    """The run lacks a completed output a caller asked for (names the stage or table)."""


class AmbiguousRunError(ValueError):
    """The root holds outputs of more than one run; choose one by its final outputs."""


def _norm(url: str) -> str:
    """Comparable form of an output URL (sidecars may hold relative local paths)."""
    url = url.rstrip("/")
    if url.startswith("file://"):
        url = url[len("file://") :]
    return url if "://" in url else os.path.abspath(url)


@dataclass
class StageDir:
    """One stage output directory of a run."""

    family: str
    dirname: str
    store: Store
    complete: bool
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[str]] = field(default_factory=dict)  # table -> file names
    pngs: list[str] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return str(self.meta.get("task_id") or self.dirname)

    @property
    def params(self) -> dict[str, Any]:
        p = self.meta.get("params", self.meta.get("parameters", {}))
        return dict(p) if isinstance(p, dict) else {}

    @property
    def code_version(self) -> str | None:
        for key in ("code_version", "git_sha", "git"):
            if isinstance(self.meta.get(key), str):
                return str(self.meta[key])
        return None

    @property
    def counts(self) -> dict[str, int]:
        c = self.meta.get("counts", {})
        return {str(k): int(v) for k, v in c.items()} if isinstance(c, dict) else {}

    @property
    def wall_s(self) -> float | None:
        for key in ("wall_s", "wall_time_s", "seconds", "wall_time"):
            if isinstance(self.meta.get(key), int | float):
                return float(self.meta[key])
        return None

    @property
    def lineage(self) -> str:
        return self.dirname.rsplit("-", 1)[-1] if "-" in self.dirname else ""


@dataclass
class RunOutput:
    """Every stage output found under a run root."""

    root: Store
    stages: list[StageDir]

    def complete_stages(self) -> list[StageDir]:
        return [s for s in self.stages if s.complete]

    def incomplete_stages(self) -> list[StageDir]:
        return [s for s in self.stages if not s.complete]

    def families(self) -> list[str]:
        return sorted({s.family for s in self.stages})

    def table_files(self, table: str) -> list[tuple[StageDir, str]]:
        """(stage, file name) of every completed file of ``table``, in a stable order."""
        out = [(s, f) for s in self.complete_stages() for f in s.tables.get(table, [])]
        return sorted(out, key=lambda sf: (sf[0].family, sf[0].dirname, sf[1]))

    def available_tables(self) -> list[str]:
        return sorted({t for s in self.complete_stages() for t in s.tables})

    def producers(self, tables: Iterable[str]) -> list[StageDir]:
        wanted = set(tables)
        return [s for s in self.complete_stages() if wanted & set(s.tables)]

    def select(self, outputs: Iterable[str]) -> RunOutput:
        """The run made of ``outputs`` (output URLs) and everything they require."""
        by_url = {_norm(s.store.url): s for s in self.stages}
        keep: dict[str, StageDir] = {}
        todo = [_norm(u) for u in outputs]
        while todo:
            url = todo.pop()
            if url in keep:
                continue
            if url not in by_url:
                raise IncompleteRunError(f"{url} is not an output under {self.root.url}")
            keep[url] = by_url[url]
            required = keep[url].meta.get("requires", [])
            todo += [_norm(r) for r in required if isinstance(r, str) and _norm(r) in by_url]
        stages = sorted(keep.values(), key=lambda s: (s.family, s.dirname))
        return RunOutput(self.root, stages)

    def require_single_run(self) -> None:
        """Raise :class:`AmbiguousRunError` if a stage (or shard) has several outputs."""
        seen: dict[tuple[str, str], list[str]] = {}
        for s in self.complete_stages():
            seen.setdefault((s.family, str(s.params.get("shard", ""))), []).append(s.dirname)
        dups = [
            f"{fam}{' shard ' + shard if shard else ''}: {', '.join(sorted(dirs))}"
            for (fam, shard), dirs in sorted(seen.items())
            if len(dirs) > 1
        ]
        if dups:
            raise AmbiguousRunError(
                f"{self.root.url} holds more than one run (several outputs of "
                + "; ".join(dups)
                + "). Choose the run by its final outputs (publish(outputs=[...]), "
                "PublishDataset --upstream '[\"BuildGraph\"]') or use a root per run."
            )

    def require_complete(self, tables: Iterable[str], expected_shards: int | None = None) -> None:
        """Raise :class:`IncompleteRunError` unless the run is finished and has ``tables``.

        Finished means: every output directory has its marker, every output an output
        ``requires`` (its ``_meta.json``) is complete, and a sharded stage has the shards
        ``0..n-1`` (``n`` = ``expected_shards`` when given, else the highest seen + 1).
        """
        problems = []
        for s in self.incomplete_stages():
            problems.append(
                f"{s.family}/{s.dirname} has no {SUCCESS} marker (still running or killed)"
            )
        complete_urls = {s.store.url for s in self.complete_stages()}
        for s in self.complete_stages():
            for url in s.meta.get("requires", []):
                if isinstance(url, str) and "/" in url and url.rstrip("/") not in complete_urls:
                    if not _is_complete(url, self.root):
                        problems.append(f"{s.family}/{s.dirname} requires {url}, not complete")
        for family in self.families():
            done = [s for s in self.stages if s.family == family and s.complete]
            problems.extend(_missing_shards(family, done, expected_shards))
        present = self.available_tables()
        for t in tables:
            if t not in present:
                problems.append(
                    f"no completed stage output holds table {t!r} (tables present: {present})"
                )
        if problems:
            raise IncompleteRunError(
                f"run {self.root.url} is incomplete: "
                + "; ".join(problems)
                + ". Finish the run (rerun the same luigi command) before publishing."
            )


def _is_complete(url: str, root: Store) -> bool:
    try:
        store = open_store(url, getattr(root.fs, "storage_options", None))
        return store.exists(SUCCESS)
    except (OSError, ValueError):
        return False


def _missing_shards(family: str, done: list[StageDir], expected: int | None) -> list[str]:
    """Shards 0..n-1 of a sharded family that have no completed output."""
    shards = {int(s.params["shard"]) for s in done if "shard" in s.params}
    if not shards:
        return []
    expected = expected if expected is not None else max(shards) + 1
    missing = sorted(set(range(expected)) - shards)
    if not missing:
        return []
    return [f"{family} is missing shards {missing} of {expected}"]


def _parquet_table(store: Store, name: str) -> str | None:
    with store.fs.open(store.path(name), "rb") as f:
        table, _, _ = file_schema_info(pq.ParquetFile(f).schema_arrow)
    return table or posixpath.splitext(name)[0]


def _scan_stage(family: str, dirname: str, store: Store) -> StageDir:
    names = store.listdir()
    stage = StageDir(family, dirname, store, complete=SUCCESS in names)
    if META in names:
        try:
            meta = json.loads(store.read_bytes(META))
            stage.meta = meta if isinstance(meta, dict) else {}
        except ValueError:
            stage.complete = False  # a complete output always has a readable sidecar
    elif stage.complete:
        stage.complete = False
    # The sidecar names each table and its file (<table>.parquet); only files it does not
    # describe need their Parquet footer read (one round trip each on an object store).
    raw = stage.meta.get("tables")
    described: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for n in names:
        key = n[: -len(".parquet")]
        if n.endswith(".parquet") and isinstance(described.get(key), dict):
            stage.tables.setdefault(str(described[key].get("schema") or key), []).append(n)
        elif n.endswith(".parquet"):
            table = _parquet_table(store, n)
            if table:
                stage.tables.setdefault(table, []).append(n)
        elif n.lower().endswith(".png"):
            stage.pngs.append(n)
    return stage


def scan_run(
    root: str | Store,
    storage_options: dict[str, Any] | None = None,
    families: Iterable[str] | None = None,
) -> RunOutput:
    """Every stage output under ``root`` (optionally only the given task families)."""
    store = root if isinstance(root, Store) else open_store(root, storage_options)
    store.fs.invalidate_cache(store.root)
    if not store.exists():
        raise FileNotFoundError(f"run root {store.url} does not exist")
    wanted = set(families) if families is not None else None
    stages = []
    for family in store.listdir():
        if family.startswith(".") or (wanted is not None and family not in wanted):
            continue
        if not store.fs.isdir(store.path(family)):
            continue
        for dirname in store.listdir(family):
            # ".staging" holds the temp dirs of running (or killed) tasks: not outputs.
            if dirname.startswith(".") or not store.fs.isdir(store.path(family, dirname)):
                continue
            stages.append(_scan_stage(family, dirname, store.child(family, dirname)))
    return RunOutput(store, stages)
