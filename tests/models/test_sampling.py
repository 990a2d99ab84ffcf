"""Global batches: equal per rank, union == single process, weights respected, resumable."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.sampling import GlobalBatchSampler, weighted_order


def test_ranks_split_the_single_process_batch_exactly() -> None:
    w = np.ones(103)
    single = GlobalBatchSampler(w, 10, seed=3, n_steps=25)
    ranks = [GlobalBatchSampler(w, 10, r, 2, seed=3, n_steps=25) for r in range(2)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 25
    for s, r0, r1 in zip(single, ranks[0], ranks[1], strict=True):
        assert len(r0) == len(r1) == 5
        assert r0 + r1 == s


def test_epochs_are_permutations_and_drop_the_tail() -> None:
    sampler = GlobalBatchSampler(np.ones(23), 5, seed=0)
    assert sampler.batches_per_epoch == 4
    epoch0 = [r for b in itertools.islice(iter(sampler), 4) for r, _ in b]
    assert len(set(epoch0)) == 20  # distinct rows: drawn without replacement
    seeds = [s for b in itertools.islice(iter(sampler), 8) for _, s in b]
    assert len(set(seeds)) == len(seeds)  # every sample of every epoch has its own seed


def test_zero_weight_rows_never_appear_and_weights_bias_the_draw() -> None:
    w = np.array([0.0] * 10 + [1.0] * 10 + [10.0] * 10)
    order = weighted_order(w, 10, seed=1)
    assert (order >= 10).all()
    counts = np.zeros(30)
    for seed in range(200):
        counts[weighted_order(w, 5, seed)] += 1
    assert counts[20:].sum() > 3 * counts[10:20].sum()


def test_resume_continues_the_same_sequence() -> None:
    w = np.ones(50)
    full = list(GlobalBatchSampler(w, 8, seed=2, n_steps=15))
    tail = list(GlobalBatchSampler(w, 8, seed=2, start_step=9, n_steps=15))
    assert tail == full[9:]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="not divisible by world size"):
        GlobalBatchSampler(np.ones(10), 5, 0, 2)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        GlobalBatchSampler(np.ones(3), 5)
    with pytest.raises(ValueError, match="non-negative"):
        GlobalBatchSampler(np.array([1.0, -1.0]), 1)
