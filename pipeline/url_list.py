"""The input list of videos: CSV, Parquet or plain text, validated before any work starts.

Columns: ``url`` (required), ``video_id`` and ``licence`` (optional). A text file has one
URL per line (blank lines and ``#`` comments skipped). A UTF-8 byte-order mark (as
Excel and Notepad write) is accepted. Every problem is a :class:`UrlListError` naming the
file and the line (1-based, as an editor shows it), among them a column named twice and a
row that repeats the header (its url is ``url``: two lists pasted together).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

__all__ = ["UrlEntry", "UrlListError", "list_digest", "read_url_list", "shard_slice"]

COLUMNS = ("url", "video_id", "licence")


class UrlListError(ValueError):
    """A malformed URL list: names the file, the line and the reason."""


@dataclass(frozen=True)
class UrlEntry:
    """One line of the list. ``line`` is the 1-based line (or row) it came from."""

    url: str
    video_id: str | None
    licence: str | None
    line: int


def _entry(path: Path, line: int, url: object, vid: object, lic: object) -> UrlEntry:
    u = "" if url is None else str(url).strip()
    if not u:
        raise UrlListError(f"{path}:{line}: empty url")
    if u.split(",")[0].strip().lower() == "url":
        raise UrlListError(
            f"{path}:{line}: looks like a header line ({u!r}), not a video; remove it "
            "(a CSV list has one header, on line 1; a text list has none)"
        )
    if any(c in u for c in "\r\n\t") or " " in u:
        raise UrlListError(f"{path}:{line}: url {u!r} contains whitespace")
    v = None if vid is None or str(vid).strip() == "" else str(vid).strip()
    li = None if lic is None or str(lic).strip() == "" else str(lic).strip()
    return UrlEntry(u, v, li, line)


def _read_csv(path: Path, text: str) -> list[UrlEntry]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return []
    if "url" not in header:
        raise UrlListError(f"{path}:1: CSV header {header} has no 'url' column")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise UrlListError(f"{path}:1: CSV header {header} names {twice} more than once")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise UrlListError(f"{path}:1: unknown columns {unknown}; allowed: {list(COLUMNS)}")
    idx = {h: i for i, h in enumerate(header)}
    out = []
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise UrlListError(
                f"{path}:{line}: {len(row)} fields, header has {len(header)} ({header})"
            )

        def get(k: str, row: list[str] = row) -> str | None:
            return row[idx[k]] if k in idx else None

        out.append(_entry(path, line, get("url"), get("video_id"), get("licence")))
    return out


def _read_text(path: Path, text: str) -> list[UrlEntry]:
    out = []
    for i, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        out.append(_entry(path, i, s, None, None))
    return out


def read_url_list(path: str | Path) -> list[UrlEntry]:
    """Read and validate the list at ``path`` (format from the suffix: .csv, .parquet,
    anything else is text). Raises :class:`UrlListError` on any malformed line."""
    p = Path(path)
    if not p.is_file():
        raise UrlListError(f"{p}: video list not found")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            names = pq.read_schema(p).names
            twice = sorted({n for n in names if names.count(n) > 1})
            table = None if twice else pq.read_table(p)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            raise UrlListError(f"{p}: not a readable Parquet file: {e}") from e
        if table is None:
            raise UrlListError(f"{p}: Parquet list has columns {twice} more than once")
        if "url" not in names:
            raise UrlListError(f"{p}: Parquet list has no 'url' column (columns: {names})")
        unknown = [n for n in names if n not in COLUMNS]
        if unknown:
            raise UrlListError(f"{p}: unknown columns {unknown}; allowed: {list(COLUMNS)}")
        cols = {
            k: table.column(k).to_pylist() if k in names else [None] * table.num_rows
            for k in COLUMNS
        }
        entries = [
            _entry(p, i + 1, cols["url"][i], cols["video_id"][i], cols["licence"][i])
            for i in range(table.num_rows)
        ]
    else:
        try:
            text = p.read_text(encoding="utf-8-sig")  # -sig: drops a leading BOM
        except UnicodeDecodeError as e:
            raise UrlListError(f"{p}: not UTF-8 text ({e})") from e
        entries = _read_csv(p, text) if suffix == ".csv" else _read_text(p, text)
    return entries


def shard_slice(n_entries: int, per_shard: int, shard: int) -> slice:
    """The rows of ``shard``: contiguous blocks of ``per_shard`` entries in list order."""
    if per_shard < 1:
        raise ValueError(f"videos_per_shard must be >= 1, got {per_shard}")
    n_shards = max(1, -(-n_entries // per_shard))
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range: the list has {n_shards} shard(s)")
    return slice(shard * per_shard, min(n_entries, (shard + 1) * per_shard))


def list_digest(entries: list[UrlEntry]) -> str:
    """sha256 over the entries' (url, video_id, licence): identifies the input exactly."""
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.url}\t{e.video_id or ''}\t{e.licence or ''}\n".encode())
    return h.hexdigest()
