"""The run model every stage is built on.

- Settings of a run live in ``[videomine]`` of ``luigi.cfg`` (:class:`videomine`), and can
  be set on the command line (``--videomine-root DIR --videomine-video-list FILE``).
- A stage is a :class:`StageTask`; it implements :meth:`StageTask.produce` and writes its
  tables through a :class:`StageOutput`. Its output is the directory
  ``<root>/<TaskFamily>/<task_id>-<lineage8>/``: ``task_id`` is Luigi's id (family, the
  significant parameters and their hash) and ``lineage8`` hashes the task id together with
  the lineage of everything upstream and the input list's rows, so a change of any
  significant parameter, upstream or here, or of the input, gives a new directory and
  never reuses stale outputs. Old directories are never touched.
- Writes are atomic: everything goes to a staging directory first, is renamed into place
  (uploaded, for object stores), and the ``_SUCCESS`` marker is written last. A killed run
  leaves nothing that looks complete; rerunning the same command redoes only what lacks
  its marker. ``_meta.json`` beside the tables records parameters, code and package
  versions, row counts, counts and wall time.
- The unit of work is a shard of ``videos_per_shard`` videos; per-video failures are rows,
  and a shard fails only when its failure rate passes ``max_failure_rate``.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import typing
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fsspec
import luigi
import pyarrow as pa
import pyarrow.parquet as pq

from data_manifests import schema as schemas
from pipeline.url_list import UrlEntry, list_digest, read_url_list
from tasks.staging import SUCCESS, clean_stale_staging, discard, host_tag, remove_unfinished

log = logging.getLogger(__name__)

META = "_meta.json"
PACKAGES = (
    "videomine",
    "torch",
    "numpy",
    "opencv-contrib-python-headless",
    "decord",
    "av",
    "faiss-cpu",
    "pyarrow",
    "luigi",
    "scikit-image",
    "scenedetect",
    "yt-dlp",
    "fsspec",
)


class videomine(luigi.Config):
    """``[videomine]`` in luigi.cfg: where a run reads its input and writes its outputs."""

    root = luigi.Parameter(default="runs", description="output root (path or fsspec URL)")
    video_list = luigi.Parameter(default="", description="CSV / Parquet / text list of URLs")
    videos_per_shard = luigi.IntParameter(
        default=50, description="videos per shard: one Luigi task per shard and stage"
    )
    video_dir = luigi.Parameter(
        default="", description="local cache of downloaded videos (default <root>/videos)"
    )
    # explicit parsing: the default is true, so the command line must be able to say false
    # (--videomine-keep-videos false); a bare flag still means true
    keep_videos = luigi.BoolParameter(
        default=True,
        parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="keep downloaded videos after their shard is mined (true|false)",
    )
    max_failure_rate = luigi.FloatParameter(
        default=0.5, description="a shard fails when more of its videos than this fail"
    )
    allow_empty = luigi.BoolParameter(
        default=False, description="accept stage outputs with empty tables"
    )
    registry = luigi.Parameter(default="", description="dataset registry (path or fsspec URL)")
    stale_staging_hours = luigi.FloatParameter(
        default=24.0,
        description="a staging dir of another host (or of an unknown writer) untouched for "
        "this long is removed when its task starts again; this host's are removed as soon "
        "as their process is gone",
    )


class EmptyOutputError(RuntimeError):
    """A stage produced an empty table and ``allow_empty`` is off."""


class ShardFailure(RuntimeError):
    """Too many videos of a shard failed (the rows still say why, per video)."""


# ----------------------------------------------------------------------------- parameters


def _luigi_param(f: dataclasses.Field[Any], hints: Mapping[str, Any]) -> luigi.Parameter:
    default = f.default
    if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    if default is dataclasses.MISSING:
        raise TypeError(f"dataclass field {f.name!r} needs a default to become a parameter")
    doc = f.metadata.get("doc", "")
    tp = hints.get(f.name, type(default))
    kw: dict[str, Any] = {"default": default, "description": doc}
    if tp is bool or isinstance(default, bool):
        return luigi.BoolParameter(**kw)
    if tp is int or (isinstance(default, int) and tp is not float):
        return luigi.IntParameter(**kw)
    if tp is float or isinstance(default, float):
        return luigi.FloatParameter(**kw)
    if isinstance(default, tuple | list):
        return luigi.TupleParameter(**{**kw, "default": tuple(default)})
    if default is None:
        return luigi.OptionalParameter(**kw)
    return luigi.Parameter(**kw)


def stage_params(*configs: type, exclude: Iterable[str] = ()) -> Any:
    """Class decorator: one Luigi parameter per field of each config dataclass, with the
    dataclass default (each default lives in one place: the dataclass)."""
    skip = set(exclude)

    def deco(cls: type) -> type:
        for dc in configs:
            hints = typing.get_type_hints(dc)
            for f in dataclasses.fields(dc):
                if f.name in skip or f.name in cls.__dict__:
                    continue
                param = _luigi_param(f, hints)
                setattr(cls, f.name, param)
                # luigi >= 3.7 parameters are descriptors named at class creation
                if hasattr(param, "__set_name__"):
                    param.__set_name__(cls, f.name)
        return cls

    return deco


def config_from_params(task: luigi.Task, config_cls: type, **overrides: Any) -> Any:
    """Build the stage's frozen config dataclass from the task's parameter values."""
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        if f.name in overrides:
            kwargs[f.name] = overrides[f.name]
        elif hasattr(task, f.name):
            v = getattr(task, f.name)
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return config_cls(**kwargs)


# ----------------------------------------------------------------------------- input list


@functools.lru_cache(maxsize=16)
def _entries_cached(path: str, mtime_ns: int, size: int) -> tuple[UrlEntry, ...]:
    return tuple(read_url_list(path))


def video_entries() -> list[UrlEntry]:
    """Every entry of the configured video list (validated; cached while the file is
    unchanged)."""
    path = videomine().video_list
    if not path:
        raise ValueError(
            "no video list: set [videomine] video_list in luigi.cfg or pass "
            "--videomine-video-list FILE"
        )
    if not os.path.isfile(path):
        read_url_list(path)  # raises UrlListError: "<path>: video list not found"
    st = os.stat(path)
    return list(_entries_cached(str(path), st.st_mtime_ns, st.st_size))


def shard_count() -> int:
    """How many shards the configured list splits into."""
    n = len(video_entries())
    return max(1, -(-n // videomine().videos_per_shard))


# ----------------------------------------------------------------------------- versions


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the checkout the code runs from, else the package version."""
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"videomine-{_version('videomine')}"


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    return {p: _version(p) for p in PACKAGES}


