"""Run one call in a child process, so that a native crash or hang costs that call only.

Native decoders trust what a file says: decord aborts the whole process (``std::bad_alloc``,
exit 134) on an AVI whose header claims 2**31-1 frames, and a crafted file can make a
decoder loop. :func:`call_isolated` runs ``fn(*args, **kwargs)`` in a child process and
returns its result or re-raises its exception; a child killed by a signal, or one that
exits without answering, raises :class:`ChildCrashed`; one that outlives ``timeout_s`` is
killed and raises :class:`ChildTimedOut`.

Children are started by the ``forkserver`` method: forking the caller (a Luigi worker with
threads) could copy a lock another thread holds; ``spawn`` would re-import the caller's
main module and every library per call. The fork server is started once per process and
imports ``preload`` (module names) before it forks children, so each call costs a fork
instead of the imports (~0.2 s for ``pipeline.video_io``). ``fn`` and its arguments and
result must be picklable.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")


class ChildCrashed(RuntimeError):
    """The child died without an answer; ``how`` says how (signal or exit code)."""

    def __init__(self, what: str, how: str) -> None:
        super().__init__(f"{what}: the child process died ({how})")
        self.how = how


class ChildTimedOut(RuntimeError):
    """The child did not answer within the time limit and was killed."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}, exit {128 - code}"
    return f"exit code {code} without an answer"


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], kw: Any) -> None:
    try:
        result: tuple[str, Any] = ("ok", fn(*args, **kw))
    except Exception as e:  # any error of the call travels back to the caller
        e.add_note("raised in the child process:\n" + "".join(traceback.format_exception(e)))
        result = ("error", e)
    try:
        conn.send(result)
    except Exception as e:  # an unpicklable exception or result: send its text
        conn.send(("error", RuntimeError(f"{type(e).__name__}: {e} (sending {result[1]!r})")))
    conn.close()


def call_isolated(
    fn: Callable[..., T],
    *args: Any,
    timeout_s: float,
    what: str = "call",
    preload: Sequence[str] = (),
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)`` run in a child process (see the module docstring).

    ``what`` names the work in error messages (e.g. the file being probed); ``preload``
    takes effect when this call starts the process's fork server (the first call). Raises
    what ``fn`` raised, :class:`ChildCrashed` or :class:`ChildTimedOut`.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    ctx = multiprocessing.get_context("forkserver")  # see the module docstring
    if preload:
        ctx.set_forkserver_preload(list(preload))  # no effect once the server runs
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, kwargs), daemon=True)
    proc.start()
    send.close()  # the child holds the only write end: EOF when it dies
    try:
        if not recv.poll(timeout_s):
            proc.kill()
            proc.join()
            raise ChildTimedOut(f"{what}: no answer within {timeout_s:g} s; the child was killed")
        try:
            status, value = recv.recv()
        except EOFError:
            proc.join()
            raise ChildCrashed(what, _describe_exit(proc.exitcode)) from None
    finally:
        recv.close()
    proc.join(timeout_s)  # it answered: it is returning
    if proc.is_alive():
        proc.kill()
        proc.join()
    if status == "error":
        raise value
    return value
