"""Losses against hand-computed cases: values, gradients, negative selection."""

from __future__ import annotations

import math

import pytest
import torch

from models.methods.context import context_loss
from models.methods.masks import IGNORE, trimap_loss
from models.methods.ranking import (
    RankingLossConfig,
    ranking_loss,
    select_negatives,
    valid_negatives,
)


def _unit(deg: float) -> list[float]:
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


def test_ranking_loss_value_and_gradient_by_hand() -> None:
    # 2 pairs, 2-d embeddings at known angles; parents differ, so each pair's negatives are
    # the other pair's two sides. With k = 1 and the hard phase, pair 0 (anchor at 0 deg,
    # positive at 60 deg: cos 0.5) picks the most violating of {90 deg (cos 0), 30 deg
    # (cos 0.866)}: 30 deg, hinge = 0.866 - 0.5 + 0.5 = 0.866.
    # Pair 1 (anchor 90, positive 30: cos 0.5) against {0 (cos 0), 60 (cos 0.866)}: 60 deg,
    # hinge = 0.866. Loss = mean = 0.866.
    a = torch.tensor([_unit(0), _unit(90)], requires_grad=True)
    p = torch.tensor([_unit(60), _unit(30)], requires_grad=True)
    parent = torch.tensor([0, 1])
    video = torch.tensor([0, 1])
    cfg = RankingLossConfig(margin=0.5, k=1)
    loss, st = ranking_loss(a, p, parent, video, cfg, "hard", torch.Generator().manual_seed(0))
    c30 = math.cos(math.radians(30))
    assert loss.item() == pytest.approx(c30, abs=1e-6)
    assert st.n_triplets == 2 and st.active_hinges == 1.0
    assert st.pos_cos == pytest.approx(0.5, abs=1e-6)
    assert st.neg_cos == pytest.approx(c30, abs=1e-6)
    loss.backward()
    # d/da0 of 0.5 * [cos(a0, p1) - cos(a0, p0)] for unit a0: the part of (p1 - p0) orthogonal
    # to a0, over the norm 1 of a0, times 0.5.
    a0, p0, p1 = (torch.tensor(_unit(d), dtype=torch.float64) for d in (0, 60, 30))
    diff = p1 - p0
    expected = 0.5 * (diff - (diff @ a0) * a0)
    torch.testing.assert_close(a.grad[0].double(), expected, atol=1e-6, rtol=0)
    # p0 (60 deg) is pair 0's positive (-cos(a0, p0)/2) and pair 1's chosen negative
    # (+cos(a1, p0)/2)
    a1 = torch.tensor(_unit(90), dtype=torch.float64)
    expected_p0 = -0.5 * (a0 - (a0 @ p0) * p0) + 0.5 * (a1 - (a1 @ p0) * p0)
    torch.testing.assert_close(p.grad[0].double(), expected_p0, atol=1e-6, rtol=0)


def test_inactive_hinges_give_zero_loss_and_gradient() -> None:
    a = torch.tensor([_unit(0), _unit(180)], requires_grad=True)
    p = torch.tensor([_unit(1), _unit(181)], requires_grad=True)
    loss, st = ranking_loss(
        a, p, torch.tensor([0, 1]), torch.tensor([0, 1]), RankingLossConfig(0.5, 2), "hard",
        torch.Generator(),
    )  # fmt: skip
    assert loss.item() == 0.0 and st.active_hinges == 0.0
    loss.backward()
    assert a.grad is not None and float(a.grad.abs().max()) == 0.0


def test_valid_negatives_rules() -> None:
    # pairs 0, 1 share parent 5; pair 2 has parent 7; pairs 3, 4 have no parent, videos 9, 9.
    parent = torch.tensor([5, 5, 7, -1, -1])
    video = torch.tensor([1, 2, 3, 9, 9])
    v = valid_negatives(parent, video)[:, :5]
    assert v.shape == (5, 5)
    assert not v[0, 1] and not v[1, 0]  # same parent: never
    assert v[0, 2] and v[2, 0]  # other parent
    assert not v[3, 4] and not v[4, 3]  # no parent, same video: never
    assert v[3, 0] and v[0, 3]  # no parent on one side: videos differ
    assert not v.diagonal().any()


