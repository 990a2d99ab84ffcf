"""Ranking (Triplet-Siamese) method: network, loss with in-batch negatives, step.

Network ``RankingNet``: trunk -> flatten pool5 -> fc 4096 -> ReLU -> fc 1024 (Wang & Gupta
2015/2017); (N, 1024) unnormalised embeddings, the loss uses cosine distance. Its batch
builder (positive pairs over the manifests) is ``models.methods.ranking_pairs``.

Ranking (Wang & Gupta 2015; Wang, He & Gupta 2017)::

    l(X, X+, X-) = max(0, D(X, X+) - D(X, X-) + margin),   D(a, b) = 1 - cos(a, b)

For pair i the negative candidates are both sides of every other pair j in the batch whose
*negative key* differs: when both pairs carry a parent cluster id, parent_i != parent_j;
otherwise (an intra pair without a parent) video_i != video_j. Phase ``"random"`` takes up to
K valid candidates at random, phase ``"hard"`` the K with the highest loss (K = 4). The loss
is the mean over the selected triplets.

Selection is computed on the *global* batch (every rank can gather the embeddings) with a
seeded generator, so all ranks pick identical triplets and each rank only back-propagates
the rows of its own anchors; see ``ranking_loss(anchor_rows=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import dist
from models.methods.base import Method, MethodData, flat_dim, init_linears
from models.steps import StepContext, to_input
from models.trunks import build_trunk

if TYPE_CHECKING:
    from models.config import TrainConfig


@dataclass(frozen=True)
class RankingLossConfig:
    margin: float = 0.5  # both papers
    k: int = 4  # negatives per pair (Wang & Gupta 2015: top K = 4 in the hard phase)
    # A pair with no candidate from another parent in the batch (a run with one parent
    # cluster, say) falls back to other videos' candidates. Off: the papers' rule.
    video_fallback: bool = False


@dataclass
class RankingStats:
    """Collapse monitor over the selected triplets of the global batch (floats)."""

    loss: float
    active_hinges: float  # share of selected triplets with a positive hinge
    pos_cos: float  # mean cos(X, X+) over pairs
    neg_cos: float  # mean cos(X, X-) over selected triplets
    n_triplets: int
    pairs_without_negative: int


def valid_negatives(
    parent: torch.Tensor, video: torch.Tensor, video_fallback: bool = False
) -> torch.Tensor:
    """(B,) int64 parent ids (-1 = none) and video codes -> (B, 2B) bool candidate mask.

    Column j and j + B are pair j's two sides. Valid when both pairs have a parent and the
    parents differ, or when either lacks one and the videos differ. Never the pair itself.
    ``video_fallback``: a row left without any candidate takes every other-video pair.
    """
    if parent.shape != video.shape or parent.ndim != 1:
        raise ValueError(f"parent and video must be (B,), got {parent.shape} {video.shape}")
    both = (parent[:, None] >= 0) & (parent[None, :] >= 0)
    differ = torch.where(both, parent[:, None] != parent[None, :], video[:, None] != video[None, :])
    differ.fill_diagonal_(False)
    if video_fallback:
        other_video = video[:, None] != video[None, :]
        empty = ~differ.any(dim=1, keepdim=True)
        differ = torch.where(empty, other_video, differ)
        differ.fill_diagonal_(False)
    return torch.cat([differ, differ], dim=1)


def select_negatives(
    losses: torch.Tensor, valid: torch.Tensor, k: int, phase: str, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick up to ``k`` candidates per row: (B, k) column ids and (B, k) bool "is real" mask.

    ``hard``: the k valid candidates with the highest ``losses`` (pass the unclamped margin
    violation, so inactive candidates are ranked by how close they are to becoming active);
    ``random``: k valid candidates uniformly at random (from ``generator``, on CPU).
    """
    if phase not in ("random", "hard"):
        raise KeyError(f"unknown negative phase {phase!r}; valid: random, hard")
    k = min(k, valid.shape[1])
    if phase == "hard":
        score = losses.detach().float()
    else:
        score = torch.rand(valid.shape, generator=generator).to(valid.device)
    score = score.masked_fill(~valid, float("-inf"))
    cols = torch.topk(score, k, dim=1, sorted=True).indices
    real = torch.gather(valid, 1, cols)
    return cols, real


def ranking_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    parent: torch.Tensor,
    video: torch.Tensor,
    cfg: RankingLossConfig,
    phase: str,
    generator: torch.Generator,
    anchor_rows: slice | None = None,
    scale: float = 1.0,
) -> tuple[torch.Tensor, RankingStats]:
    """Ranking loss over a batch of B pairs, (B, E) embeddings each.

    Returns the loss to back-propagate and the global stats. With ``anchor_rows`` only those
    pairs' triplets enter the returned loss (a DDP rank's own pairs); it is then their sum
    divided by the *global* triplet count, times ``scale`` (the world size, so that DDP's
    gradient averaging recovers the single-process gradient).
    """
    if anchor.shape != positive.shape or anchor.ndim != 2:
        raise ValueError(f"anchor/positive must be (B, E), got {anchor.shape} {positive.shape}")
    a = F.normalize(anchor.float(), dim=1)
    p = F.normalize(positive.float(), dim=1)
    cand = torch.cat([a, p], dim=0)  # (2B, E)
    pos_cos = (a * p).sum(1)  # (B,)
    neg_cos_all = a @ cand.T  # (B, 2B)
    # D(X,X+) - D(X,X-) = cos(X,X-) - cos(X,X+)
    violation = neg_cos_all - pos_cos[:, None] + cfg.margin
    hinge = torch.relu(violation)
    valid = valid_negatives(parent, video, cfg.video_fallback)
    cols, real = select_negatives(violation, valid, cfg.k, phase, generator)
    chosen = torch.gather(hinge, 1, cols)  # (B, k)
    weights = real.float()
    n_triplets = int(real.sum())
    denom = max(n_triplets, 1)
    rows = torch.arange(anchor.shape[0], device=anchor.device)
    own = torch.zeros_like(weights)
    own[rows[anchor_rows] if anchor_rows is not None else rows] = 1.0
    loss = (chosen * weights * own).sum() / denom * scale
    with torch.no_grad():
        chosen_cos = torch.gather(neg_cos_all, 1, cols)
        stats = RankingStats(
            loss=float((chosen * weights).sum() / denom),
            active_hinges=float(((chosen > 0).float() * weights).sum() / denom),
            pos_cos=float(pos_cos.mean()),
            neg_cos=float((chosen_cos * weights).sum() / denom),
            n_triplets=n_triplets,
            pairs_without_negative=int((~real.any(dim=1)).sum()),
        )
    return loss, stats


