"""Network feature sources: pool5 of a trunk as an embedder the task layer hands to pipeline/.

``pipeline.features`` holds compute-only sources (HOG) and never imports a network; the task
layer (``tasks.feature_source.build_source``) asks this module for the sources below and passes
the resulting object, which has the ``pipeline.features.FeatureSource`` shape (``name``,
``dim``, ``spec()``, ``embed(patches)``), to ``pipeline.features.embed``.

- ``random``: an untrained, seed-initialised trunk (``cfg.trunk``, ``cfg.init_seed``): the
  ablation baseline;
- ``checkpoint``: the trunk of any checkpoint of ``python -m models.train`` (``cfg.checkpoint``);
- ``context``: TrainContext's network (context prediction on mined frames: the 2017 paper's
  choice for clustering); the checkpoint's network kind is checked;
- ``tracking``: TrainTracking's network (the 2015 ranking network on intra pairs); checked.

Checkpoints are read with ``torch.load(weights_only=True)``. ``cfg`` is a
``pipeline.features.FeatureConfig`` (duck-typed: models does not import pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models import checkpoint as ckpt_io
from models.trunks import Trunk, build_trunk, load_checkpoint_trunk, preprocess, trunk_spec

EXPECTED_KIND = {"context": "context", "tracking": "ranking"}


class TrunkSource:
    """Flattened pool5 of a ``models.trunks`` trunk (vgg16 on 96x96: 512x3x3 = 4608-d).

    Runs on CUDA when available (``cfg.device`` = "auto"), in eval mode without gradients;
    inputs are ImageNet-normalised by ``models.trunks.preprocess`` (the trunks' training input).
    """

    def __init__(self, name: str, trunk: Trunk, cfg: Any, info: dict[str, Any]) -> None:
        self.name, self.cfg, self.info = name, cfg, info
        dev = cfg.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(dev)
        self.trunk = trunk.to(self.device).eval()
        c, h, w = trunk.pool5_shape(cfg.patch_size)
        self.dim = c * h * w

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "device": self.device.type, **self.info}

    def embed(self, patches: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(B, S, S, 3) uint8 RGB -> (B, dim) float32."""
        size = self.cfg.patch_size
        if patches.dtype != np.uint8 or patches.ndim != 4 or patches.shape[1:] != (size, size, 3):
            raise ValueError(
                f"patches must be (N, {size}, {size}, 3) uint8 RGB, "
                f"got {patches.shape} {patches.dtype}"
            )
        with torch.inference_mode():
            x = preprocess(patches).to(self.device)
            f = self.trunk.pool5(x).flatten(1).float()
        return np.asarray(f.cpu().numpy(), dtype=np.float32)


def random_source(cfg: Any) -> TrunkSource:
    """An untrained trunk, initialised from cfg.init_seed (ablation baseline)."""
    t = build_trunk(cfg.trunk, init_seed=cfg.init_seed)
    return TrunkSource("random", t, cfg, {"trunk": trunk_spec(t)})


def checkpoint_source(cfg: Any) -> TrunkSource:
    """A trained trunk from cfg.checkpoint (torch.load(weights_only=True): no unpickling)."""
    if not cfg.checkpoint:
        raise ValueError("feature source 'checkpoint' needs FeatureConfig.checkpoint (a file)")
    t = load_checkpoint_trunk(cfg.checkpoint)
    return TrunkSource("checkpoint", t, cfg, {"trunk": trunk_spec(t), "checkpoint": cfg.checkpoint})


def _trained_source(name: str, cfg: Any) -> TrunkSource:
    if not cfg.checkpoint:
        task = "TrainContext" if name == "context" else "TrainTracking"
        raise ValueError(
            f"feature source {name!r} needs FeatureConfig.checkpoint: the checkpoint.pt of a "
            f"{task} output (tasks.feature_source.feature_model_task({name!r}) gives that task)"
        )
    ck = ckpt_io.load(cfg.checkpoint)
    kind = ck["network"]["kind"]
    if kind != EXPECTED_KIND[name]:
        raise ValueError(
            f"{cfg.checkpoint} holds a {kind!r} network; source {name!r} needs a "
            f"{EXPECTED_KIND[name]!r} network"
        )
    trunk = load_checkpoint_trunk(cfg.checkpoint)
    info = {"trunk": trunk_spec(trunk), "checkpoint": str(cfg.checkpoint), "step": ck["step"]}
    return TrunkSource(name, trunk, cfg, info)


def context_source(cfg: Any) -> TrunkSource:
    """pool5 of a context-prediction network."""
    return _trained_source("context", cfg)


def tracking_source(cfg: Any) -> TrunkSource:
    """pool5 of a tracking (intra-pair ranking) network."""
    return _trained_source("tracking", cfg)


SOURCES: dict[str, Callable[[Any], TrunkSource]] = {
    "random": random_source,
    "checkpoint": checkpoint_source,
    "context": context_source,
    "tracking": tracking_source,
}


def build(cfg: Any) -> TrunkSource:
    """The network source named ``cfg.source``; KeyError listing the valid names."""
    if cfg.source not in SOURCES:
        raise KeyError(f"unknown network feature source {cfg.source!r}; valid: {sorted(SOURCES)}")
    return SOURCES[cfg.source](cfg)
