"""The dataset manifest: what a published ``name/version`` holds, byte for byte.

``manifest.json`` sits at the top of a dataset directory::

    {
      "format": "videomine-dataset/1",
      "name": "...", "version": "...", "owner": "...", "created_at": "ISO-8601 UTC",
      "description": "...",
      "code_version": "git sha of the producing code",
      "input_url_list_sha256": "sha256 of the URL list the run mined, or null",
      "parents": ["name@version", ...],
      "licences": {"cc-by": 12, ...},             # videos per licence (``videos`` table)
      "tables": {"pairs": {"schema_name": "pairs", "schema_version": 1, "description",
                           "schema": [{"name", "type", "nullable"}, ...],
                           "schema_ipc": "base64 arrow IPC schema",
                           "rows": N, "bytes": B,
                           "files": [{"path", "sha256", "bytes", "rows"}, ...]}},
      "files": [{"path", "sha256", "bytes", "rows": null}, ...],   # README.md, card/*.png
      "sources": [{"task_family", "task_id", "dir", "params", "code_version", "counts",
                   "wall_s"}, ...],                 # the stage outputs it was built from
      "config": {"TaskFamily": {param: value}},    # the full configuration of the run
      "counts": {"TaskFamily": {counter: n}},      # funnel per stage (summed over shards)
      "pair_types": {"intra": n, "inter": n, ...}
    }

Paths in the manifest are relative to the dataset directory and use ``/``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

FORMAT = "videomine-dataset/1"

__all__ = ["FORMAT", "FileEntry", "Manifest", "ManifestError", "TableEntry"]


class ManifestError(ValueError):
    """A manifest that cannot be parsed or does not describe a dataset."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    bytes: int
    rows: int | None = None


@dataclass(frozen=True)
class TableEntry:
    schema_name: str
    schema_version: int
    schema: list[dict[str, Any]]
    schema_ipc: str
    rows: int
    bytes: int
    files: list[FileEntry]
    description: str = ""

    def arrow_schema(self) -> pa.Schema:
        """The exact arrow schema (with its metadata) the files were written with."""
        buf = pa.py_buffer(base64.b64decode(self.schema_ipc))
        return pa.ipc.read_schema(buf)

    @staticmethod
    def describe(schema: pa.Schema) -> tuple[list[dict[str, Any]], str]:
        """(human-readable field list, base64 IPC serialisation) of ``schema``."""
        fields = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
        ipc = base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
        return fields, ipc


@dataclass
class Manifest:
    name: str
    version: str
    owner: str
    created_at: str
    description: str
    code_version: str | None
    input_url_list_sha256: str | None
    parents: list[str]
    licences: dict[str, int]
    tables: dict[str, TableEntry]
    files: list[FileEntry] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    pair_types: dict[str, int] = field(default_factory=dict)
    format: str = FORMAT

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def all_files(self) -> list[FileEntry]:
        """Every file the dataset holds besides ``manifest.json``."""
        out = [f for t in self.tables.values() for f in t.files]
        return out + list(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.all_files())

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True, default=str) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, source: str = "manifest.json") -> Manifest:
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"{source}: not valid JSON ({e})") from e
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ManifestError(f"{source}: format {got!r} is not {FORMAT!r}")
        try:
            tables = {
                name: TableEntry(
                    **{k: v for k, v in t.items() if k != "files"},
                    files=[FileEntry(**f) for f in t["files"]],
                )
                for name, t in raw.pop("tables").items()
            }
            files = [FileEntry(**f) for f in raw.pop("files", [])]
            return cls(tables=tables, files=files, **raw)
        except (KeyError, TypeError) as e:
            raise ManifestError(f"{source}: malformed manifest ({e})") from e
