"""Timing helpers shared by the ``bench_*`` modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(
    fn: Callable[[], Any], repeats: int = 3, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Smallest time of `repeats` runs (the machine is shared: spikes are not ours).

    ``clock=time.process_time`` measures the process's CPU time instead of wall time: for
    single-threaded code (cv2.setNumThreads(1), BLAS at 1 thread) it is the one-core cost
    even when other jobs share the cores."""
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best
