"""The catalog of training methods: every network ``models.train`` can train, by name.

    from models import methods
    m = methods.get("ranking")       # unknown name -> KeyError listing the valid names
    net = methods.build_network(methods.network_config("ranking", trunk="alexnet"))

| name | paper | module |
|---|---|---|
| ``ranking`` | Triplet-Siamese (Wang & Gupta 2015; Wang, He & Gupta 2017) | ``ranking`` (+ ``ranking_pairs``) |
| ``mask`` | mask prediction from uNLC trimaps (Pathak et al. 2017) | ``masks`` |
| ``context`` | context prediction (Doersch, Gupta & Efros 2015) | ``context`` |
| ``counting`` | learning to count (Noroozi, Pirsiavash & Favaro 2017) | ``counting`` |
| ``jigsaw`` | Jigsaw++ (Noroozi, Vinjimoor, Favaro & Pirsiavash 2018) | ``jigsaw`` (+ ``permutations``) |
| ``edges`` | edge network from motion edges (Li, Paluri, Rehg & Dollar 2016) | ``edges`` (+ ``models.edge_net``, ``models.data_grouping``) |
| ``grouping`` | pixel embeddings from region trees (Zhang & Maire 2020) | ``grouping`` (+ ``models.grouping``, ``models.data_grouping``) |
| ``student`` | pseudo-label classification (Noroozi et al. 2018 knowledge transfer) | ``student`` |

How to add a method:

1. Write ``models/methods/<name>.py`` holding, together, its batch builder (a Dataset whose
   item is ``(row, sample_seed)`` -> dict with ``row`` and ``skipped``, a collate function and
   a ``build_data(cfg: TrainConfig) -> MethodData``), its network (a frozen config dataclass
   with ``trunk``, ``trunk_options`` and ``input_size`` fields, and an ``nn.Module`` whose
   trunk is ``self.trunk`` from ``models.trunks.build_trunk``), its loss, and its step
   ``(model, batch, step, StepContext) -> (loss, {"loss": ..., ...})``; images arrive as
   uint8 and go through ``models.steps.to_input``. End the module with
   ``METHOD = Method(name=..., network_config=..., network=..., default_trunk=...,
   build_data=..., step=...)`` (``models.methods.base.Method``).
2. Add one entry ``"<name>": "models.methods.<module>"`` to :data:`CATALOG`.

The name is then a valid ``TrainConfig.task`` / ``python -m models.train --task <name>``, the
checkpoint's ``network.kind``, and the trainer, DDP, resume, the NaN guard and the held-out
evaluation work unchanged. Method modules are imported on first use only.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from models.methods.base import Method, MethodData
from models.trunks import config_from_options

__all__ = ["CATALOG", "Method", "MethodData", "build_network", "get", "names", "network_config"]

# name -> module path holding ``METHOD`` (lazy), or a Method itself
CATALOG: dict[str, str | Method] = {
    "ranking": "models.methods.ranking",
    "mask": "models.methods.masks",
    "context": "models.methods.context",
    "student": "models.methods.student",
    "counting": "models.methods.counting",
    "jigsaw": "models.methods.jigsaw",
    "edges": "models.methods.edges",
    "grouping": "models.methods.grouping",
}


def names() -> tuple[str, ...]:
    """Every method name, in catalog order."""
    return tuple(CATALOG)


def get(name: str) -> Method:
    """The method called ``name``; KeyError listing the valid names otherwise."""
    if name not in CATALOG:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(names())}")
    entry = CATALOG[name]
    if isinstance(entry, Method):
        return entry
    method = importlib.import_module(entry).METHOD
    if not isinstance(method, Method) or method.name != name:
        raise TypeError(f"{entry}.METHOD is not the Method {name!r}")
    return method


def network_config(kind: str, **options: Any) -> Any:
    """Network config dataclass of method ``kind`` with ``options`` overrides (unknown option
    -> KeyError listing the valid ones)."""
    return config_from_options(get(kind).network_config, options, f"{kind} network")


def build_network(cfg: Any) -> nn.Module:
    """Build the network of a config dataclass (the class picks the method)."""
    for name in names():
        method = get(name)
        if isinstance(cfg, method.network_config):
            return method.network(cfg)
    raise TypeError(f"not a network config: {type(cfg).__name__}")
