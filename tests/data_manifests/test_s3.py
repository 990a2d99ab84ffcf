"""Runs and registries on an S3-compatible server (moto, on 127.0.0.1, started here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest

import data_manifests
from data_manifests import schema as S
from data_manifests.publish import publish
from data_manifests.registry import DatasetExistsError, Registry
from data_manifests.runs import IncompleteRunError
from data_manifests.storage import create_exclusive, open_store
from data_manifests.verify import verify
from tests.data_manifests.fakerun import (  # noqa: F401
    example_table,
    make_run,
    test_tables,
    write_stage,
)

pytestmark = pytest.mark.usefixtures("test_tables")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """storage_options for a fresh bucket on the local server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    opts: dict[str, Any] = {
        "client_kwargs": {"endpoint_url": s3_endpoint},
        "skip_instance_cache": True,
    }
    bucket = "vm-" + request.node.name.replace("_", "-")[:40].lower()
    store = open_store(f"s3://{bucket}", opts)
    store.fs.mkdir(bucket)
    return {"opts": opts, "bucket": bucket}


def _upload_run(tmp_path: Path, s3: dict[str, Any]) -> str:
    url = f"s3://{s3['bucket']}/runs/r1"
    local = make_run(tmp_path / "run", n_pairs=90, url=url)
    store = open_store(url, s3["opts"])
    store.fs.put(f"{local}/", store.root, recursive=True)
    return url


def test_publish_verify_and_train_read_over_s3(tmp_path: Path, s3: dict[str, Any]) -> None:
    run_url = _upload_run(tmp_path, s3)
    reg_url = f"s3://{s3['bucket']}/registry"
    reg = Registry(reg_url, s3["opts"])
    entry = publish(
        run_url,
        "pairs-s3",
        "1",
        ["pairs", "videos"],
        reg,
        target_file_mb=0.002,
        storage_options=s3["opts"],
    )
    assert entry.rows == {"pairs": 90, "videos": 6}
    assert reg.dataset_store(entry).url.startswith(f"s3://{s3['bucket']}/registry/datasets/")
    report = verify("pairs-s3@1", reg)
    assert report.ok, str(report)
    assert report.files_checked >= 4

    # A training-style read: a pyarrow dataset over s3fs, streamed in batches.
    ds = data_manifests.load("pairs-s3@1", "pairs", registry=reg_url, storage_options=s3["opts"])
    assert isinstance(ds, pads.Dataset) and len(ds.files) > 1
    seen = []
    for batch in ds.to_batches(columns=["pair_id", "image"], batch_size=16):
        assert batch.column("image").null_count == 0
        seen += batch.column("pair_id").to_pylist()
    assert sorted(seen) == list(range(90))

    # Tampering on the object store is caught and named.
    store = reg.dataset_store(entry)
    victim = reg.manifest(entry).tables["pairs"].files[0].path
    store.fs.pipe_file(store.path(victim), store.read_bytes(victim)[:-10])
    bad = verify("pairs-s3@1", Registry(reg_url, s3["opts"]))
    assert [p.path for p in bad.problems] == [victim]
    assert bad.problems[0].reason.startswith("truncated")


def test_cli_against_s3_configured_by_environment(
    tmp_path: Path, s3: dict[str, Any], s3_endpoint: str
) -> None:
    """Team B's view: registry and endpoint from the environment, no code.

    The subprocess knows only the project's real table declarations (not this module's
    test ``videos``/``pairs``), so a real declared table is published here.
    """
    table = next(n for n in sorted(S.all_schemas()) if n not in ("videos", "pairs") and n[0] != "_")
    local = tmp_path / "real-run"
    write_stage(local, "Stage", {table: example_table(S.get(table))})
    run_url = f"s3://{s3['bucket']}/runs/real"
    store = open_store(run_url, s3["opts"])
    store.fs.put(f"{local}/", store.root, recursive=True)
    reg_url = f"s3://{s3['bucket']}/registry"
    publish(run_url, "shared", "1", [table], reg_url, storage_options=s3["opts"])
    env = {
        **os.environ,
        "VIDEOMINE_REGISTRY": reg_url,
        "FSSPEC_S3_ENDPOINT_URL": s3_endpoint,  # fsspec's per-protocol config variables
    }
    for args in (["list"], ["verify", "shared@1"]):
        r = subprocess.run(
            [sys.executable, "-m", "data_manifests", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
    assert "shared@1" in r.stdout and r.stdout.strip().endswith("OK")


def test_conditional_put_commits_once_on_s3(tmp_path: Path, s3: dict[str, Any]) -> None:
    store = open_store(f"s3://{s3['bucket']}/x", s3["opts"])
    create_exclusive(store, "marker.json", b"first")
    with pytest.raises(FileExistsError):
        create_exclusive(store, "marker.json", b"second")
    assert store.read_bytes("marker.json") == b"first"

    run_url = _upload_run(tmp_path, s3)
    reg = Registry(f"s3://{s3['bucket']}/registry", s3["opts"])
    publish(run_url, "d", "1", ["videos"], reg, storage_options=s3["opts"])
    with pytest.raises(DatasetExistsError, match="d@1 is already published"):
        publish(run_url, "d", "1", ["pairs"], reg, storage_options=s3["opts"])
    assert reg.manifest("d@1").tables.keys() == {"videos"}


def test_incomplete_run_on_s3_is_refused(tmp_path: Path, s3: dict[str, Any]) -> None:
    run_url = _upload_run(tmp_path, s3)
    store = open_store(run_url, s3["opts"])
    markers = [p for p in store.fs.find(store.root) if p.endswith("/_SUCCESS")]
    store.fs.rm(next(p for p in markers if "/FetchVideos/" in p))
    with pytest.raises(IncompleteRunError, match="FetchVideos/.* has no _SUCCESS marker"):
        publish(
            run_url,
            "d",
            "1",
            ["pairs"],
            Registry(f"s3://{s3['bucket']}/reg", s3["opts"]),
            storage_options=s3["opts"],
        )