# ----------------------------------------------------------------------------- outputs


class StageTarget(luigi.Target):
    """A stage's output directory; complete when its ``_SUCCESS`` marker exists."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.path = fsspec.core.url_to_fs(self.url)

    @property
    def is_local(self) -> bool:
        return "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

    def exists(self) -> bool:
        return bool(self.fs.exists(f"{self.path}/{SUCCESS}"))

    def local_path(self) -> Path:
        if not self.is_local:
            raise ValueError(f"{self.url} is not on the local file system")
        return Path(self.path)

    def file(self, name: str) -> str:
        """fsspec path of a file of this output (use with ``self.fs``)."""
        return f"{self.path}/{name}"

    def open(self, name: str, mode: str = "rb") -> Any:
        return self.fs.open(self.file(name), mode)

    def meta(self) -> dict[str, Any]:
        with self.open(META, "r") as f:
            return dict(json.load(f))

    def read_table(self, name: str, ts: schemas.TableSchema | None = None) -> pa.Table:
        ts = ts or schemas.get(name)
        with self.open(f"{name}.parquet") as f:
            return schemas.read_parquet(f, ts)

    def commit(self, staging: Path) -> bool:
        """Move a finished staging directory into place, marker included; False (and the
        staging directory removed) when another writer's output is already there.

        A finished output (one with ``_SUCCESS``) is never deleted or replaced: two
        processes that computed the same task (``--no-lock`` on one root, no luigid) keep
        the first one's output. Locally the marker is written into the staging directory
        and one ``rename`` publishes the whole directory, so no other writer ever sees an
        output without its marker. Object stores have no atomic directory rename: files
        are uploaded, then the marker (a shared object-store root wants ``luigid``).
        """
        stamp = json.dumps(
            {"finished": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
        ).encode()
        if self.exists():
            return discard(staging, self.url)
        if not self.is_local:
            if self.fs.exists(self.path):  # a killed upload (no marker): replaced
                self.fs.rm(self.path, recursive=True)
            self.fs.put(f"{staging}/", self.path, recursive=True)
            shutil.rmtree(staging, ignore_errors=True)
            self.fs.pipe(f"{self.path}/{SUCCESS}", stamp)
            return True
        (staging / SUCCESS).write_bytes(stamp)
        final = Path(self.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                os.rename(staging, final)  # fails on a non-empty directory: never replaces
                return True
            except OSError:
                if self.exists():
                    return discard(staging, self.url)
                remove_unfinished(final, staging.parent)
        raise RuntimeError(f"{self.url}: could not move {staging} into place")


class TableWriter:
    """Streams row batches of one table into a Parquet file (bounded memory)."""

    def __init__(self, path: Path, ts: schemas.TableSchema, metadata: Mapping[str, Any]) -> None:
        self.ts, self.rows = ts, 0
        self._writer = pq.ParquetWriter(path, ts.arrow_schema(metadata), compression="zstd")

    def write(self, data: pa.Table | Iterable[Mapping[str, Any]]) -> int:
        table = data if isinstance(data, pa.Table) else schemas.table_from_rows(data, self.ts)
        table = schemas.conform(table, self.ts)
        if table.num_rows:
            self._writer.write_table(table.replace_schema_metadata(self._writer.schema.metadata))
        self.rows += table.num_rows
        return int(table.num_rows)

    def close(self) -> None:
        self._writer.close()


class StageOutput:
    """What a stage writes while it runs: tables, files and counts in a staging dir."""

    def __init__(self, path: Path, metadata: Mapping[str, Any]) -> None:
        self.path = path
        self.tables: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self.notes: dict[str, Any] = {}
        self._metadata = dict(metadata)
        self._writers: dict[str, TableWriter] = {}

    def write(
        self,
        name: str,
        data: pa.Table | Iterable[Mapping[str, Any]],
        ts: schemas.TableSchema | None = None,
    ) -> int:
        """Write a whole table ``name`` (declared in data_manifests) at once."""
        ts = ts or schemas.get(name)
        table = data if isinstance(data, pa.Table) else schemas.table_from_rows(data, ts)
        n = schemas.write_parquet(table, self.path / f"{name}.parquet", ts, self._metadata)
        self.tables[name] = {"rows": n, "schema": ts.name, "schema_version": ts.version}
        return n

    def writer(self, name: str, ts: schemas.TableSchema | None = None) -> TableWriter:
        """A streaming writer for table ``name``; closed by the run model."""
        ts = ts or schemas.get(name)
        w = TableWriter(self.path / f"{name}.parquet", ts, self._metadata)
        self._writers[name] = w
        return w

    def close(self) -> None:
        for name, w in self._writers.items():
            w.close()
            self.tables[name] = {
                "rows": w.rows,
                "schema": w.ts.name,
                "schema_version": w.ts.version,
            }
        self._writers.clear()

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(n)

    def note(self, key: str, value: Any) -> None:
        """Free-form facts for the metadata sidecar (e.g. the K actually used)."""
        self.notes[key] = value


class StageTask(luigi.Task):
    """Base of every stage: parameter-hashed output dir, atomic write, metadata sidecar.

    Subclasses implement :meth:`produce`. ``may_be_empty`` names tables that may
    legitimately have no rows; any other empty table fails the task unless
    ``[videomine] allow_empty`` is set.
    """

    may_be_empty: tuple[str, ...] = ()

    @abc.abstractmethod
    def produce(self, out: StageOutput) -> None:
        """Compute the stage and write its tables and files into ``out``."""

    # -- identity ---------------------------------------------------------------
    def input_digest(self) -> str:
        """Digest of inputs that are not tasks (e.g. the rows of the URL list)."""
        return ""

    def lineage(self) -> str:
        cfg = videomine()
        h = hashlib.sha256(self.task_id.encode())
        for dep in luigi.task.flatten(self.requires()):
            h.update((dep.lineage() if isinstance(dep, StageTask) else dep.task_id).encode())
        h.update(self.input_digest().encode())
        h.update(str(cfg.videos_per_shard).encode())
        return h.hexdigest()

    def output_url(self) -> str:
        root = videomine().root.rstrip("/")
        return f"{root}/{self.task_family}/{self.task_id}-{self.lineage()[:8]}"

    def output(self) -> StageTarget:
        return StageTarget(self.output_url())

    # -- helpers ----------------------------------------------------------------
    def progress(self, done: int, total: int, message: str = "") -> None:
        """Report progress to the scheduler (visible in luigid's visualiser)."""
        pct = 100.0 * done / total if total else 100.0
        self.set_progress_percentage(round(pct, 1))
        self.set_status_message(message or f"{done}/{total}")

    def check_failure_rate(self, failed: int, total: int, what: str = "videos") -> None:
        limit = videomine().max_failure_rate
        if total and failed / total > limit:
            raise ShardFailure(
                f"{self.task_id}: {failed}/{total} {what} failed, more than "
                f"max_failure_rate={limit}; see the per-{what[:-1]} error rows"
            )

    def table_metadata(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_family": self.task_family,
            "params": self.to_str_params(only_significant=True),
            "code_version": code_version(),
        }

    # -- run ----------------------------------------------------------------------
    def _staging_dir(self, target: StageTarget) -> Path:
        """A new staging directory ``<name>.<host>.<pid>.<random>`` (the writer in its
        name: :func:`clean_stale_staging` tells a dead writer's leftovers from a live one's);
        stale ones of this very task are removed first."""
        name = Path(target.path).name
        if target.is_local:
            base = Path(target.path).parent / ".staging"
        else:
            base = Path(tempfile.gettempdir()) / "videomine-staging" / self.task_family
        base.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(base, name, videomine().stale_staging_hours * 3600.0)
        return Path(tempfile.mkdtemp(prefix=f"{name}.{host_tag()}.{os.getpid()}.", dir=base))

    def run(self) -> None:
        started = time.time()
        target = self.output()
        if target.exists():  # another writer (e.g. --no-lock) finished it meanwhile
            log.warning("%s is complete (another writer); not computed again", target.url)
            return
        staging = self._staging_dir(target)
        out = StageOutput(staging, self.table_metadata())
        try:
            self.produce(out)
            out.close()
            empty = [
                n for n, t in out.tables.items() if t["rows"] == 0 and n not in self.may_be_empty
            ]
            if empty and not videomine().allow_empty:
                raise EmptyOutputError(
                    f"{self.task_id}: empty output table(s) {empty}; set [videomine] "
                    "allow_empty=true to accept empty outputs"
                )
            meta = {
                "task_family": self.task_family,
                "task_id": self.task_id,
                "lineage": self.lineage(),
                "output": target.url,
                "params": self.to_str_params(only_significant=False),
                "significant_params": self.to_str_params(only_significant=True),
                "requires": [
                    d.output().url if isinstance(d, StageTask) else d.task_id
                    for d in luigi.task.flatten(self.requires())
                ],
                "code_version": code_version(),
                "packages": package_versions(),
                "python": platform.python_version(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "tables": out.tables,
                "counts": out.counts,
                "notes": out.notes,
                "started": started,
                "finished": time.time(),
                "wall_time_s": round(time.time() - started, 3),
            }
            (staging / META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
            target.commit(staging)
        except BaseException:
            out.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise


class ShardTask(StageTask):
    """A stage over one shard of the video list."""

    shard = luigi.IntParameter(description="shard index (see [videomine] videos_per_shard)")


def read_stage_table(
    source: StageTask | StageTarget, name: str, ts: schemas.TableSchema | None = None
) -> pa.Table:
    """Read table ``name`` of a completed stage output (checks the schema)."""
    target = source.output() if isinstance(source, StageTask) else source
    if not target.exists():
        raise FileNotFoundError(f"{target.url} is not complete (no {SUCCESS} marker)")
    return target.read_table(name, ts)


def concat_stage_tables(sources: Iterable[StageTask | StageTarget], name: str) -> pa.Table:
    """Concatenate table ``name`` over several shard outputs."""
    ts = schemas.get(name)
    parts = [read_stage_table(s, name, ts) for s in sources]
    return pa.concat_tables(parts) if parts else ts.fields.empty_table()


def input_list_digest() -> str:
    """sha256 of the whole configured list; lineage asks for it once per FetchVideos on
    every completeness check, so it is hashed once per version of the file."""
    video_entries()  # validates and fills the cache
    path = videomine().video_list
    st = os.stat(path)
    return _digest_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _digest_cached(path: str, mtime_ns: int, size: int) -> str:
    return list_digest(list(_entries_cached(path, mtime_ns, size)))


# ----------------------------------------------------------------------------- evaluations


class EvaluationOutput(luigi.LocalTarget):
    """``metrics.json`` in a user-chosen ``--out-dir``.

    Complete only when the directory's stamp names this very task (same task id, so the
    same data, checkpoint and parameters): rerunning an evaluation with anything changed
    into the same directory evaluates again instead of reporting stale metrics.
    """

    STAMP = ".videomine_task_id"

    def __init__(self, out_dir: str, task_id: str) -> None:
        super().__init__(str(Path(out_dir) / "metrics.json"))
        self.stamp = Path(out_dir) / self.STAMP
        self.task_id = task_id

    def exists(self) -> bool:
        try:
            return bool(super().exists()) and self.stamp.read_text().strip() == self.task_id
        except FileNotFoundError:
            return False

    def clear(self) -> None:
        self.stamp.unlink(missing_ok=True)

    def mark(self) -> None:
        tmp = self.stamp.with_name(f"{self.STAMP}.{uuid.uuid4().hex}")
        tmp.write_text(self.task_id + "\n")
        os.replace(tmp, self.stamp)


class EvaluationTask(luigi.Task):
    """Base of the ``Evaluate*`` tasks: ``--data-root DIR --out-dir DIR``; the output is
    ``<out_dir>/metrics.json``, stamped with the task id once the run succeeded."""

    def output(self) -> EvaluationOutput:
        return EvaluationOutput(str(self.out_dir), self.task_id)  # type: ignore[attr-defined]


@EvaluationTask.event_handler(luigi.Event.START)
def _clear_evaluation_stamp(task: EvaluationTask) -> None:
    Path(str(task.out_dir)).mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]
    task.output().clear()


@EvaluationTask.event_handler(luigi.Event.SUCCESS)
def _mark_evaluation(task: EvaluationTask) -> None:
    task.output().mark()
