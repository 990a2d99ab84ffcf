"""A scriptable HTTP server on 127.0.0.1 for download tests (no network beyond loopback).

Routes map a path to a behaviour ``fn(handler, hit)`` where ``hit`` counts requests to
that path from 1. Helpers build the usual ones: a file with Range support, an error
status, errors-then-success, a stall, a body cut short.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = Callable[[BaseHTTPRequestHandler, int], None]


class Server:
    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.hits: list[tuple[str, str | None]] = []  # (path, Range header)
        self.release = threading.Event()  # set at shutdown: stalled handlers return
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server._lock:
                    server.hits.append((path, self.headers.get("Range")))
                    n = sum(1 for p, _ in server.hits if p == path)
                fn = server.routes.get(path)
                if fn is None:
                    self.send_error(404, "Not Found")
                    return
                try:
                    fn(self, n)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.hits if p == path)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_bytes(data: bytes, ranges: bool = True, ctype: str = "video/mp4") -> Behaviour:
    """200 with the whole body, or 206 for a ``Range: bytes=N-`` request."""

    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        start = int(m.group(1)) if (m and ranges) else 0
        if start >= len(data) and m and ranges:
            h.send_response(416)
            h.send_header("Content-Range", f"bytes */{len(data)}")
            h.end_headers()
            return
        h.send_response(206 if start else 200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data) - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        h.wfile.write(data[start:])

    return fn


def status(code: int, headers: dict[str, str] | None = None) -> Behaviour:
    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return fn


def fail_then(first: Behaviour, times: int, then: Behaviour) -> Behaviour:
    """`first` for the first `times` requests, `then` afterwards."""
    return lambda h, hit: (first if hit <= times else then)(h, hit)


def stall(server: Server, seconds: float, head: bytes = b"") -> Behaviour:
    """Headers promising more, `head` bytes, then silence for `seconds` (or until shutdown)."""

    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(head) + 1000))
        h.end_headers()
        h.wfile.write(head)
        h.wfile.flush()
        server.release.wait(seconds)

    return fn


def cut(data: bytes, at: int) -> Behaviour:
    """Promise the whole file, send `at` bytes, close the connection."""

    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:at])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)

    return fn


def chunked(data: bytes) -> Behaviour:
    """No Content-Length: the body ends when the connection closes."""

    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data)
        h.close_connection = True

    return fn


def slow(data: bytes, seconds: float) -> Behaviour:
    """Wait `seconds`, then serve `data` (keeps a worker busy for a while)."""
    inner = serve_bytes(data)

    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        threading.Event().wait(seconds)
        inner(h, hit)

    return fn


def hold(data: bytes, at: int, gate: threading.Event, seconds: float = 60.0) -> Behaviour:
    """Promise `data`, send `at` bytes, then wait for `gate` (or `seconds`) before closing."""

    def fn(h: BaseHTTPRequestHandler, hit: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:at])
        h.wfile.flush()
        gate.wait(seconds)

    return fn
