"""Edge network learned from motion edges, from scratch (Li, Paluri, Rehg & Dollar 2016).

``EdgeNet``: an HED-style fully convolutional net (Xie & Tu 2015) on the stem and first three
stages of the ResNet-18 trunk of ``models.trunks`` (strides 4, 4, 8, 16): each stage gives a
1-channel side output, upsampled to the input size; a 1x1 conv fuses them. ``forward(x)``:
(N, 3, H, W) -> (N, 5, H, W) logits: channel 0 the fused output (the edge map), 1..4 the side
outputs, which the loss supervises too (deep supervision, as HED). One tensor, so a
DDP-wrapped call sees every output.

Li et al. 2016 train from scratch on motion edges, apply the net to every frame and re-train
on its own (sharper, denser) edges, 4 rounds; ``TrainEdges`` runs those rounds through
``models.train`` (task ``edges``), this module holds the network, the loss and the targets.

Targets are a (H, W) uint8 map: 1 edge, 0 non-edge, ``IGNORE`` (255) undecided (pixels next
to an edge, where a one-pixel offset of the flow boundary must not count as a miss).

``balanced_edge_loss``: HED's class-balanced logistic loss: positives weigh |Y-| / |Y|,
negatives |Y+| / |Y| (per image), so the ~2% edge pixels are not drowned by the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from models.methods.masks import IGNORE
from models.trunks import dense_resnet18


@dataclass(frozen=True)
class EdgeNetConfig:
    trunk: str = "resnet18"  # the project's ResNet-18 trunk (first three stages), from scratch
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 224  # training crop side (square); any size works at inference
    side_weight: float = 1.0  # weight of each side output's loss next to the fused one (HED)


class EdgeNet(nn.Module):
    """(N, 3, H, W) -> (N, 5, H, W) logits: fused (channel 0), then the 4 side outputs."""

    def __init__(self, cfg: EdgeNetConfig = EdgeNetConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = trunk = dense_resnet18(cfg.trunk, cfg.trunk_options, "edge network")
        sides = [nn.Conv2d(c, 1, kernel_size=1) for c in (64, 64, 128, 256)]
        g = torch.Generator().manual_seed(trunk.config.init_seed + 1)
        for conv in sides:
            nn.init.normal_(conv.weight, 0.0, 0.01, generator=g)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        self.side = nn.ModuleList(sides)
        self.fuse = nn.Conv2d(4, 1, kernel_size=1)
        nn.init.constant_(self.fuse.weight, 0.25)  # HED: fusion starts as the mean
        nn.init.zeros_(self.fuse.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        size = (x.shape[2], x.shape[3])
        c0 = t.relu(t.bn1(t.conv1(x)))  # stride 2
        c1 = t.layer1(t.maxpool(c0))  # stride 4
        c2 = t.layer2(c1)  # stride 8
        c3 = t.layer3(c2)  # stride 16
        sides = [
            F.interpolate(conv(f), size=size, mode="bilinear", align_corners=False)
            for conv, f in zip(self.side, (c0, c1, c2, c3), strict=True)
        ]
        side = torch.cat(sides, dim=1)
        return torch.cat([self.fuse(side), side], dim=1)


def balanced_edge_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """HED class-balanced logistic loss, mean over images.

    ``logits`` (N, H, W) float; ``target`` (N, H, W) uint8 {0, 1, IGNORE}. In each image a
    positive pixel weighs n_neg / (n_pos + n_neg) and a negative n_pos / (n_pos + n_neg), so
    both classes carry the same total weight; the per-image loss is that weighted sum over
    the decided pixels divided by their count. Images without a decided pixel give 0.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    pos = (target == 1).float()
    neg = (target == 0).float()
    n_pos = pos.sum(dim=(1, 2), keepdim=True)
    n_neg = neg.sum(dim=(1, 2), keepdim=True)
    total = (n_pos + n_neg).clamp(min=1.0)
    weight = pos * (n_neg / total) + neg * (n_pos / total)
    per_pixel = F.binary_cross_entropy_with_logits(logits.float(), pos, reduction="none")
    per_image = (per_pixel * weight).sum(dim=(1, 2)) / total[:, 0, 0]
    return per_image.mean()


def edge_net_loss(outputs: torch.Tensor, target: torch.Tensor, side_weight: float) -> torch.Tensor:
    """HED's deep supervision: balanced loss of the fused map + ``side_weight`` x each side's."""
    loss = balanced_edge_loss(outputs[:, 0], target)
    for k in range(1, outputs.shape[1]):
        loss = loss + side_weight * balanced_edge_loss(outputs[:, k], target)
    return loss


def edge_stats(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Precision / recall of ``sigmoid(logits) > 0.5`` on the decided pixels, pixel-exact."""
    keep = target != IGNORE
    pred = (logits > 0) & keep
    gt = (target == 1) & keep
    tp = float((pred & gt).sum())
    return {
        "edge_precision": tp / float(pred.sum()) if pred.any() else 1.0,
        "edge_recall": tp / float(gt.sum()) if gt.any() else 1.0,
        "edge_share": float(gt.sum()) / max(float(keep.sum()), 1.0),
    }


@dataclass(frozen=True)
class EdgeTargetConfig:
    threshold: float = 0.5  # strength above which a pixel is an edge (after NMS for rounds)
    ignore_radius: int = 2  # pixels within this distance of an edge, not on it, are ignored


def edge_target(
    strength: npt.NDArray[np.float32], cfg: EdgeTargetConfig = EdgeTargetConfig()
) -> npt.NDArray[np.uint8]:
    """(H, W) float32 edge strength in [0, 1] -> (H, W) uint8 target {0, 1, IGNORE}."""
    if strength.ndim != 2:
        raise ValueError(f"edge strength must be (H, W), got {strength.shape}")
    edge = (strength > cfg.threshold).astype(np.uint8)
    out = np.zeros(strength.shape, np.uint8)
    if cfg.ignore_radius > 0:
        k = 2 * cfg.ignore_radius + 1
        near = cv2.dilate(edge, np.ones((k, k), np.uint8)) > 0
        out[near] = IGNORE
    out[edge > 0] = 1
    return out


def load_edge_net(path: str | Path) -> EdgeNet:
    """The edge network of a ``models.train`` checkpoint (task edges), in eval mode."""
    from models import checkpoint as ckpt_io

    ck = ckpt_io.load(path)
    kind = ck.get("network", {}).get("kind")
    if kind != "edges":
        raise ValueError(f"{path} holds a {kind!r} network, not an edge network")
    net = EdgeNet(EdgeNetConfig(**ck["network"]["config"]))
    net.load_state_dict(ck["model"])
    return net.eval()


@torch.no_grad()
def predict_edges(
    net: nn.Module,
    frames: npt.NDArray[np.uint8],
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> npt.NDArray[np.float32]:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) float32 edge probability in [0, 1].

    Inputs are padded to a multiple of 16 (edge-replicated) so every stage aligns, and the
    prediction is cropped back.
    """
    from models.trunks import preprocess

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    net = net.to(device).eval()
    _, h, w, _ = frames.shape
    ph, pw = -h % 16, -w % 16
    out = np.empty(frames.shape[:3], np.float32)
    for i in range(0, len(frames), batch_size):
        chunk = frames[i : i + batch_size]
        if ph or pw:
            chunk = np.pad(chunk, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        logits = net(preprocess(chunk).to(device))[:, 0].float()
        out[i : i + batch_size] = torch.sigmoid(logits[:, :h, :w]).cpu().numpy()
    return out
