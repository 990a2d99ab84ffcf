"""``PublishDataset``: publish chosen tables of the finished run under ``[videomine] root``.

    luigi --module tasks PublishDataset --name mined-pairs --version 1 \\
        --tables '["pairs","nodes","patches"]' --local-scheduler

The run is either every completed output under the root (which must then hold one run),
or, with ``--upstream '["BuildGraph"]'``, the named final stage tasks (built with their
configured parameters; Luigi runs them first if needed) and everything they require. An
unfinished run (an output without ``_SUCCESS``, a missing shard, a required upstream
output that is not complete, a table no stage produced) is refused with
:class:`~data_manifests.runs.IncompleteRunError`. The card's example montages are the PNGs
the producing stages wrote into their output directories, plus a contact sheet rendered
here (``pipeline.imaging.montage``) from the first image-bytes column of each table.
"""

from __future__ import annotations

import logging
from typing import Any

import luigi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_manifests.publish import DEFAULT_FILE_MB, DEFAULT_ROW_GROUP_MB, publish
from data_manifests.registry import Registry
from data_manifests.runs import RunOutput, scan_run
from pipeline.imaging import ImageDecodeError, decode_jpeg, encode_png, montage
from tasks.common import shard_count, videomine

log = logging.getLogger(__name__)

MONTAGE_ROWS = 4  # rows x columns of example images per table in the card
MONTAGE_COLS = 8

__all__ = ["PublishDataset", "RegistryTarget", "card_images"]


class RegistryTarget(luigi.Target):
    """Exists when ``name@version`` is committed in the registry."""

    def __init__(self, registry: str, name: str, version: str) -> None:
        self.registry, self.ref = registry, f"{name}@{version}"

    def exists(self) -> bool:
        return Registry(self.registry).exists(self.ref)


def _image_columns(schema: pa.Schema) -> list[str]:
    return [
        f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
    ]


