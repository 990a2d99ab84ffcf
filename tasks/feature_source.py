"""The task layer's feature sources and the training task a network source needs: compute-only ones from ``pipeline.features`` (HOG),
network ones (``random``, ``checkpoint``, ``context``, ``tracking``) from
``models.feature_sources``; both give objects ``pipeline.features.embed`` takes.
"""

from __future__ import annotations

from typing import Any

import luigi

from models import feature_sources
from pipeline import features
from pipeline.features import FeatureConfig
from tasks.train import TrainContext, TrainTracking


def source_names() -> list[str]:
    return sorted(set(features.source_names()) | set(feature_sources.SOURCES))


def build_source(cfg: FeatureConfig) -> Any:
    """The feature source named ``cfg.source``; KeyError listing every valid name."""
    if cfg.source in feature_sources.SOURCES:
        return feature_sources.build(cfg)
    if cfg.source in features.source_names():
        return features.build_source(cfg)
    raise KeyError(f"unknown feature source {cfg.source!r}; valid: {source_names()}")


def feature_model_task(source: str) -> luigi.Task | None:
    """The training task whose checkpoint a feature source needs (None for hog/random/...)."""
    if source == "context":
        return TrainContext()
    if source == "tracking":
        return TrainTracking()
    return None