def test_hard_selection_picks_exactly_the_top_k_valid_and_never_same_parent() -> None:
    g = torch.Generator().manual_seed(0)
    n = 6
    parent = torch.tensor([0, 0, 1, 1, 2, 2])
    video = torch.arange(n)
    losses = torch.rand(n, 2 * n, generator=g)
    # make same-parent candidates the most violating: they must still never be picked
    valid = valid_negatives(parent, video)
    losses = torch.where(valid, losses, losses + 10.0)
    cols, real = select_negatives(losses, valid, 4, "hard", g)
    assert real.all()
    for i in range(n):
        cand = [j for j in range(2 * n) if valid[i, j]]
        expected = sorted(cand, key=lambda j: -float(losses[i, j]))[:4]
        assert cols[i].tolist() == expected
        assert all(int(parent[j % n]) != int(parent[i]) for j in cols[i].tolist())


def test_random_selection_only_valid_and_marks_missing() -> None:
    parent = torch.tensor([0, 0, 0, 1])  # pair 3's only valid candidates: 6 sides of 0..2
    valid = valid_negatives(parent, torch.arange(4))
    cols, real = select_negatives(torch.zeros(4, 8), valid, 4, "random", torch.Generator())
    for i in range(4):
        for j, ok in zip(cols[i].tolist(), real[i].tolist(), strict=True):
            assert ok == bool(valid[i, j])
    assert real[3].all()  # 6 valid >= k
    assert real[0].sum() == 2  # only pair 3's two sides
    with pytest.raises(KeyError, match="random, hard"):
        select_negatives(torch.zeros(4, 8), valid, 4, "semi", torch.Generator())


def test_pairs_without_any_negative_contribute_nothing() -> None:
    a = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    loss, st = ranking_loss(
        a, a + 0.1, torch.tensor([2, 2, 2]), torch.tensor([0, 1, 2]), RankingLossConfig(), "hard",
        torch.Generator(),
    )  # fmt: skip
    assert st.n_triplets == 0 and st.pairs_without_negative == 3 and loss.item() == 0.0


def test_trimap_loss_ignored_pixels_weigh_nothing() -> None:
    logits = torch.tensor([[[2.0, -1.0], [0.5, 100.0]]], requires_grad=True)
    tri = torch.tensor([[[1, 0], [IGNORE, IGNORE]]], dtype=torch.uint8)
    loss = trimap_loss(logits, tri)
    # mean of softplus(-2) (fg at logit 2) and softplus(-1) (bg at logit -1)
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[0, 1, 0] == 0 and logits.grad[0, 1, 1] == 0
    # d/dx softplus(-x) / 2 at x=2 is -sigmoid(-2) / 2
    assert float(logits.grad[0, 0, 0]) == pytest.approx(
        -torch.sigmoid(torch.tensor(-2.0)).item() / 2
    )
    all_ignored = trimap_loss(
        torch.zeros(1, 2, 2), torch.full((1, 2, 2), IGNORE, dtype=torch.uint8)
    )
    assert all_ignored.item() == 0.0
    with pytest.raises(ValueError, match="differ"):
        trimap_loss(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3, dtype=torch.uint8))


def test_context_loss_is_cross_entropy() -> None:
    logits = torch.zeros(2, 8)
    logits[0, 3] = 2.0
    loss, acc = context_loss(logits, torch.tensor([3, 5]))
    e2 = math.exp(2.0)
    expected = (-math.log(e2 / (e2 + 7)) + math.log(8)) / 2  # row 1 is uniform
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert acc == 0.5


def test_video_fallback_only_for_rows_without_another_parent() -> None:
    # pairs 0-2 share parent 4 (videos 0, 1, 1); pair 3 has parent 9 (video 2)
    parent = torch.tensor([4, 4, 4, 9])
    video = torch.tensor([0, 1, 1, 2])
    strict = valid_negatives(parent, video)[:, :4]
    assert strict[0].tolist() == [False, False, False, True]  # the parent rule is enough
    one_parent = torch.tensor([4, 4, 4, 4])
    assert not valid_negatives(one_parent, video).any()
    fb = valid_negatives(one_parent, video, video_fallback=True)[:, :4]
    assert fb.tolist() == [
        [False, True, True, True],
        [True, False, False, True],  # same video (pair 2) stays excluded
        [True, False, False, True],
        [True, True, True, False],
    ]
    # rows that have another-parent candidates keep the strict rule
    assert torch.equal(valid_negatives(parent, video, video_fallback=True)[0, :4], strict[0])
