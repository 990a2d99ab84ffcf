"""Patch features for clustering: named feature sources behind one interface, and PCA.

A *feature source* turns (N, 96, 96, 3) uint8 RGB patches into (N, D) float32 features.
Compute-only sources live in a registry keyed by name (`build_source(cfg)`; an unknown
name raises a KeyError listing the valid ones). Adding one is one call:

    register_source("lbp", "mypackage.lbp:LbpSource")   # lazy "module:function"
    register_source("lbp", my_factory)                  # or a callable

where the factory takes a `FeatureConfig` and returns an object with `name`, `dim`,
`spec()` (JSON-able description recorded with the output) and `embed(patches)`.

Built in: `hog` (Dalal-Triggs HOG, no network: the 2017 paper's ablation and the fast
default). Network sources (`random`, `checkpoint`, `context`, `tracking`: pool5 of a trunk)
are built by `models.feature_sources` and handed in by the task layer
(`tasks.feature_source.build_source`): compute here never depends on a network.

`embed` batches, L2-normalises and returns float16 (the storage type); PCA (`fit_pca`,
`apply_pca`) uses faiss.PCAMatrix and is fitted globally (ClusterParents), never per shard:
per-shard PCA bases would not be comparable.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import faiss
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FeatureConfig:
    source: str = "hog"  # DESIGN 4.5: the paper's ablation, no network; fast for small runs
    trunk: str = "vgg16"  # paper: VGG16 pool5 on 96x96 = 3x3x512 = 4608-d
    checkpoint: str = ""  # checkpoint file of network sources (models.train format)
    init_seed: int = 0  # seed of the untrained trunk for source="random"
    patch_size: int = 96  # paper: 96x96 patches
    batch_size: int = 128  # patches per forward pass (bounded memory; GPU-friendly)
    device: str = "auto"  # "auto" = CUDA when torch sees one, else CPU
    hog_orientations: int = 9  # Dalal & Triggs 2005
    hog_cell: int = 8  # 8x8-pixel cells, 2x2-cell blocks, stride one cell (Dalal & Triggs)


class FeatureSource(Protocol):
    name: str
    dim: int

    def spec(self) -> dict[str, Any]:
        """JSON-able description of the source (recorded with every embedding)."""
        ...

    def embed(self, patches: U8) -> F32:
        """(B, S, S, 3) uint8 RGB -> (B, dim) float32 (not necessarily normalised)."""
        ...


Factory = Callable[[FeatureConfig], FeatureSource]
_REGISTRY: dict[str, Factory | str] = {}


def register_source(name: str, factory: Factory | str) -> None:
    """Register a feature source: a factory(FeatureConfig) or a lazy "module:function"."""
    if isinstance(factory, str) and ":" not in factory:
        raise ValueError(f"lazy factory must be 'module:function', got {factory!r}")
    _REGISTRY[name] = factory


def source_names() -> list[str]:
    return sorted(_REGISTRY)


def build_source(cfg: FeatureConfig) -> FeatureSource:
    """The feature source named cfg.source; KeyError lists the valid names."""
    if cfg.source not in _REGISTRY:
        raise KeyError(f"unknown feature source {cfg.source!r}; valid: {source_names()}")
    factory = _REGISTRY[cfg.source]
    if isinstance(factory, str):
        mod, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(mod), attr)
        assert callable(factory)
    return factory(cfg)


def check_patches(patches: npt.NDArray[Any], size: int) -> U8:
    if patches.dtype != np.uint8 or patches.ndim != 4 or patches.shape[1:] != (size, size, 3):
        raise ValueError(
            f"patches must be (N, {size}, {size}, 3) uint8 RGB, got {patches.shape} {patches.dtype}"
        )
    return patches


def l2_normalize(x: npt.NDArray[Any]) -> F32:
    """Rows scaled to unit L2 norm (float32); all-zero rows stay zero."""
    xf = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(xf, axis=1, keepdims=True)
    return np.asarray(xf / np.maximum(n, 1e-12), dtype=np.float32)


def embed(
    patches: npt.NDArray[Any], source: FeatureSource, batch_size: int = 128
) -> npt.NDArray[np.float16]:
    """Features of (N, S, S, 3) uint8 patches: batched, L2-normalised, float16 (N, dim).

    A patch with an all-zero feature (e.g. HOG of a flat patch) stays zero; callers drop
    those rows before clustering (they have no direction).
    """
    out = np.zeros((patches.shape[0], source.dim), dtype=np.float16)
    for s in range(0, patches.shape[0], batch_size):
        f = source.embed(patches[s : s + batch_size])
        out[s : s + batch_size] = l2_normalize(f).astype(np.float16)
    return out


# ----------------------------------------------------------------------------- HOG


class HogSource:
    """HOG (Dalal & Triggs) of a colour patch: 9 orientations, 8x8 cells, 2x2-cell blocks
    with one-cell stride; 96x96 -> 11x11 blocks x 36 = 4356-d. OpenCV's HOGDescriptor
    (gradient = strongest colour channel, L2-Hys blocks), or scikit-image's when OpenCV
    lacks it (OpenCV 5); the backend is recorded in spec()."""

    name = "hog"

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        cell, size = cfg.hog_cell, cfg.patch_size
        if size % cell:
            raise ValueError(f"patch_size {size} must be a multiple of hog_cell {cell}")
        blocks = size // cell - 1
        self.dim = blocks * blocks * 4 * cfg.hog_orientations
        import cv2

        self._cv: Any = None
        if hasattr(cv2, "HOGDescriptor"):
            self._cv = cv2.HOGDescriptor(
                (size, size), (2 * cell, 2 * cell), (cell, cell), (cell, cell),
                cfg.hog_orientations,
            )  # fmt: skip
        self.backend = "opencv" if self._cv is not None else "skimage"

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "backend": self.backend,
            "orientations": self.cfg.hog_orientations,
            "cell": self.cfg.hog_cell,
            "patch_size": self.cfg.patch_size,
        }

    def embed(self, patches: U8) -> F32:
        check_patches(patches, self.cfg.patch_size)
        out = np.empty((patches.shape[0], self.dim), dtype=np.float32)
        if self._cv is not None:
            for i, p in enumerate(patches):
                out[i] = self._cv.compute(np.ascontiguousarray(p)).ravel()
            return out
        from skimage.feature import hog

        c = self.cfg.hog_cell
        for i, p in enumerate(patches):
            out[i] = hog(
                p, orientations=self.cfg.hog_orientations, pixels_per_cell=(c, c),
                cells_per_block=(2, 2), block_norm="L2-Hys", channel_axis=-1,
            )  # fmt: skip
        return out


register_source("hog", HogSource)


# ----------------------------------------------------------------------------- PCA


@dataclass(frozen=True)
class Pca:
    """y = normalize(matrix @ (x - mean)). mean: (d_in,), matrix: (d_out, d_in) float32,
    eigenvalues: (d_out,) float32 (variance kept per component, descending)."""

    mean: F32
    matrix: F32
    eigenvalues: F32
    train_size: int
    seed: int

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """For np.savez: everything needed to reapply the projection."""
        d = asdict(self)
        return {k: np.asarray(v) for k, v in d.items()}

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]]) -> Pca:
        return cls(
            mean=np.asarray(a["mean"], np.float32),
            matrix=np.asarray(a["matrix"], np.float32),
            eigenvalues=np.asarray(a["eigenvalues"], np.float32),
            train_size=int(a["train_size"]),
            seed=int(a["seed"]),
        )


def fit_pca(x: npt.NDArray[Any], dim: int, seed: int = 0, max_train: int = 200_000) -> Pca:
    """PCA to `dim` components with faiss.PCAMatrix on a seeded sample of <= max_train rows."""
    n, d = x.shape
    if not 1 <= dim <= d:
        raise ValueError(f"PCA dim must be in 1..{d}, got {dim}")
    if n < 2:
        raise ValueError(f"PCA needs >= 2 rows, got {n}")
    rows: npt.NDArray[np.int64] = np.arange(n, dtype=np.int64)
    if n > max_train:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_train, replace=False))
    sample = np.ascontiguousarray(x[rows], dtype=np.float32)
    pca = faiss.PCAMatrix(d, dim)
    pca.train(sample)
    mean = faiss.vector_to_array(pca.mean).astype(np.float32)
    matrix = faiss.vector_to_array(pca.A).astype(np.float32).reshape(-1, d)[:dim]
    eig = faiss.vector_to_array(pca.eigenvalues).astype(np.float32)[:dim]
    return Pca(mean, np.ascontiguousarray(matrix), eig, int(rows.size), seed)


def apply_pca(pca: Pca, x: npt.NDArray[Any], batch: int = 65536, whiten: bool = False) -> F32:
    """Project (N, d_in) rows and re-normalise: (N, d_out) float32 unit rows.

    ``whiten``: divide each component by the square root of its eigenvalue first (unit
    variance per component, as Noroozi et al. 2018 before K-means); eigenvalues below
    1e-6 of the largest are floored there, so near-empty directions are not blown up."""
    if x.shape[1] != pca.mean.shape[0]:
        raise ValueError(f"x has d={x.shape[1]}, PCA expects {pca.mean.shape[0]}")
    matrix = pca.matrix
    if whiten:
        eig = np.maximum(
            pca.eigenvalues, max(float(pca.eigenvalues.max(initial=0.0)), 1e-30) * 1e-6
        )
        matrix = (matrix / np.sqrt(eig)[:, None]).astype(np.float32)
    out = np.empty((x.shape[0], matrix.shape[0]), dtype=np.float32)
    for s in range(0, x.shape[0], batch):
        xb = np.asarray(x[s : s + batch], dtype=np.float32) - pca.mean
        out[s : s + batch] = l2_normalize(xb @ matrix.T)
    return out
