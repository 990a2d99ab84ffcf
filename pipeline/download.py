"""Getting a video's bytes: local paths, file://, http(s)://, yt-dlp sites, fsspec stores.

Routing (:func:`route`): a plain path or ``file://`` is read in place (never copied, never
deleted); ``http(s)://`` goes to yt-dlp when one of its site extractors (not the generic
one) claims the URL, else it is streamed with requests; a scheme fsspec knows (``s3://``,
``gs://``, ``memory://``, ...) is streamed through fsspec when its package is installed;
anything else is a permanent error.

HTTP downloads stream into ``<dest>.part`` with a connect and a read timeout (the read
timeout bounds a stall between bytes; ``total_timeout`` bounds a slow trickle), a size cap
checked against Content-Length and while streaming, resume through ``Range`` from an
existing ``.part`` (a server that ignores Range restarts the file), sha256 computed while
streaming, and an atomic rename when complete. Transient failures (connection errors,
timeouts, a body cut short, HTTP 408/425/429/5xx) are retried with exponential backoff
(``Retry-After`` honoured up to ``backoff_max``); permanent ones (other 4xx, too large,
unknown scheme, missing file) are not. Failures raise :class:`DownloadError` with
``retryable`` and ``attempts``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests
import urllib3

from pipeline.video_ids import url_scheme

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mts", ".m2ts",
    ".mpg", ".mpeg", ".wmv", ".ogv", ".3gp",
)  # fmt: skip
_TRANSIENT_HTTP = {408, 425, 429}  # plus every 5xx


@dataclass(frozen=True)
class DownloadConfig:
    connect_timeout: float = 10.0  # s to open a connection: generous for far-away hosts
    read_timeout: float = 30.0  # s without a byte before the attempt counts as stalled
    total_timeout: float = 3600.0  # s per attempt: a trickling server cannot hold a worker
    max_bytes: int = 4 * 1024**3  # 4 GiB cap: hours of 720p; larger is not web video
    retries: int = 3  # extra attempts for transient errors (4 in all)
    backoff: float = 2.0  # s before the first retry, doubled each time
    backoff_max: float = 60.0  # s: cap on one backoff (and on an honoured Retry-After)
    chunk_size: int = 1 << 20  # 1 MiB writes: few syscalls, bounded memory
    user_agent: str = "videomine/0.1 (+https://github.com/videomine)"
    proxy: str = ""  # http(s)/socks proxy URL for requests and yt-dlp; "" = none
    rate_limit: str = ""  # e.g. "2M" bytes/s for requests and yt-dlp; "" = unlimited
    cookies: str = ""  # cookies.txt (Netscape format) for yt-dlp; "" = none
    # one file with audio+video: merging separate streams would need an ffmpeg binary
    ytdlp_format: str = "best[ext=mp4][height<=720]/best[height<=720]/best"


class DownloadError(RuntimeError):
    """A download that failed: names the URL, the reason and whether a retry may help."""

    def __init__(self, url: str, reason: str, retryable: bool, attempts: int = 1) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.retryable, self.attempts = url, reason, retryable, attempts


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Permanent(Exception):
    pass


@dataclass(frozen=True)
class Downloaded:
    path: Path  # the local file (in place for local sources)
    n_bytes: int
    sha256: str
    attempts: int
    method: str  # "local" | "http" | "ytdlp" | "fsspec" | "cached"
    owned: bool  # True when the file was written by us (safe to delete later)


def parse_rate(rate: str) -> float | None:
    """ "2M" -> 2097152.0 bytes/s; "" -> None."""
    if not rate:
        return None
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgG]?)i?[bB]?\s*", rate)
    if not m:
        raise ValueError(f"rate_limit must look like '500K' or '2M', got {rate!r}")
    return float(m.group(1)) * 1024 ** " KMG".index(m.group(2).upper() or " ")


@functools.lru_cache(maxsize=1)
def _ytdlp_extractors() -> tuple[Any, ...]:
    from yt_dlp.extractor import gen_extractor_classes

    return tuple(ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic")


def route(url: str) -> str:
    """How `url` is fetched: "local", "http", "ytdlp" or "fsspec" (else DownloadError)."""
    scheme = url_scheme(url)
    if scheme in ("", "file"):
        return "local"
    if scheme in ("http", "https"):
        return "ytdlp" if any(ie.suitable(url) for ie in _ytdlp_extractors()) else "http"
    from fsspec.registry import known_implementations, registry

    if scheme in known_implementations or scheme in registry:
        return "fsspec"
    raise DownloadError(url, f"unknown URL scheme {scheme!r}", retryable=False)


def url_suffix(url: str) -> str:
    """A known video suffix taken from the URL path, else ".mp4" (never trusted blindly)."""
    path = re.split(r"[?#]", url, maxsplit=1)[0].lower()
    return next((s for s in VIDEO_SUFFIXES if path.endswith(s)), ".mp4")


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def _with_retries(url: str, cfg: DownloadConfig, sleep: Callable[[float], None], fn: Any) -> Any:
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except _Permanent as e:
            raise DownloadError(url, str(e), retryable=False, attempts=attempt) from e
        except _Transient as e:
            if attempt > cfg.retries:
                reason = f"{e} (gave up after {attempt} attempts)"
                raise DownloadError(url, reason, retryable=True, attempts=attempt) from e
            delay = min(cfg.backoff * 2 ** (attempt - 1), cfg.backoff_max)
            if e.retry_after is not None:
                delay = min(max(delay, e.retry_after), cfg.backoff_max)
            log.info("%s: attempt %d failed (%s); retrying in %.2fs", url, attempt, e, delay)
            sleep(delay)


def _stream(
    src: BinaryIO | Any, f: BinaryIO, h: Any, done: int, cfg: DownloadConfig, t0: float
) -> int:
    """Copy chunks from `src` (an iterator of bytes or a file) to `f`, hashing and capping."""
    rate = parse_rate(cfg.rate_limit)
    chunks = src if not hasattr(src, "read") else iter(lambda: src.read(cfg.chunk_size), b"")
    got = 0
    for chunk in chunks:
        f.write(chunk)
        h.update(chunk)
        got += len(chunk)
        if done + got > cfg.max_bytes:
            raise _Permanent(f"larger than the size cap max_bytes={cfg.max_bytes}")
        elapsed = time.monotonic() - t0
        if elapsed > cfg.total_timeout:
            raise _Transient(f"slower than total_timeout={cfg.total_timeout}s")
        if rate and got / rate > elapsed:
            time.sleep(got / rate - elapsed)
    return got


def _resume_state(part: Path) -> tuple[int, Any]:
    h = hashlib.sha256()
    if not part.exists():
        return 0, h
    with open(part, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return part.stat().st_size, h


def _http_once(url: str, part: Path, cfg: DownloadConfig, session: requests.Session) -> str:
    offset, h = _resume_state(part)
    headers = {"User-Agent": cfg.user_agent, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    t0 = time.monotonic()
    try:
        with session.get(
            url, stream=True, timeout=(cfg.connect_timeout, cfg.read_timeout), headers=headers
        ) as r:
            if r.status_code == 416 and offset:  # our .part is stale: start over
                part.unlink()
                raise _Transient("HTTP 416 on resume; restarting from byte 0")
            if r.status_code >= 400:
                reason = f"HTTP {r.status_code} {r.reason}"
                if r.status_code in _TRANSIENT_HTTP or r.status_code >= 500:
                    ra = r.headers.get("Retry-After", "")
                    raise _Transient(reason, float(ra) if ra.isdigit() else None)
                raise _Permanent(reason)
            if offset and r.status_code != 206:  # Range ignored: the body is the whole file
                offset, h = 0, hashlib.sha256()
            length = r.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if total is not None and total > cfg.max_bytes:
                raise _Permanent(f"{total} bytes, larger than the size cap {cfg.max_bytes}")
            # read1 returns what has arrived (<= chunk_size) and the .part is unbuffered:
            # a cut connection or a killed process loses nothing already received
            body = iter(lambda: r.raw.read1(cfg.chunk_size), b"")
            with open(part, "ab" if offset else "wb", buffering=0) as f:
                got = _stream(body, f, h, offset, cfg, t0)
            if total is not None and offset + got < total:
                raise _Transient(f"connection closed after {offset + got} of {total} bytes")
    except requests.exceptions.Timeout as e:
        raise _Transient(f"timed out ({type(e).__name__}: {e})") from e
    except (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError) as e:
        have = part.stat().st_size if part.exists() else 0
        raise _Transient(f"download cut off after {have} bytes ({e})") from e
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        # connection refused / reset (urllib3 errors come from raw reads)
        raise _Transient(f"{type(e).__name__}: {e}") from e
    return str(h.hexdigest())


def _fsspec_once(url: str, part: Path, cfg: DownloadConfig) -> str:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as e:
        reason = f"{url_scheme(url)}:// needs a package that is not installed: {e}"
        raise _Permanent(reason) from e
    offset, h = _resume_state(part)
    try:
        size = int(fs.size(path))
        if size > cfg.max_bytes:
            raise _Permanent(f"{size} bytes, larger than the size cap {cfg.max_bytes}")
        if offset > size:
            offset, h = 0, hashlib.sha256()
        with fs.open(path, "rb") as src, open(part, "ab" if offset else "wb", buffering=0) as f:
            src.seek(offset)
            got = _stream(src, f, h, offset, cfg, time.monotonic())
        if offset + got != size:
            raise _Transient(f"read {offset + got} of {size} bytes")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        raise _Permanent(f"{type(e).__name__}: {e}") from e
    except (OSError, TimeoutError, ConnectionError) as e:
        raise _Transient(f"{type(e).__name__}: {e}") from e
    return str(h.hexdigest())


def ytdlp_options(cfg: DownloadConfig, dest_stem: Path) -> dict[str, Any]:
    """yt-dlp options: our timeouts, cap and pass-through cookies / proxy / rate limit.
    yt-dlp's own retries are off: transient errors come back here and are retried."""
    opts: dict[str, Any] = {
        "outtmpl": f"{dest_stem}.%(ext)s",
        "format": cfg.ytdlp_format,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "retries": 0,
        "fragment_retries": 0,
        "socket_timeout": cfg.read_timeout,
        "max_filesize": cfg.max_bytes,
        "continuedl": True,
        "http_headers": {"User-Agent": cfg.user_agent},
    }
    if cfg.cookies:
        opts["cookiefile"] = cfg.cookies
    if cfg.proxy:
        opts["proxy"] = cfg.proxy
    if cfg.rate_limit:
        opts["ratelimit"] = parse_rate(cfg.rate_limit)
    return opts


