"""Dense pixel embeddings and their contrastive loss (Zhang & Maire, NeurIPS 2020).

``GroupingNet``: the ResNet-18 trunk of ``models.trunks``; its two middle stages (``layer2``,
stride 8, 128 channels and ``layer3``, stride 16, 256 channels) are each projected to 256
channels (1x1 conv + BN + ReLU), resized (bilinear) to 1/4 of the input, concatenated (512)
and turned into a 32-d embedding per pixel by a 3x3 conv. ``forward(x)``: (N, 3, H, W) float ->
(N, 32, H/4, W/4). The trunk lives under ``trunk.`` (``models.trunks.load_checkpoint_trunk``
reads it back).

``pixel_pair_loss``: for anchor a, each positive p and the anchor's negatives n_1..n_Q::

    l(a, p) = -log( exp(cos(a,p)/t) / (exp(cos(a,p)/t) + sum_q exp(cos(a,n_q)/t)) )

mean over the valid (anchor, positive) pairs; t = 1 as in the paper.

``sample_embeddings`` reads a (N, C, h, w) embedding at input-pixel coordinates (bilinear,
pixel centres mapped exactly), so pairs sampled on the full-resolution region tree are scored
on the 1/4 map without rounding them onto a coarser grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.trunks import dense_resnet18


@dataclass(frozen=True)
class GroupingNetConfig:
    trunk: str = "resnet18"  # Zhang & Maire 2020 use ResNet-18 (the only trunk supported here)
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 224  # training crop side (square); any size works at inference
    proj_channels: int = 256  # each middle stage projected to 256 channels (paper)
    embed_dim: int = 32  # per-pixel embedding (paper)


class GroupingNet(nn.Module):
    """(N, 3, H, W) -> (N, embed_dim, H/4, W/4) pixel embeddings (unnormalised)."""

    def __init__(self, cfg: GroupingNetConfig = GroupingNetConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = trunk = dense_resnet18(cfg.trunk, cfg.trunk_options, "grouping network")
        self.proj2 = _projection(128, cfg.proj_channels)
        self.proj3 = _projection(256, cfg.proj_channels)
        self.embed = nn.Conv2d(2 * cfg.proj_channels, cfg.embed_dim, kernel_size=3, padding=1)
        g = torch.Generator().manual_seed(trunk.config.init_seed + 1)
        for m in (*self.proj2.modules(), *self.proj3.modules(), self.embed):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        size = (max(x.shape[2] // 4, 1), max(x.shape[3] // 4, 1))
        c2 = t.layer2(t.layer1(t.maxpool(t.relu(t.bn1(t.conv1(x))))))
        c3 = t.layer3(c2)
        p2 = F.interpolate(self.proj2(c2), size=size, mode="bilinear", align_corners=False)
        p3 = F.interpolate(self.proj3(c3), size=size, mode="bilinear", align_corners=False)
        out: torch.Tensor = self.embed(torch.cat([p2, p3], dim=1))
        return out


def _projection(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def sample_embeddings(
    emb: torch.Tensor, yx: torch.Tensor, image_hw: tuple[int, int]
) -> torch.Tensor:
    """Embedding vectors at input-pixel coordinates.

    ``emb`` (N, C, h, w); ``yx`` (N, K, 2) int/float pixel (row, col) in an image of
    ``image_hw`` = (H, W). Returns (N, K, C), bilinear, with pixel centres aligned (the map
    covers the image exactly: align_corners=False).
    """
    if emb.ndim != 4 or yx.ndim != 3 or yx.shape[0] != emb.shape[0] or yx.shape[2] != 2:
        raise ValueError(f"expected emb (N, C, h, w) and yx (N, K, 2), got {emb.shape} {yx.shape}")
    h_img, w_img = image_hw
    y = (yx[..., 0].float() + 0.5) / h_img * 2.0 - 1.0
    x = (yx[..., 1].float() + 0.5) / w_img * 2.0 - 1.0
    grid = torch.stack([x, y], dim=-1).unsqueeze(1).to(emb.dtype)  # (N, 1, K, 2)
    out = F.grid_sample(emb, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0, :].permute(0, 2, 1)  # (N, K, C)


@dataclass
class PairLossStats:
    loss: float
    pos_cos: float  # mean cos(anchor, positive) over valid pairs
    neg_cos: float  # mean cos(anchor, negative) over valid negatives
    pairs: int  # valid (anchor, positive) pairs
    accuracy: float  # share of positives closer to the anchor than every negative


def pixel_pair_loss(
    anchor: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    pos_valid: torch.Tensor | None = None,
    neg_valid: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, PairLossStats]:
    """Contrastive loss of Zhang & Maire 2020 on cosine similarities.

    ``anchor`` (A, D); ``positives`` (A, P, D); ``negatives`` (A, Q, D); the masks (A, P) and
    (A, Q) bool mark real entries (padding is ignored). Returns the mean over valid
    (anchor, positive) pairs of -log(e^{c+/t} / (e^{c+/t} + sum_valid e^{c-/t})), 0 when there
    is none (it still back-propagates, with zero gradient).
    """
    if anchor.ndim != 2 or positives.ndim != 3 or negatives.ndim != 3:
        raise ValueError(
            f"expected anchor (A, D), positives (A, P, D), negatives (A, Q, D); got "
            f"{tuple(anchor.shape)} {tuple(positives.shape)} {tuple(negatives.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    a = F.normalize(anchor.float(), dim=-1)
    pos_cos = (F.normalize(positives.float(), dim=-1) * a[:, None, :]).sum(-1)  # (A, P)
    neg_cos = (F.normalize(negatives.float(), dim=-1) * a[:, None, :]).sum(-1)  # (A, Q)
    pv = torch.ones_like(pos_cos, dtype=torch.bool) if pos_valid is None else pos_valid.bool()
    nv = torch.ones_like(neg_cos, dtype=torch.bool) if neg_valid is None else neg_valid.bool()
    neg_logits = (neg_cos / temperature).masked_fill(~nv, float("-inf"))  # (A, Q)
    neg_lse = torch.logsumexp(neg_logits, dim=1, keepdim=True)  # -inf when no negative
    pos_logits = pos_cos / temperature
    # -log(e^p / (e^p + e^n)) = logaddexp(p, n) - p  (stable; n = -inf gives 0)
    per_pair = torch.logaddexp(pos_logits, neg_lse.expand_as(pos_logits)) - pos_logits
    w = pv.float()
    n_pairs = int(w.sum())
    loss = (per_pair * w).sum() / max(n_pairs, 1)
    with torch.no_grad():
        best_neg = neg_cos.masked_fill(~nv, float("-inf")).max(dim=1, keepdim=True).values
        acc = ((pos_cos > best_neg).float() * w).sum() / max(n_pairs, 1)
        n_neg = max(int(nv.sum()), 1)
        stats = PairLossStats(
            loss=float(loss.detach()),
            pos_cos=float((pos_cos * w).sum() / max(n_pairs, 1)),
            neg_cos=float((neg_cos * nv.float()).sum() / n_neg),
            pairs=n_pairs,
            accuracy=float(acc),
        )
    return loss, stats