def _table_montage(run: RunOutput, table: str) -> bytes | None:
    """A contact sheet of the first images of ``table`` (None when it holds no images)."""
    files = run.table_files(table)
    if not files:
        return None
    stage, name = files[0]
    with stage.store.fs.open(stage.store.path(name), "rb") as f:
        pf = pq.ParquetFile(f)
        cols = _image_columns(pf.schema_arrow)
        if not cols:
            return None
        # only the first few rows: a row group of an image table can hold 64k images
        first = next(
            pf.iter_batches(batch_size=MONTAGE_ROWS * MONTAGE_COLS, columns=cols[:2]), None
        )
        t = pa.Table.from_batches([first]) if first is not None else None
    if t is None or t.num_rows == 0:
        return None
    rows: list[list[np.ndarray[Any, Any]]] = []
    for i in range(min(t.num_rows, MONTAGE_ROWS * MONTAGE_COLS // max(1, len(cols[:2])))):
        try:
            imgs = [
                decode_jpeg(t.column(c)[i].as_py()) for c in cols[:2] if t.column(c)[i].is_valid
            ]
        except ImageDecodeError:
            return None  # bytes that are not images (e.g. serialised arrays)
        if not rows or len(rows[-1]) + len(imgs) > MONTAGE_COLS:
            rows.append([])
        rows[-1].extend(imgs)
        if len(rows) > MONTAGE_ROWS:
            rows.pop()
            break
    rows = [r for r in rows if r]
    return encode_png(montage(rows, tile=96)) if rows else None


def card_images(run: RunOutput, tables: list[str]) -> dict[str, bytes]:
    """Caption -> PNG bytes: the stages' own PNGs, then one contact sheet per table."""
    images: dict[str, bytes] = {}
    for stage in run.producers(tables):
        for png in stage.pngs:
            images[f"{stage.family}: {png[: -len('.png')]}"] = stage.store.read_bytes(png)
    for table in tables:
        sheet = _table_montage(run, table)
        if sheet is not None:
            images[f"{table}: first rows"] = sheet
    return images


class PublishDataset(luigi.Task):
    """Publish ``tables`` of the run at ``[videomine] root`` as ``name@version``."""

    name = luigi.Parameter(description="dataset name (A-Z a-z 0-9 . _ -)")
    version = luigi.Parameter(description="dataset version; an existing one is refused")
    tables = luigi.ListParameter(description='tables to publish, e.g. ["pairs","patches"]')
    registry = luigi.Parameter(
        default="", description="registry URL (default [videomine] registry)"
    )
    owner = luigi.Parameter(default="", description="owner shown in the catalog (default: user)")
    description = luigi.Parameter(default="", description="one paragraph for the card")
    parents = luigi.ListParameter(default=(), description="parent datasets NAME@VERSION")
    target_file_mb = luigi.FloatParameter(default=DEFAULT_FILE_MB, description="file size")
    row_group_mb = luigi.FloatParameter(default=DEFAULT_ROW_GROUP_MB, description="row group size")
    upstream = luigi.ListParameter(
        default=(), description='final stage tasks that define the run, e.g. ["BuildGraph"]'
    )

    def requires(self) -> list[luigi.Task]:
        """The final stage tasks named by ``upstream``, with their configured parameters
        (every shard of a sharded stage, e.g. ``SegmentMotion``)."""
        out = []
        for family in self.upstream:
            try:
                cls = luigi.task_register.Register.get_task_cls(str(family))
            except luigi.task_register.TaskClassException as e:
                raise ValueError(f"upstream {family!r}: {e}") from e
            if "shard" in cls.get_param_names():
                out.extend(cls(shard=s) for s in range(shard_count()))
            else:
                out.append(cls())
        return out

    def registry_url(self) -> str:
        return str(self.registry or videomine().registry or "")

    def output(self) -> RegistryTarget:
        return RegistryTarget(Registry(self.registry_url() or None).url, self.name, self.version)

    def complete(self) -> bool:
        """Done when this version exists *and* was published from this run's outputs; a
        version published from another run makes :meth:`run` refuse loudly instead.

        Outputs are compared by directory name, ``<task_id>-<lineage8>``: the task id alone
        leaves out the input list and everything upstream, so another run with the same
        parameters over other videos has the same ids."""
        reg = Registry(self.registry_url() or None)
        ref = f"{self.name}@{self.version}"
        if not reg.exists(ref):
            return False
        published = {
            str(s["dir"]).rstrip("/").rsplit("/", 1)[-1] for s in reg.manifest(ref).sources
        }
        try:
            run = scan_run(videomine().root)
        except FileNotFoundError:
            return False
        finals = [t.output().url for t in luigi.task.flatten(self.requires())]
        if finals and not all(t.complete() for t in luigi.task.flatten(self.requires())):
            return False
        here = {s.dirname for s in (run.select(finals) if finals else run).complete_stages()}
        return published <= here

    def _status(self, message: str) -> None:
        if callable(self.set_status_message):  # None when run outside a luigi worker
            self.set_status_message(message)

    def run(self) -> None:
        cfg = videomine()
        tables = [str(t) for t in self.tables]
        run = scan_run(cfg.root)
        finals = [t.output().url for t in luigi.task.flatten(self.requires())]
        if finals:
            run = run.select(finals)
        try:
            expected: int | None = shard_count()
        except (ValueError, FileNotFoundError):
            expected = None  # no video list configured: shards are checked for gaps only
        run.require_complete(tables, expected)
        run.require_single_run()
        self._status(f"publishing {tables} from {cfg.root}")
        kwargs: dict[str, Any] = {}
        if cfg.video_list:
            kwargs["input_url_list"] = cfg.video_list
        entry = publish(
            run.root,
            self.name,
            self.version,
            tables,
            self.registry_url() or None,
            owner=self.owner or None,
            description=self.description,
            parents=[str(p) for p in self.parents],
            images=card_images(run, tables),
            target_file_mb=self.target_file_mb,
            row_group_mb=self.row_group_mb,
            expected_shards=expected,
            outputs=finals or None,
            **kwargs,
        )
        self._status(f"published {entry.ref}: {entry.total_bytes} bytes")
        log.info("published %s (%s)", entry.ref, entry.rows)