_YTDLP_TRANSIENT = re.compile(
    r"timed out|[Cc]onnection|Temporary failure|reset by peer|IncompleteRead"
)


def _ytdlp_transient(msg: str) -> bool:
    """An HTTP status in yt-dlp's message decides; else network-error wording does."""
    m = re.search(r"HTTP Error (\d{3})", msg)
    if m:
        code = int(m.group(1))
        return code in _TRANSIENT_HTTP or code >= 500
    return bool(_YTDLP_TRANSIENT.search(msg))


def _ytdlp_once(url: str, dest_stem: Path, cfg: DownloadConfig) -> Path:
    import yt_dlp

    try:
        with yt_dlp.YoutubeDL(ytdlp_options(cfg, dest_stem)) as ydl:
            info = ydl.extract_info(url, download=True)
            done = (info or {}).get("requested_downloads") or [{}]
            path = Path(done[0].get("filepath") or ydl.prepare_filename(info))
    except yt_dlp.utils.DownloadError as e:
        msg = re.sub(r"^ERROR: ", "", str(e))
        raise (_Transient if _ytdlp_transient(msg) else _Permanent)(f"yt-dlp: {msg}") from e
    if not path.is_file():  # yt-dlp skips files over max_filesize without an error
        raise _Permanent(f"yt-dlp wrote no file (larger than max_bytes={cfg.max_bytes}?)")
    return path


