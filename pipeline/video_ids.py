"""Stable, file-name-safe video ids and URL normalisation.

- A **given** id (the list's ``video_id`` column) is used verbatim when it is safe as a
  file name on every common file system and object store: 1-128 characters from
  ``[A-Za-z0-9._-]``, not starting with ``.`` or ``-``. Anything else (``/``, ``..``, spaces,
  control characters, ...) is **rejected** with the reason, never silently rewritten:
  sanitising would make two different ids collide (``a/b`` and ``a_b``).
- The **default** id is ``v`` + the first 16 hex digits of sha256 of the normalised URL:
  stable across runs and machines, 64 bits (a collision needs ~4e9 videos).
- URL normalisation (the id's input): scheme and host lower-cased, default ports and
  fragments dropped, ``file://`` and plain paths both become ``file://<path as written>``.
- Duplicate detection (:func:`duplicate_key`) uses the same normal form, except that a
  local path is resolved to the file it names (relative to the list file's directory,
  ``.``, ``..`` and symlinks resolved): ``a.mp4``, ``./a.mp4``, ``/list/dir/a.mp4`` and
  ``file:///list/dir/a.mp4`` are one video. Ids do not use it, so the id of a path is the
  same wherever the list lives.
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import urlsplit, urlunsplit

MAX_ID_LENGTH = 128  # well under every file system's 255-byte name limit, with suffixes
_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def url_scheme(url: str) -> str:
    """Lower-cased scheme; "" for a plain local path (a Windows drive letter is a path)."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    return m.group(1).lower() if m else ""


def normalise_url(url: str) -> str:
    """The canonical form of `url` that default ids hash (see :func:`duplicate_key`)."""
    u = url.strip()
    scheme = url_scheme(u)
    if scheme == "":
        return "file://" + u
    if scheme == "file":
        return "file://" + u[len("file://") :]
    parts = urlsplit(u)
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _local_path(url: str) -> str | None:
    """The path of a local URL (plain path or ``file://``) as written; None when remote."""
    scheme = url_scheme(url)
    if scheme == "":
        return url
    return url[len("file://") :] if scheme == "file" else None


def resolve_local(url: str, base_dir: str) -> str:
    """Where a list entry is read from: a relative local path (plain or ``file://``) joined
    to ``base_dir`` (the list file's directory); any other URL unchanged."""
    path = _local_path(url.strip())
    if path is None or os.path.isabs(os.path.expanduser(path)):
        return url
    return os.path.join(base_dir, path)


def duplicate_key(url: str, base_dir: str | None = None) -> str:
    """The key under which two list entries are the same video.

    Remote URLs: :func:`normalise_url`. Local paths, with ``base_dir`` given: ``file://`` +
    the absolute, resolved path of the file (:func:`resolve_local`, then ``~``, ``.``,
    ``..`` and symlinks resolved), so every spelling of one file gives one key. Without
    ``base_dir``: :func:`normalise_url` (the path as written).
    """
    u = url.strip()
    path = _local_path(u)
    if base_dir is None or path is None:
        return normalise_url(u)
    # as resolve_local: join keeps an absolute (or ~) path and puts a relative one in base_dir
    return "file://" + os.path.realpath(os.path.join(base_dir, os.path.expanduser(path)))


def default_video_id(url: str) -> str:
    """``v`` + 16 hex digits of sha256(normalised url)."""
    return "v" + hashlib.sha256(normalise_url(url).encode()).hexdigest()[:16]


def id_problem(video_id: str) -> str | None:
    """Why `video_id` is not a safe file name, or None when it is."""
    if not video_id:
        return "video_id is empty"
    if len(video_id) > MAX_ID_LENGTH:
        return f"video_id is {len(video_id)} characters long (max {MAX_ID_LENGTH})"
    if "/" in video_id or "\\" in video_id:
        return f"video_id {video_id!r} contains a path separator"
    if ".." in video_id:
        return f"video_id {video_id!r} contains '..'"
    if any(c.isspace() for c in video_id):
        return f"video_id {video_id!r} contains whitespace"
    if any(ord(c) < 32 or ord(c) == 127 for c in video_id):
        return f"video_id {video_id!r} contains control characters"
    if not _SAFE.fullmatch(video_id):
        bad = sorted({c for c in video_id if not _SAFE.fullmatch(c)})
        return f"video_id {video_id!r} contains {bad}; allowed: letters, digits, '.', '_', '-'"
    if video_id[0] in ".-":
        return f"video_id {video_id!r} starts with {video_id[0]!r}"
    return None