@dataclass(frozen=True)
class RankingNetConfig:
    trunk: str = "vgg16"  # 2017 paper's trunk; "alexnet" for the 2015 method
    trunk_options: dict[str, Any] = field(default_factory=dict)  # fields of the trunk config
    input_size: int = 96  # patch side: mined patches are 96x96 (2017 paper)
    hidden: int = 4096  # fc6 width (both papers)
    embed_dim: int = 1024  # fc7 width: the ranking embedding (both papers)
    dropout: float = 0.0  # not in the ranking papers' description; 0 keeps DDP == 1 process


class EmbeddingHead(nn.Module):
    """(N, C, h, w) pool5 -> (N, embed_dim): fc hidden -> ReLU -> [dropout] -> fc embed."""

    def __init__(self, in_features: int, hidden: int, embed_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc7 = nn.Linear(hidden, embed_dim)

    def forward(self, pool5: torch.Tensor) -> torch.Tensor:
        return self.fc7(self.drop(self.relu(self.fc6(pool5.flatten(1)))))


class RankingNet(nn.Module):
    def __init__(self, cfg: RankingNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        dim = flat_dim(self.trunk, cfg.input_size)
        self.head = EmbeddingHead(dim, cfg.hidden, cfg.embed_dim, cfg.dropout)
        init_linears(self.head, self.trunk.config.init_seed + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pool5(x))


def negatives_generator(seed: int, step: int) -> torch.Generator:
    """Same random negatives on every rank and on resume: a function of (seed, step)."""
    s = int(np.random.SeedSequence([seed, step, 7]).generate_state(1)[0])
    return torch.Generator().manual_seed(s)


def ranking_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    n = batch["a"].shape[0]
    with sc.autocast():
        emb = model(to_input(torch.cat([batch["a"], batch["b"]]), sc))
    anchor, positive = emb[:n].float(), emb[n:].float()
    parent = batch["parent"].to(sc.device)
    video = batch["video"].to(sc.device)
    phase = "hard" if step >= sc.hard_after else "random"
    gen = negatives_generator(sc.seed, step)
    ctx = sc.dist
    if sc.gather_negatives and ctx.distributed:
        anchor = dist.gather_with_grad(ctx, anchor)
        positive = dist.gather_with_grad(ctx, positive)
        parent, video = dist.gather(ctx, parent), dist.gather(ctx, video)
        rows = slice(ctx.rank * n, (ctx.rank + 1) * n)
        loss, st = ranking_loss(
            anchor, positive, parent, video, sc.loss, phase, gen, rows, float(ctx.world_size)
        )
    else:
        loss, st = ranking_loss(anchor, positive, parent, video, sc.loss, phase, gen)
    stats = {
        "loss": st.loss,
        "active_hinges": st.active_hinges,
        "pos_cos": st.pos_cos,
        "neg_cos": st.neg_cos,
        "triplets": float(st.n_triplets),
        "pairs_without_negative": float(st.pairs_without_negative),
        "hard": float(phase == "hard"),
    }
    return loss, stats


def pair_top1(model: nn.Module, batch: dict[str, Any], sc: StepContext) -> dict[str, float]:
    """Share of anchors whose positive beats every valid negative of the batch."""
    n = batch["a"].shape[0]
    with sc.autocast():
        emb = model(to_input(torch.cat([batch["a"], batch["b"]]), sc)).float()
    emb = nn.functional.normalize(emb, dim=1)
    a, p = emb[:n], emb[n:]
    cos = a @ emb.T  # (n, 2n)
    valid = valid_negatives(
        batch["parent"].to(sc.device), batch["video"].to(sc.device), sc.loss.video_fallback
    )
    best_neg = cos.masked_fill(~valid, float("-inf")).max(dim=1).values
    return {"top1": float(((a * p).sum(1) > best_neg).float().mean())}


def build_data(cfg: TrainConfig) -> MethodData:
    from models.methods.ranking_pairs import PairColumns, PairDataset, collate_pairs, load_pairs

    pairs = load_pairs(cfg.data, PairColumns(**cfg.columns), cfg.registry or None)
    size = int(cfg.network.get("input_size", RankingNetConfig.input_size))
    weights = pairs.weights(cfg.type_weights, cfg.pair_types)
    return MethodData(PairDataset(pairs, size), collate_pairs, weights, 2)


def loss_config(cfg: TrainConfig) -> RankingLossConfig:
    return RankingLossConfig(cfg.margin, cfg.negatives, cfg.video_fallback)


METHOD = Method(
    name="ranking",
    network_config=RankingNetConfig,
    network=RankingNet,
    default_trunk="vgg16",  # Wang, He & Gupta 2017
    build_data=build_data,
    step=ranking_step,
    loss_config=loss_config,
    val_metrics=pair_top1,
)
