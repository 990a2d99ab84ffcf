"""Losses: ranking loss with in-batch negatives, trimap logistic loss, context cross-entropy.

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

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = 255  # trimap value of pixels that weigh nothing


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


def trimap_loss(logits: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Per-pixel logistic loss, mean over the non-ignored pixels.

    ``logits`` (N, s, s) float; ``trimap`` (N, s, s) uint8 with 0 background, 1 foreground,
    ``IGNORE`` (255) ignored: those pixels weigh nothing. All-ignored batches give 0.
    """
    if logits.shape != trimap.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and trimap {tuple(trimap.shape)} differ")
    keep = trimap != IGNORE
    target = (trimap == 1).to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * keep).sum() / keep.sum().clamp(min=1)


def mask_stats(logits: torch.Tensor, trimap: torch.Tensor) -> dict[str, float]:
    """IoU / precision / recall of ``logits > 0`` against the trimap's decided pixels."""
    keep = trimap != IGNORE
    pred = (logits > 0) & keep
    gt = (trimap == 1) & keep
    inter = float((pred & gt).sum())
    union = float((pred | gt).sum())
    return {
        "iou": inter / union if union else 1.0,
        "precision": inter / float(pred.sum()) if pred.any() else 1.0,
        "recall": inter / float(gt.sum()) if gt.any() else 1.0,
    }


def context_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy over the 8 relative positions; returns (loss, accuracy)."""
    loss = F.cross_entropy(logits.float(), labels)
    acc = float((logits.argmax(1) == labels).float().mean())
    return loss, acc
