"""A small fake mining run on disk, laid out exactly as tasks/common.py writes one.

Tables ``videos`` and ``pairs`` get test definitions (swapped into the schema registry for
the test) so the known answers (licences, pair types) do not depend on the stage modules
other developers are still writing; ``every_table`` tests cover the real declarations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from data_manifests import schema as S

VIDEOS = S.TableSchema(
    name="videos",
    version=1,
    description="test videos",
    fields=pa.schema(
        [
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("url", pa.string(), nullable=False),
            pa.field("licence", pa.string()),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
        ]
    ),
    key=("video_id",),
)
PAIRS = S.TableSchema(
    name="pairs",
    version=2,
    description="test pairs",
    fields=pa.schema(
        [
            pa.field("pair_id", pa.int64(), nullable=False),
            pa.field("a", pa.string(), nullable=False),
            pa.field("b", pa.string(), nullable=False),
            pa.field("pair_type", pa.string(), nullable=False),
            pa.field("image", pa.binary()),
        ]
    ),
    key=("pair_id",),
)
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db40000000049454e44ae426082"
)
LICENCES = ["cc-by", "cc-by", "cc0", None, "cc-by", "cc0"]  # 6 videos over 2 shards
PAIR_TYPES = ["intra"] * 30 + ["inter"] * 12 + ["transitive"] * 18


@pytest.fixture
def test_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """``videos`` and ``pairs`` as the test definitions above, for one test."""
    S.all_schemas()  # import every declared table first, so ours replace them cleanly
    monkeypatch.setitem(S.SCHEMAS, "videos", VIDEOS)
    monkeypatch.setitem(S.SCHEMAS, "pairs", PAIRS)


def videos_rows(shard: int) -> list[dict[str, Any]]:
    return [
        {
            "video_id": f"v{i}",
            "url": f"file:///videos/v{i}.mp4",
            "licence": LICENCES[i],
            "status": "ok" if i != 5 else "failed",
            "error": None if i != 5 else "corrupt: moov atom not found",
        }
        for i in range(shard * 3, shard * 3 + 3)
    ]


def pairs_rows(n: int = len(PAIR_TYPES), image_bytes: int = 64) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {
            "pair_id": i,
            "a": f"n{i}",
            "b": f"n{i + 1}",
            "pair_type": PAIR_TYPES[i % len(PAIR_TYPES)],
            "image": rng.integers(0, 256, image_bytes, dtype=np.uint8).tobytes(),
        }
        for i in range(n)
    ]


def write_stage(
    root: Path,
    family: str,
    tables: dict[str, pa.Table | list[dict[str, Any]]],
    params: dict[str, Any] | None = None,
    requires: list[str] | None = None,
    counts: dict[str, int] | None = None,
    complete: bool = True,
    pngs: dict[str, bytes] | None = None,
) -> Path:
    """One stage output dir as StageTask writes it (tables, _meta.json, then _SUCCESS)."""
    params = {k: str(v) for k, v in (params or {}).items()}
    task_id = f"{family}_{'_'.join(params.values()) or 'x'}_{hashlib.md5(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]}"
    lineage = hashlib.sha256((task_id + json.dumps(requires or [])).encode()).hexdigest()
    out = root / family / f"{task_id}-{lineage[:8]}"
    out.mkdir(parents=True)
    meta_tables = {}
    for name, data in tables.items():
        ts = S.get(name)
        table = data if isinstance(data, pa.Table) else S.table_from_rows(data, ts)
        n = S.write_parquet(table, out / f"{name}.parquet", ts, {"task_id": task_id})
        meta_tables[name] = {"rows": n, "schema": name, "schema_version": ts.version}
    for name, data in (pngs or {}).items():
        (out / name).write_bytes(data)
    meta = {
        "task_family": family,
        "task_id": task_id,
        "lineage": lineage,
        "output": str(out),
        "params": params,
        "requires": requires or [],
        "code_version": "abc123def456",
        "tables": meta_tables,
        "counts": counts or {},
        "wall_time_s": 1.5,
    }
    (out / "_meta.json").write_text(json.dumps(meta))
    if complete:
        (out / "_SUCCESS").write_text("{}")
    return out


def make_run(
    root: Path, n_pairs: int = len(PAIR_TYPES), image_bytes: int = 64, url: str | None = None
) -> Path:
    """Two FetchVideos shards and one BuildGraph; the ``test_tables`` fixture must be on.

    ``url``: where the run will live (e.g. ``s3://bucket/run``), for the ``requires`` URLs
    the sidecars record.
    """
    fetch = [
        write_stage(
            root,
            "FetchVideos",
            {"videos": videos_rows(s)},
            params={"shard": s},
            counts={"ok": 3 - (s == 1), "failed": int(s == 1)},
        )
        for s in range(2)
    ]
    write_stage(
        root,
        "BuildGraph",
        {"pairs": pairs_rows(n_pairs, image_bytes)},
        params={"k": 4},
        requires=[f"{url}/{p.relative_to(root)}" if url else str(p) for p in fetch],
        counts={"pairs": n_pairs},
        pngs={"pairs_montage.png": TINY_PNG},
    )
    return root


def iter_files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


ROWS = 5


def example_array(t: pa.DataType, n: int, rng: np.random.Generator) -> pa.Array:
    """``n`` values of arrow type ``t`` (any type the table declarations use)."""
    if pa.types.is_boolean(t):
        return pa.array(rng.integers(0, 2, n).astype(bool))
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pa.array(rng.integers(0, 100, n).astype(t.to_pandas_dtype()), type=t)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.array([f"v{i}" for i in range(n)], type=t)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([rng.bytes(16) for _ in range(n)], type=t)
    if pa.types.is_fixed_size_binary(t):
        return pa.array([rng.bytes(t.byte_width) for _ in range(n)], type=t)
    if (
        pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
    ):
        return (
            pa.array(np.arange(n, dtype=np.int64))
            .cast(pa.int32() if t.bit_width == 32 else pa.int64())
            .cast(t)
        )
    if pa.types.is_fixed_size_list(t):
        flat = example_array(t.value_type, n * t.list_size, rng)
        return pa.FixedSizeListArray.from_arrays(flat, t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        flat = example_array(t.value_type, n * 2, rng)
        offsets = pa.array(
            np.arange(0, 2 * n + 1, 2, dtype=np.int32 if pa.types.is_list(t) else np.int64)
        )
        cls = pa.ListArray if pa.types.is_list(t) else pa.LargeListArray
        return cls.from_arrays(offsets, flat)
    if pa.types.is_struct(t):
        return pa.StructArray.from_arrays(
            [example_array(f.type, n, rng) for f in t], fields=list(t)
        )
    if pa.types.is_dictionary(t):
        return example_array(t.value_type, n, rng).dictionary_encode().cast(t)
    raise NotImplementedError(f"no example values for arrow type {t}")


def example_table(ts: S.TableSchema, n: int = ROWS, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.Table.from_arrays(
        [example_array(f.type, n, rng) for f in ts.fields], schema=ts.fields
    )
