"""Deterministic global batches, split across ranks: every rank gets the same number.

The plan is a pure function of (seed, step): epoch ``e`` is a weighted draw *without
replacement* of ``epoch_size`` rows (Efraimidis-Spirakis keys ``u ** (1 / w)`` from a
generator seeded with (seed, e); rows of weight 0 never appear), cut into global batches of
``global_batch`` rows; the tail shorter than a batch is dropped (``drop_last``: the next epoch
reshuffles, so no row is dropped systematically). Global batch ``s`` is split into
``world_size`` equal contiguous slices, rank ``r`` taking slice ``r``: the union over ranks is
exactly the single-process batch, which is what makes a DDP run equal to one process.

With ``replacement`` an epoch is ``epoch_size`` independent weighted draws instead (a row may
come back; the knowledge-transfer student draws clusters uniformly so).

Each element is ``(row, sample_seed)``: datasets draw their jitter from ``sample_seed``, so a
resumed run sees the same crops as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

Item = tuple[int, int]


def weighted_order(
    weights: npt.NDArray[np.float64], size: int, seed: int, replace: bool = False
) -> npt.NDArray[np.int64]:
    """``size`` distinct rows drawn with probability proportional to ``weights``; with
    ``replace``, ``size`` independent draws (a row may repeat)."""
    rng = np.random.default_rng(seed)
    if replace:
        p = weights / weights.sum()
        return rng.choice(weights.shape[0], size, replace=True, p=p).astype(np.int64)
    u = rng.random(weights.shape[0])
    with np.errstate(divide="ignore"):
        keys = np.where(weights > 0, np.log(u) / np.where(weights > 0, weights, 1.0), -np.inf)
    order = np.argsort(-keys, kind="stable")[:size]
    return order.astype(np.int64)


class GlobalBatchSampler(Sampler[list[Item]]):
    """Yields this rank's slice of global batches ``start_step, start_step + 1, ...``.

    Infinite unless ``n_steps`` is given; ``len()`` is ``n_steps - start_step`` then.
    """

    def __init__(
        self,
        weights: npt.NDArray[np.float64],
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start_step: int = 0,
        n_steps: int | None = None,
        epoch_size: int | None = None,
        replacement: bool = False,
    ) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all():
            raise ValueError("weights must be a 1-D array of finite non-negative numbers")
        if global_batch % world_size:
            raise ValueError(
                f"global batch {global_batch} is not divisible by world size {world_size}: "
                "every rank must get the same number of samples"
            )
        usable = int((w > 0).sum())
        size = usable if epoch_size is None else min(epoch_size, usable)
        if size < global_batch:
            raise ValueError(
                f"an epoch has {size} usable rows (weight > 0), fewer than one global batch of "
                f"{global_batch}; lower batch_size or add data"
            )
        self.weights, self.global_batch = w, global_batch
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.start_step, self.n_steps = start_step, n_steps
        self.epoch_size = size
        self.replacement = replacement
        self.batches_per_epoch = size // global_batch
        self.local_batch = global_batch // world_size
        self._cache: tuple[int, npt.NDArray[np.int64]] | None = None

    def epoch_order(self, epoch: int) -> npt.NDArray[np.int64]:
        if self._cache is None or self._cache[0] != epoch:
            seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
            self._cache = (
                epoch,
                weighted_order(self.weights, self.epoch_size, seed, self.replacement),
            )
        return self._cache[1]

    def global_batch_at(self, step: int) -> list[Item]:
        """All rows of global batch ``step`` with their per-sample seeds."""
        epoch, pos = divmod(step, self.batches_per_epoch)
        rows = self.epoch_order(epoch)[pos * self.global_batch : (pos + 1) * self.global_batch]
        base = pos * self.global_batch
        return [
            (int(r), (self.seed * 1_000_003 + epoch) * 10_000_019 + base + i)
            for i, r in enumerate(rows)
        ]

    def batch_at(self, step: int) -> list[Item]:
        b = self.global_batch_at(step)
        return b[self.rank * self.local_batch : (self.rank + 1) * self.local_batch]

    def __iter__(self) -> Iterator[list[Item]]:
        step = self.start_step
        while self.n_steps is None or step < self.n_steps:
            yield self.batch_at(step)
            step += 1

    def __len__(self) -> int:
        if self.n_steps is None:
            raise TypeError("an infinite GlobalBatchSampler has no length")
        return max(self.n_steps - self.start_step, 0)
