"""Timing helpers shared by the ``bench_*`` modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Smallest wall time of `repeats` runs (the machine is shared: spikes are not ours)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
