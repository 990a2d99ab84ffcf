"""Where datasets and registries live: fsspec URLs, hashing and create-exclusive writes.

Every path handled by the registry is a :class:`Store` (a file system plus a root path), so
the same code runs on a local directory, ``file://``, ``s3://`` (``s3fs``) or ``gs://``
(``gcsfs``, when installed).

Commit guarantee (see :func:`create_exclusive`): a version is committed by creating one
small object that must not exist yet. On a local (or NFS/POSIX) file system this is
``os.link`` of a fully written temp file, which fails atomically when the target exists; on
S3 it is a ``PutObject`` with ``If-None-Match: *`` (``s3fs`` ``mode="create"``; AWS S3 and
recent S3-compatible servers honour it). Other back ends fall back to check-then-write
followed by a read-back; that detects most but not all races, and is logged as a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB reads: large enough for throughput, small enough for memory

__all__ = ["Store", "create_exclusive", "open_store", "sha256_bytes", "sha256_file"]


@dataclass(frozen=True)
class Store:
    """A root path on one file system; ``url`` is how a user would name it."""

    fs: AbstractFileSystem
    root: str
    url: str

    def path(self, *parts: str) -> str:
        """Absolute path (within ``fs``) of ``parts`` below the root."""
        clean = [p.strip("/") for p in parts if p and p.strip("/")]
        return posixpath.join(self.root, *clean) if clean else self.root

    def url_of(self, *parts: str) -> str:
        """A URL of ``parts`` below the root that :func:`open_store` understands."""
        clean = [p.strip("/") for p in parts if p and p.strip("/")]
        return posixpath.join(self.url.rstrip("/"), *clean) if clean else self.url

    def child(self, *parts: str) -> Store:
        return Store(self.fs, self.path(*parts), self.url_of(*parts))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))

    def read_bytes(self, *parts: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(*parts))
        return data

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write (or replace) a file; only used under a not yet committed temp prefix."""
        target = self.path(rel)
        if self.is_local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        self.fs.pipe_file(target, data)

    def open(self, rel: str, mode: str = "rb") -> BinaryIO:
        target = self.path(rel)
        if self.is_local and "w" in mode:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        f: BinaryIO = self.fs.open(target, mode)
        return f

    def listdir(self, *parts: str) -> list[str]:
        """Names directly below ``parts`` (empty when it does not exist)."""
        where = self.path(*parts)
        try:
            entries = self.fs.ls(where, detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(str(e).rstrip("/")) for e in entries)

    def remove_tree(self, *parts: str) -> None:
        where = self.path(*parts)
        if self.fs.exists(where):
            self.fs.rm(where, recursive=True)


def open_store(url: str, storage_options: dict[str, Any] | None = None) -> Store:
    """Resolve a local path or fsspec URL (``file://``, ``s3://bucket/prefix``, ``gs://``)."""
    if not url:
        raise ValueError("empty storage URL; give a path or an fsspec URL such as s3://bucket/x")
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        path = os.path.abspath(path)
        url = path
    return Store(fs, str(path).rstrip("/") or "/", url.rstrip("/"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while True:
        block = f.read(_CHUNK)
        if not block:
            return
        yield block


def sha256_file(store: Store, rel: str) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file, streamed."""
    h = hashlib.sha256()
    n = 0
    with store.fs.open(store.path(rel), "rb") as f:
        for block in _chunks(f):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def _create_local(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        # link() fails with EEXIST atomically, and the marker appears with its full content.
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        # File systems without hard links: O_EXCL is still atomic for the creation itself.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    finally:
        os.unlink(tmp)


def create_exclusive(store: Store, rel: str, data: bytes) -> None:
    """Create ``rel`` with ``data``; raise ``FileExistsError`` if it already exists.

    Atomic on local file systems (``os.link``) and S3 (conditional put). Elsewhere the
    guarantee is weaker (check, write, read back); see the module docstring.
    """
    path = store.path(rel)
    if store.is_local:
        _create_local(path, data)
        return
    protocol = store.fs.protocol
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    if "s3" in protocols or "s3a" in protocols:
        store.fs.pipe_file(path, data, mode="create")
        return
    log.warning(
        "create-exclusive on %s is check-then-write: racing publishers are detected by "
        "read-back only",
        protocols,
    )
    if store.fs.exists(path):
        raise FileExistsError(path)
    store.fs.pipe_file(path, data)
    if store.fs.cat_file(path) != data:
        raise FileExistsError(f"{path}: another writer committed first")
