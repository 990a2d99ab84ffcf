"""Labelled patches of synthetic objects of a few kinds (known answers for clustering).

`shape_patches` draws, on a noisy background of random colour, one object per patch:
a filled disc, a filled square, a triangle, a cross, a ring or horizontal bars, with
random colour, size (+-15%), position (+-6 px) and rotation (+-10 degrees for the polygons).
Objects of one kind look alike up to those nuisances, so a good clustering puts each child
cluster inside one kind. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

KINDS = ("disc", "square", "triangle", "cross", "ring", "bars")


@dataclass(frozen=True)
class ShapeConfig:
    n_per_kind: int = 60  # enough for a few 4-member children per kind
    kinds: tuple[str, ...] = KINDS  # which objects to draw
    size: int = 96  # patch size of the 2017 paper
    jitter: int = 6  # px of random shift: look varies, kind does not
    noise: float = 12.0  # std of background noise (grey levels)
    seed: int = 0  # explicit randomness


def _polygon(
    kind: str, c: npt.NDArray[np.float64], r: float, angle: float
) -> npt.NDArray[np.int32]:
    if kind == "square":
        base = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.8
    elif kind == "triangle":
        t = np.deg2rad([90, 210, 330])
        base = np.stack([np.cos(t), -np.sin(t)], axis=1)
    else:  # cross
        a, b = 1.0, 0.3
        base = np.array(
            [[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b],
             [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]], float,
        )  # fmt: skip
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = base @ rot.T * r + c
    return np.round(pts).astype(np.int32)


def draw_shape(
    kind: str, size: int, rng: np.random.Generator, jitter: int = 6, noise: float = 12.0
) -> npt.NDArray[np.uint8]:
    """One (size, size, 3) uint8 RGB patch showing an object of `kind`."""
    if kind not in KINDS:
        raise KeyError(f"unknown shape {kind!r}; valid: {list(KINDS)}")
    bg = rng.integers(0, 256, size=3)
    fg = (bg + rng.integers(80, 176, size=3)) % 256  # far from the background per channel
    noisy = bg[None, None, :] + rng.normal(0, noise, size=(size, size, 3))
    img: npt.NDArray[np.uint8] = np.clip(noisy, 0, 255).astype(np.uint8)
    c = (size / 2 + rng.integers(-jitter, jitter + 1, size=2)).astype(np.float64)
    r = size * 0.3 * rng.uniform(0.85, 1.15)
    angle = np.deg2rad(rng.uniform(-10, 10))
    color = tuple(int(v) for v in fg)
    center = (int(c[0]), int(c[1]))
    if kind == "disc":
        cv2.circle(img, center, int(r), color, -1, cv2.LINE_AA)
    elif kind == "ring":
        cv2.circle(img, center, int(r), color, max(2, int(r * 0.25)), cv2.LINE_AA)
    elif kind == "bars":
        h = max(2, int(r * 0.22))
        for k in (-2, 0, 2):
            y = int(c[1]) + k * h
            cv2.rectangle(img, (int(c[0] - r), y - h // 2), (int(c[0] + r), y + h // 2), color, -1)
    else:
        cv2.fillPoly(img, [_polygon(kind, c, r, angle)], color, cv2.LINE_AA)
    return img


def shape_patches(
    cfg: ShapeConfig = ShapeConfig(),
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """(N, size, size, 3) uint8 RGB patches and (N,) int64 labels (index into cfg.kinds),
    N = n_per_kind * len(kinds), grouped by kind."""
    rng = np.random.default_rng(cfg.seed)
    patches = np.empty((cfg.n_per_kind * len(cfg.kinds), cfg.size, cfg.size, 3), np.uint8)
    labels = np.repeat(np.arange(len(cfg.kinds), dtype=np.int64), cfg.n_per_kind)
    for i, lab in enumerate(labels.tolist()):
        patches[i] = draw_shape(cfg.kinds[lab], cfg.size, rng, cfg.jitter, cfg.noise)
    return patches, labels
