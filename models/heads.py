"""Heads and the three networks: ranking (Triplet-Siamese), mask and context prediction.

One frozen config dataclass per network, holding the trunk's name and options and the head's
sizes; :func:`build_network` turns it into a module whose trunk lives under ``trunk.`` (the
layout ``models.trunks.load_checkpoint_trunk`` and ``models.export`` read).

- ``RankingNet``  trunk -> flatten pool5 -> fc 4096 -> ReLU -> fc 1024 (Wang & Gupta 2015/2017).
  Returns (N, 1024) unnormalised embeddings; the loss uses cosine distance.
- ``MaskNet``     trunk -> 1x1 conv -> fc -> s*s logits (Pathak et al. 2017, DeepMask-style).
  Returns (N, s, s) float logits for a (N, 3, w, w) crop.
- ``ContextNet``  shared trunk on two patches -> fc6 each -> concat -> fc7 -> 8-way logits
  (Doersch et al. 2015). Returns (N, 8) logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.edge_net import EdgeNet, EdgeNetConfig
from models.grouping import GroupingNet, GroupingNetConfig
from models.trunks import Trunk, build_trunk, config_from_options


@dataclass(frozen=True)
class RankingNetConfig:
    trunk: str = "vgg16"  # 2017 paper's trunk; "alexnet" for the 2015 method
    trunk_options: dict[str, Any] = field(default_factory=dict)  # fields of the trunk config
    input_size: int = 96  # patch side: mined patches are 96x96 (2017 paper)
    hidden: int = 4096  # fc6 width (both papers)
    embed_dim: int = 1024  # fc7 width: the ranking embedding (both papers)
    dropout: float = 0.0  # not in the ranking papers' description; 0 keeps DDP == 1 process


@dataclass(frozen=True)
class MaskNetConfig:
    trunk: str = "alexnet"  # Pathak et al. 2017 trained AlexNet
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 227  # w: crop side (Pathak et al. 2017)
    mask_size: int = 56  # s: predicted mask side (Pathak et al. 2017)
    reduce_channels: int = 512  # 1x1 conv before the fc, as in DeepMask
    hidden: int = 512  # fc before the s*s output, as in DeepMask


@dataclass(frozen=True)
class ContextNetConfig:
    trunk: str = "vgg16"  # the feature source clusters with a VGG16-style pool5
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 96  # patch side, same as the mined patches the features describe
    fc6: int = 1024  # per-patch fc (Doersch uses 4096 with larger patches; 1024 halves memory)
    fc7: int = 4096  # fc on the concatenated pair (Doersch et al. 2015)
    n_classes: int = 8  # 8 relative positions of the second patch around the first


NetworkConfig = (
    RankingNetConfig | MaskNetConfig | ContextNetConfig | EdgeNetConfig | GroupingNetConfig
)


def _flat_dim(trunk: Trunk, input_size: int) -> int:
    c, h, w = trunk.pool5_shape(input_size)
    return c * h * w


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


class MaskHead(nn.Module):
    """(N, C, h, w) pool5 -> (N, s, s) logits: 1x1 conv -> ReLU -> fc -> ReLU -> fc s*s."""

    def __init__(self, c_in: int, hw: int, reduce: int, hidden: int, mask_size: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c_in, reduce, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(reduce * hw, hidden)
        self.out = nn.Linear(hidden, mask_size * mask_size)
        self.mask_size = mask_size

    def forward(self, pool5: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.reduce(pool5)).flatten(1)
        x = self.out(self.relu(self.fc(x)))
        return x.reshape(-1, self.mask_size, self.mask_size)


class ContextHead(nn.Module):
    """Two (N, C, h, w) pool5 maps -> (N, n_classes) relative-position logits."""

    def __init__(self, in_features: int, fc6: int, fc7: int, n_classes: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, fc6)
        self.fc7 = nn.Linear(2 * fc6, fc7)
        self.fc8 = nn.Linear(fc7, n_classes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, pool5_a: torch.Tensor, pool5_b: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.fc6(pool5_a.flatten(1)))
        b = self.relu(self.fc6(pool5_b.flatten(1)))
        return self.fc8(self.relu(self.fc7(torch.cat([a, b], dim=1))))


def _init_linears(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01, generator=g)  # Caffe-era fc init
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class RankingNet(nn.Module):
    def __init__(self, cfg: RankingNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        dim = _flat_dim(self.trunk, cfg.input_size)
        self.head = EmbeddingHead(dim, cfg.hidden, cfg.embed_dim, cfg.dropout)
        _init_linears(self.head, self.trunk.config.init_seed + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pool5(x))


class MaskNet(nn.Module):
    def __init__(self, cfg: MaskNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        c, h, w = self.trunk.pool5_shape(cfg.input_size)
        self.head = MaskHead(c, h * w, cfg.reduce_channels, cfg.hidden, cfg.mask_size)
        _init_linears(self.head, self.trunk.config.init_seed + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pool5(x))


class ContextNet(nn.Module):
    def __init__(self, cfg: ContextNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        dim = _flat_dim(self.trunk, cfg.input_size)
        self.head = ContextHead(dim, cfg.fc6, cfg.fc7, cfg.n_classes)
        _init_linears(self.head, self.trunk.config.init_seed + 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # one trunk pass over both patches: half the kernel launches, same result
        both = self.trunk.pool5(torch.cat([a, b], dim=0))
        return self.head(both[: a.shape[0]], both[a.shape[0] :])


_NETWORKS: dict[str, tuple[type[nn.Module], type[Any]]] = {
    "ranking": (RankingNet, RankingNetConfig),
    "mask": (MaskNet, MaskNetConfig),
    "context": (ContextNet, ContextNetConfig),
    "edges": (EdgeNet, EdgeNetConfig),  # models.edge_net (Li et al. 2016)
    "grouping": (GroupingNet, GroupingNetConfig),  # models.grouping (Zhang & Maire 2020)
}
NETWORK_KINDS = tuple(_NETWORKS)


def network_config(kind: str, **options: Any) -> NetworkConfig:
    """Config dataclass of network ``kind`` with ``options`` overrides."""
    if kind not in _NETWORKS:
        raise KeyError(f"unknown network {kind!r}; valid: {', '.join(NETWORK_KINDS)}")
    config: NetworkConfig = config_from_options(_NETWORKS[kind][1], options, f"{kind} network")
    return config


def build_network(cfg: NetworkConfig) -> nn.Module:
    """Build the network of a config dataclass (the class picks the kind)."""
    for net_cls, cfg_cls in _NETWORKS.values():
        if isinstance(cfg, cfg_cls):
            return net_cls(cfg)
    raise TypeError(f"not a network config: {type(cfg).__name__}")
