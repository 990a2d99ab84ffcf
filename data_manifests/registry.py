"""The dataset catalog: which datasets exist, their versions, owners, sizes and locations.

A registry is a directory on any fsspec file system (local path, ``file://``, ``s3://``,
``gs://``)::

    <registry>/catalog/<name>/<version>.json        one entry per committed version
    <registry>/datasets/<name>/<version>-<token>/   the files (``manifest.json`` inside)

The catalog entry is the commit marker: it is created exclusively (see
:func:`data_manifests.storage.create_exclusive`) after every file of the dataset has been
written under its unique, never reused ``<version>-<token>`` prefix. A dataset without an
entry does not exist for readers, so a crashed or losing publisher leaves nothing that looks
published; an entry is never rewritten.
"""

from __future__ import annotations

import configparser
import difflib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from data_manifests.manifest import Manifest, ManifestError
from data_manifests.storage import Store, create_exclusive, open_store, sha256_bytes

ENV_VAR = "VIDEOMINE_REGISTRY"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

__all__ = [
    "ENV_VAR",
    "DatasetExistsError",
    "DatasetMissingError",
    "Entry",
    "Registry",
    "RegistryUnavailableError",
    "UnknownDatasetError",
    "parse_ref",
    "registry_url",
]


class UnknownDatasetError(KeyError):
    """No such dataset or version; the message lists the close matches."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetExistsError(FileExistsError):
    """``name@version`` is already published (versions are immutable)."""


class DatasetMissingError(FileNotFoundError):
    """A catalog entry whose dataset directory or manifest is gone or altered."""


class RegistryUnavailableError(OSError):
    """The registry location cannot be read as a registry: it does not exist (a mistyped
    path), is a file, is a directory that is not a registry, or cannot be read."""


def check_name(kind: str, value: str) -> str:
    if not _SAFE.match(value) or ".." in value:
        raise ValueError(
            f"{kind} {value!r} is not allowed: use 1-128 characters from A-Z a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return value


def parse_ref(ref: str, require_version: bool = False) -> tuple[str, str | None]:
    """``"name@version"`` -> (name, version); ``"name"`` -> (name, None)."""
    name, sep, version = ref.partition("@")
    check_name("dataset name", name)
    if sep:
        check_name("dataset version", version)
    elif require_version:
        raise ValueError(f"{ref!r}: give a version as NAME@VERSION")
    return name, (version if sep else None)


def registry_url(explicit: str | None = None) -> str:
    """The registry to use: ``explicit``, else ``$VIDEOMINE_REGISTRY``, else luigi.cfg.

    luigi.cfg is looked up as luigi does for the files this project uses
    (``$LUIGI_CONFIG_PATH``, then ``./luigi.cfg``), section ``[videomine]``, key
    ``registry``.
    """
    if explicit:
        return explicit
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    cfg = configparser.ConfigParser()
    candidates = [p for p in os.environ.get("LUIGI_CONFIG_PATH", "").split(os.pathsep) if p]
    cfg.read([*candidates, "luigi.cfg"])
    if cfg.has_option("videomine", "registry"):
        return cfg.get("videomine", "registry")
    raise ValueError(
        f"no registry given: pass --registry URL, set ${ENV_VAR}, or set "
        "[videomine] registry in luigi.cfg"
    )


@dataclass(frozen=True)
class Entry:
    """One committed dataset version as the catalog lists it."""

    name: str
    version: str
    owner: str
    created_at: str
    location: str  # relative to the registry root, or an absolute fsspec URL
    total_bytes: int
    n_files: int
    rows: dict[str, int]
    manifest_sha256: str
    description: str = ""
    parents: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


class Registry:
    """A catalog of published datasets at ``url``."""

    def __init__(self, url: str | None = None, storage_options: dict[str, Any] | None = None):
        self.storage_options = dict(storage_options or {})
        self.store = open_store(registry_url(url), self.storage_options)

    @property
    def url(self) -> str:
        return self.store.url

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    # -- reading the catalog ------------------------------------------------------------
    def _fresh(self) -> None:
        """Drop fsspec's listing cache: other publishers commit behind our back."""
        self.store.fs.invalidate_cache(self.store.path("catalog"))

    def check_readable(self, allow_missing: bool = False) -> None:
        """Raise :class:`RegistryUnavailableError` unless the location is a registry (an
        empty directory is one: nothing published yet). ``allow_missing``: a location that
        does not exist passes (a registry ``publish`` will create)."""
        fs, root, url = self.store.fs, self.store.root, self.url
        how = f"(from --registry, ${ENV_VAR} or [videomine] registry in luigi.cfg)"
        try:
            if fs.isfile(root):
                raise RegistryUnavailableError(
                    f"registry {url} is a file, not a registry directory {how}"
                )
            if not fs.isdir(root) and not allow_missing:
                raise RegistryUnavailableError(
                    f"registry {url} does not exist {how}: check the path for a typo; "
                    "publishing creates it"
                )
            if fs.isdir(root) and not fs.isdir(self.store.path("catalog")) and fs.ls(root):
                raise RegistryUnavailableError(
                    f"{url} is not a videomine registry: it holds files but no catalog/ {how}"
                )
        except RegistryUnavailableError:
            raise
        except OSError as e:
            raise RegistryUnavailableError(f"registry {url} cannot be read: {e}") from e

    def names(self) -> list[str]:
        self._fresh()
        self.check_readable(allow_missing=True)
        if not self.store.exists("catalog"):
            return []  # an empty registry directory: nothing published yet
        try:
            return [n for n in self.store.listdir("catalog") if _SAFE.match(n)]
        except OSError as e:
            raise RegistryUnavailableError(f"registry {self.url} cannot be read: {e}") from e

    def versions(self, name: str) -> list[str]:
        """Committed versions of ``name``, oldest first."""
        entries = [self._read_entry(name, v) for v in self._version_names(name)]
        return [e.version for e in sorted(entries, key=lambda e: (e.created_at, e.version))]

    def _version_names(self, name: str) -> list[str]:
        files = self.store.listdir("catalog", name)
        return [f[: -len(".json")] for f in files if f.endswith(".json") and ".tmp" not in f]

    def entries(self) -> list[Entry]:
        out = [self._read_entry(n, v) for n in self.names() for v in self._version_names(n)]
        return sorted(out, key=lambda e: (e.name, e.created_at, e.version))

    def _read_entry(self, name: str, version: str) -> Entry:
        rel = f"catalog/{name}/{version}.json"
        try:
            raw = json.loads(self.store.read_bytes(rel))
            return Entry(**raw)
        except FileNotFoundError:
            raise
        except (ValueError, TypeError) as e:
            raise ManifestError(f"{self.store.url_of(rel)}: malformed catalog entry ({e})") from e

    def entry(self, ref: str) -> Entry:
        """The entry for ``name@version`` (or the newest version of ``name``)."""
        name, version = parse_ref(ref)
        names = self.names()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            if not names and not self.store.exists():
                hint = " (the registry does not exist: a mistyped path?)"
            raise UnknownDatasetError(
                f"no dataset {name!r} in registry {self.url}{hint} (datasets: {names})"
            )
        versions = self.versions(name)
        if version is None:
            if not versions:
                raise UnknownDatasetError(f"dataset {name!r} has no committed version")
            version = versions[-1]
        if version not in versions:
            close = difflib.get_close_matches(version, versions, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(name + '@' + c for c in close)}?" if close else ""
            raise UnknownDatasetError(
                f"dataset {name!r} has no version {version!r}{hint} (versions: {versions})"
            )
        return self._read_entry(name, version)

    def exists(self, ref: str) -> bool:
        name, version = parse_ref(ref, require_version=True)
        self._fresh()
        return self.store.exists(f"catalog/{name}/{version}.json")

    # -- locating the files -------------------------------------------------------------
    def dataset_store(self, entry: Entry) -> Store:
        if "://" in entry.location or entry.location.startswith("/"):
            return open_store(entry.location, self.storage_options)
        return self.store.child(entry.location)

    def manifest(self, entry_or_ref: Entry | str) -> Manifest:
        """The manifest of a committed dataset, checked against its catalog entry's hash."""
        entry = self.entry(entry_or_ref) if isinstance(entry_or_ref, str) else entry_or_ref
        store = self.dataset_store(entry)
        try:
            data = store.read_bytes("manifest.json")
        except FileNotFoundError:
            raise DatasetMissingError(
                f"registry entry {entry.ref} points to {store.url}, which holds no "
                "manifest.json (the dataset was moved or deleted)"
            ) from None
        if sha256_bytes(data) != entry.manifest_sha256:
            raise DatasetMissingError(
                f"{store.url_of('manifest.json')}: sha256 differs from the one recorded in "
                f"the registry entry {entry.ref}: the manifest was altered"
            )
        return Manifest.from_json(data, store.url_of("manifest.json"))

    # -- writing --------------------------------------------------------------------------
    def staging(self, name: str, version: str, token: str) -> tuple[Store, str]:
        """(store, location) of a fresh, uncommitted prefix for ``name@version``."""
        check_name("dataset name", name)
        check_name("dataset version", version)
        location = f"datasets/{name}/{version}-{token}"
        if self.store.exists(location):
            raise FileExistsError(f"{self.store.url_of(location)} already exists")
        return self.store.child(location), location

    def commit(self, entry: Entry) -> None:
        """Publish ``entry``: exactly one committer of a name/version wins."""
        try:
            create_exclusive(
                self.store, f"catalog/{entry.name}/{entry.version}.json", entry.to_json()
            )
        except FileExistsError:
            raise DatasetExistsError(
                f"{entry.ref} is already published in {self.url}; versions are immutable, "
                "publish under a new version"
            ) from None
