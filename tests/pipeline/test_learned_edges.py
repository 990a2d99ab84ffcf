"""A blurred edge-probability ridge is thinned to its crest with the right orientation."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.learned_edges import edge_map_from_probability


def test_vertical_ridge_thins_to_its_crest_with_vertical_tangent() -> None:
    x = np.arange(40, dtype=np.float32)
    ridge = np.exp(-((x - 20.0) ** 2) / (2 * 2.0**2)).astype(np.float32)
    prob = np.tile(ridge, (30, 1))
    em = edge_map_from_probability(prob)
    rows = em.strength[5:25]
    assert (rows[:, 20] == pytest.approx(1.0)) and (np.count_nonzero(rows, axis=1) == 1).all()
    # the edge runs along y: tangent pi/2 (orientation is the edge's tangent angle)
    assert em.orientation[15, 20] == pytest.approx(np.pi / 2, abs=0.05)


def test_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        edge_map_from_probability(np.full((4, 4), np.nan, np.float32))
