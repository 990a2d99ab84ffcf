"""What every training method provides (:class:`Method`) and the helpers their heads share.

A method bundles, in one module of ``models/methods/``: its batch builder (a Dataset over the
manifests and a collate function), its network (a frozen config dataclass and an
``nn.Module`` whose trunk lives under ``trunk.``, the layout ``models.trunks.
load_checkpoint_trunk`` and ``models.export`` read), its loss and its step (forward + loss of
one collated batch). The trainer (``models.train``), checkpointing and evaluation are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.trunks import Trunk

if TYPE_CHECKING:
    from models.config import TrainConfig
    from models.steps import StepContext

StepFn = Callable[
    [nn.Module, dict[str, Any], int, "StepContext"], tuple[torch.Tensor, dict[str, float]]
]


@dataclass
class MethodData:
    """A method's training data: ``dataset[(row, sample_seed)]`` -> item dict (with ``row``
    and ``skipped``), ``collate`` of a list of items, per-row sampling ``weights`` (0 = never
    drawn), the images one sample feeds the network (for images/s) and whether an epoch
    draws rows with replacement (``replacement``: per-draw probabilities follow the weights
    exactly, e.g. uniform over clusters; without it an epoch of every row is a permutation
    and the weights only set the order)."""

    dataset: Any
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]]
    weights: npt.NDArray[np.float64]
    images_per_sample: int
    replacement: bool = False


@dataclass(frozen=True)
class Method:
    """One catalog entry (see ``models.methods``)."""

    name: str
    network_config: type[Any]  # frozen dataclass with ``trunk`` and ``trunk_options`` fields
    network: Callable[[Any], nn.Module]  # network_config instance -> module (trunk at .trunk)
    default_trunk: str  # the paper's trunk when TrainConfig.trunk is ""
    build_data: Callable[[TrainConfig], MethodData]
    step: StepFn  # (model, batch, step, StepContext) -> (loss, float stats)
    loss_config: Callable[[TrainConfig], Any] = lambda cfg: None  # -> StepContext.loss
    # extra held-out metrics of one batch beside the step's stats (ranking: pair top-1)
    val_metrics: Callable[[nn.Module, dict[str, Any], StepContext], dict[str, float]] | None = None
    # checks of the pretext task itself on the held-back batches, run once after training
    # (counting: error by interpolation, live units; jigsaw: accuracy by replaced tiles)
    pretext_checks: (
        Callable[[nn.Module, list[dict[str, Any]], StepContext], dict[str, Any]] | None
    ) = None


def flat_dim(trunk: Trunk, input_size: int) -> int:
    """Length of the flattened pool5 of ``trunk`` for a square input of ``input_size``."""
    c, h, w = trunk.pool5_shape(input_size)
    return c * h * w


def init_linears(module: nn.Module, seed: int) -> None:
    """Seeded init of a head: fc N(0, 0.01) (Caffe-era), conv He fan-out, zero biases."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01, generator=g)  # Caffe-era fc init
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_hidden_he(layers: list[nn.Linear], seed: int) -> None:
    """He-initialise the hidden fc layers of a head (after :func:`init_linears`): with stacked
    fc at N(0, 0.01) and zero biases the signal shrinks ~10x per layer and a network trained
    from scratch sits at chance (measured on the student and on Jigsaw++ puzzles)."""
    g = torch.Generator().manual_seed(seed)
    for fc in layers:
        nn.init.kaiming_normal_(fc.weight, nonlinearity="relu", generator=g)