def _source_note(path: Path) -> Path:
    return path.with_name(path.name + ".url")


def _cached(path: Path, url: str) -> bool:
    """A complete earlier download of the same URL (its ``.url`` note must match)."""
    note = _source_note(path)
    return path.is_file() and note.is_file() and note.read_text() == url


def download(
    url: str,
    dest_stem: Path,
    cfg: DownloadConfig,
    sleep: Callable[[float], None] = time.sleep,
) -> Downloaded:
    """Fetch `url`; remote files land at `dest_stem` + a suffix (".mp4" unless the URL path
    names another video suffix; yt-dlp picks its own). A complete file already there
    (from an earlier run) is reused. Raises DownloadError."""
    method = route(url)
    if method == "local":
        src = Path(url[len("file://") :] if url_scheme(url) == "file" else url).expanduser()
        if not src.is_file():
            reason = "is a directory" if src.is_dir() else "no such file"
            raise DownloadError(url, f"{src}: {reason}", retryable=False)
        digest, n = sha256_file(src)  # no size cap: the cap bounds downloads, not inputs
        return Downloaded(src.resolve(), n, digest, 1, "local", owned=False)
    dest_stem.parent.mkdir(parents=True, exist_ok=True)
    if method == "ytdlp":
        cached = sorted(dest_stem.parent.glob(f"{dest_stem.name}.*"))
        done = [p for p in cached if p.suffix.lower() in VIDEO_SUFFIXES]
        path, attempts = done[0] if done else None, 0
        if path is None:
            path, attempts = _with_retries(
                url, cfg, sleep, lambda: _ytdlp_once(url, dest_stem, cfg)
            )
        digest, n = sha256_file(path)
        return Downloaded(path, n, digest, attempts, "ytdlp" if attempts else "cached", True)
    dest = dest_stem.with_name(dest_stem.name + url_suffix(url))
    if _cached(dest, url):  # renamed into place only when complete
        digest, n = sha256_file(dest)
        return Downloaded(dest, n, digest, 0, "cached", owned=True)
    part = dest.with_name(dest.name + ".part")
    try:
        if method == "http":
            with requests.Session() as s:
                if cfg.proxy:
                    s.proxies.update({"http": cfg.proxy, "https": cfg.proxy})
                digest, attempts = _with_retries(
                    url, cfg, sleep, lambda: _http_once(url, part, cfg, s)
                )
        else:
            digest, attempts = _with_retries(url, cfg, sleep, lambda: _fsspec_once(url, part, cfg))
    except DownloadError as e:
        if not e.retryable:  # a transient failure keeps its .part for a later resume
            part.unlink(missing_ok=True)
        raise
    n = part.stat().st_size
    _source_note(dest).write_text(url)
    os.replace(part, dest)
    return Downloaded(dest, n, digest, attempts, method, owned=True)
