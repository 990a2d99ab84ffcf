"""TrainTransitive: Wang, He & Gupta 2017, the ranking network on every pair of the graph.

Its own module because it requires BuildGraph (``tasks.graph``), and BuildGraph's features may
require TrainContext / TrainTracking (``tasks.train``): graph -> train and
train_transitive -> graph, train; never train -> graph.
"""

from __future__ import annotations

import luigi

from tasks.graph import BuildGraph
from tasks.train import TrainBase


class TrainTransitive(TrainBase):
    """Wang, He & Gupta 2017: the ranking network on every pair type of the graph."""

    kind = "ranking"

    def upstream(self) -> list[luigi.Task]:
        return [BuildGraph()]
