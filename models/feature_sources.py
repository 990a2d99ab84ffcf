"""The ``context`` and ``tracking`` feature sources of ``pipeline.features`` (DESIGN 4.5).

Both are pool5 of a trunk this package trained, loaded from ``FeatureConfig.checkpoint``
(``torch.load(weights_only=True)``):

- ``context``: TrainContext's network (context prediction on mined frames: the 2017 paper's
  choice for clustering);
- ``tracking``: TrainTracking's network (the 2015 ranking network on intra pairs).

The checkpoint's network kind is checked, so a mask network is never used by mistake. The
registration (lazy ``"module:function"`` strings, so nothing is imported until used) is done
by ``tasks.train`` (``register()``), which the ``tasks`` package imports.
"""

from __future__ import annotations

from typing import Any

from models import checkpoint as ckpt_io
from models.trunks import load_checkpoint_trunk, trunk_spec

EXPECTED_KIND = {"context": "context", "tracking": "ranking"}


def _source(name: str, cfg: Any) -> Any:
    from pipeline.features import TrunkSource  # lazy: models does not depend on pipeline

    if not cfg.checkpoint:
        task = "TrainContext" if name == "context" else "TrainTracking"
        raise ValueError(
            f"feature source {name!r} needs FeatureConfig.checkpoint: the checkpoint.pt of a "
            f"{task} output (tasks.train.feature_model_task({name!r}) gives that task)"
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


def context_source(cfg: Any) -> Any:
    """pool5 of a context-prediction network (FeatureConfig -> pipeline.features.TrunkSource)."""
    return _source("context", cfg)


def tracking_source(cfg: Any) -> Any:
    """pool5 of a tracking (intra-pair ranking) network."""
    return _source("tracking", cfg)


def register() -> None:
    """Add both sources to pipeline.features' registry (one call; idempotent)."""
    from pipeline import features

    features.register_source("context", "models.feature_sources:context_source")
    features.register_source("tracking", "models.feature_sources:tracking_source")
