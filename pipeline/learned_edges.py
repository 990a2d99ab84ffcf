"""An edge network's probability map -> a thin :class:`pipeline.edges.EdgeMap`.

The network (``models.edge_net``) outputs a per-pixel edge probability, several pixels wide.
Region trees and the next training round want thin edges with an orientation, as the
gradient and motion edges have: the orientation is taken from the smoothed probability map's
gradient (the edge's normal), thinned by non-maximum suppression across it (the same NMS as
the gradient baseline), and the strength is the probability on the surviving pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.edges import EdgeMap, non_max_suppression

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class LearnedEdgeConfig:
    orient_sigma: float = 2.0  # px: smoothing before the gradient that gives the orientation
    nms: bool = True  # thin to one pixel across, as the gradient and motion edges are


def edge_map_from_probability(prob: F32, cfg: LearnedEdgeConfig = LearnedEdgeConfig()) -> EdgeMap:
    """(H, W) float32 probability in [0, 1] -> EdgeMap (strength, tangent orientation)."""
    if prob.ndim != 2 or not np.isfinite(prob).all():
        raise ValueError(f"edge probability must be a finite (H, W) map, got {prob.shape}")
    p = np.clip(prob.astype(np.float32), 0.0, 1.0)
    s = cv2.GaussianBlur(p, (0, 0), cfg.orient_sigma) if cfg.orient_sigma > 0 else p
    gy = cv2.Sobel(s, cv2.CV_32F, 0, 1, ksize=3)
    gx = cv2.Sobel(s, cv2.CV_32F, 1, 0, ksize=3)
    normal = np.mod(np.arctan2(gy, gx), np.pi).astype(np.float32)
    # across a ridge the gradient flips sign at the crest; its direction mod pi is the normal
    strength = non_max_suppression(p, normal) if cfg.nms else p
    tangent = np.mod(normal + np.pi / 2, np.pi).astype(np.float32)
    return EdgeMap(strength.astype(np.float32), tangent)
