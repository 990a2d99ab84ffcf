"""Method ``edges``: the edge network learned from motion edges (Li, Paluri, Rehg & Dollar 2016).

The network (``EdgeNet``: HED-style side outputs on the ResNet-18 stages), its class-balanced
loss and the targets live in ``models.edge_net``; the batch builder (``EdgeDataset`` over the
``edge_targets`` table) in ``models.data_grouping``. This module holds the step and the
catalog entry. ``TrainEdges`` runs the rounds (train, predict every frame, retrain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from models import data_grouping as dg
from models.edge_net import EdgeNet, EdgeNetConfig, edge_net_loss, edge_stats
from models.manifests import read_table
from models.methods.base import Method, MethodData
from models.steps import to_input

if TYPE_CHECKING:
    from models.config import TrainConfig
    from models.steps import StepContext


def _side_weight(model: nn.Module) -> float:
    net: Any = model.module if hasattr(model, "module") else model  # DDP-wrapped or bare
    return float(net.config.side_weight)


def edges_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    """HED deep supervision: the class-balanced loss on the fused and the side outputs."""
    with sc.autocast():
        out = model(to_input(batch["image"], sc))
    target = batch["target"].to(sc.device)
    loss = edge_net_loss(out.float(), target, _side_weight(model))
    with torch.no_grad():
        stats = {"loss": float(loss.detach()), **edge_stats(out[:, 0].detach(), target)}
    return loss, stats


def build_data(cfg: TrainConfig) -> MethodData:
    crop, _ = dg.split_options(cfg.crop)
    table = read_table(cfg.data, cfg.columns.get("table", "edge_targets"), cfg.registry or None)
    ds = dg.EdgeDataset(table, crop)
    return MethodData(ds, dg.collate_edges, np.ones(len(ds)), 1)


METHOD = Method(
    name="edges",
    network_config=EdgeNetConfig,
    network=EdgeNet,
    default_trunk="resnet18",
    build_data=build_data,
    step=edges_step,
)
