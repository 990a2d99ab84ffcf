"""Per-frame feature maps for mask propagation, one function per source.

Every source maps (T, H, W, 3) uint8 RGB frames to (T, C, h, w) float32 maps; the caller
(``pipeline.propagation.propagate``) normalises cells and brings labels to the grid.

- ``grouping`` / ``random``: ``models.grouping.GroupingNet`` (trained, or its seeded random
  init: the "random network" baseline, same architecture), 32-d at 1/4 of the input.
- ``trunk``: a trained trunk (the Triplet-Siamese and context networks) cut at stride 8
  (VGG16 after pool3: 256 channels; ResNet-18 after layer2: 128; AlexNet after pool1: 96),
  where a map still has the resolution propagation needs (pool5 is stride 32).
- ``hog``: HOG cells (9 unsigned orientations, ``cell`` px, L2-normalised per cell) with the
  cell's (y, x) position / the map's diagonal appended, times ``coord_weight``: the paper's
  "HOG + coordinates" baseline.
- ``pca_colours``: the first three principal components of an embedding map as an RGB image
  (the run report's view of what the network groups).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.grouping import GroupingNet, GroupingNetConfig
from models.trunks import VGG16, AlexNet, ResNet18, Trunk, preprocess

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


def _check_frames(frames: U8) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")


def load_grouping_net(path: str | Path | None, init_seed: int = 0) -> GroupingNet:
    """The grouping network of a ``models.train`` checkpoint (task grouping), or, with
    ``path`` None, the random network of the same architecture (seeded)."""
    if path is None:
        return GroupingNet(GroupingNetConfig(trunk_options={"init_seed": init_seed})).eval()
    from models import checkpoint as ckpt_io

    ck = ckpt_io.load(path)
    if ck.get("network", {}).get("kind") != "grouping":
        raise ValueError(
            f"{path} holds a {ck.get('network', {}).get('kind')!r} network, not grouping"
        )
    net = GroupingNet(GroupingNetConfig(**ck["network"]["config"]))
    net.load_state_dict(ck["model"])
    return net.eval()


@torch.no_grad()
def _run(fn: nn.Module, frames: U8, batch: int) -> F32:
    out = [
        fn(preprocess(frames[i : i + batch])).float().numpy() for i in range(0, len(frames), batch)
    ]
    return np.concatenate(out).astype(np.float32, copy=False)


def grouping_features(net: GroupingNet, frames: U8, batch: int = 4) -> F32:
    """(T, H, W, 3) -> (T, 32, H/4, W/4) embeddings."""
    _check_frames(frames)
    return _run(net.eval(), frames, batch)


class _Stride8(nn.Module):
    def __init__(self, trunk: Trunk) -> None:
        super().__init__()
        self.trunk = trunk.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        if isinstance(t, ResNet18):
            return t.layer2(t.layer1(t.maxpool(t.relu(t.bn1(t.conv1(x))))))
        if isinstance(t, VGG16 | AlexNet):
            target = x.shape[2] // 8
            for layer in t.features:
                x = layer(x)
                if x.shape[2] <= target:
                    return x
            return x
        raise TypeError(f"no stride-8 cut for trunk {t.name!r}")


def trunk_features(trunk: Trunk, frames: U8, batch: int = 4) -> F32:
    """(T, H, W, 3) -> (T, C, ~H/8, ~W/8): the trunk's activations at stride 8."""
    _check_frames(frames)
    return _run(_Stride8(trunk), frames, batch)


def hog_features(frames: U8, cell: int = 8, coord_weight: float = 1.0) -> F32:
    """(T, H, W, 3) -> (T, 9 + 2, H/cell, W/cell): per-cell HOG + scaled cell position."""
    from skimage.feature import hog

    _check_frames(frames)
    out = []
    for f in frames:
        h = hog(f, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(1, 1),
                feature_vector=False, channel_axis=-1)  # fmt: skip
        cells = np.asarray(h, np.float32)[:, :, 0, 0, :]  # (hc, wc, 9), L2-normalised blocks
        hc, wc = cells.shape[:2]
        diag = float(np.hypot(hc, wc))
        yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)
        coords = np.stack([yy, xx], axis=-1) / diag * coord_weight
        out.append(np.concatenate([cells, coords], axis=-1).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def pca_colours(emb: F32) -> U8:
    """(C, h, w) embedding -> (h, w, 3) uint8: its first 3 principal components (of the
    L2-normalised cells), each stretched over its 1st-99th percentile."""
    c, h, w = emb.shape
    x = emb.reshape(c, -1).T.astype(np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = x @ vt[: min(3, vt.shape[0])].T
    if comps.shape[1] < 3:
        comps = np.pad(comps, ((0, 0), (0, 3 - comps.shape[1])))
    lo, hi = np.percentile(comps, 1, axis=0), np.percentile(comps, 99, axis=0)
    rgb = np.clip((comps - lo) / np.maximum(hi - lo, 1e-8), 0.0, 1.0)
    return (rgb.reshape(h, w, 3) * 255.0 + 0.5).astype(np.uint8)
