"""Counting (Noroozi, Pirsiavash & Favaro, ICCV 2017): crops, network, loss, step, checks.

Batch builder (one frame of the ``frames`` table -> one example): a random square crop x of
``2 * tile`` = 228 px; D x = x downsampled by 2 with an interpolation drawn per example from
``interpolations`` (bicubic, bilinear, Lanczos, area); T1..T4 x = its four ``tile`` = 114 px
quadrants. The step takes y = another image of the batch (the next one) for the contrastive
term. Against shortcuts (the paper's section 4): the random interpolation (a fixed one lets
the network tell D x from tiles by its blur), ``gray_share`` = 67% of examples grayscale (the
same for all six inputs), and each input standardised (zero mean, unit std) on its own.

Network ``CountingNet``: a shared AlexNet-style trunk, fc 4096 - 4096 - ``n_counts`` = 1000
with a ReLU on the output (counts are non-negative). Loss per example

    |phi(D x) - sum_j phi(T_j x)|^2 + max(0, M - |phi(D y) - sum_j phi(T_j x)|^2),  M = 10.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.methods.base import Method, MethodData, flat_dim, init_hidden_he, init_linears
from models.methods.context import ContextColumns, FrameDataset, load_frames
from models.methods.jigsaw import FRAMES, random_square
from models.sampling import Item
from models.steps import StepContext
from models.trunks import build_trunk

if TYPE_CHECKING:
    import pyarrow as pa

    from models.config import TrainConfig

U8 = npt.NDArray[np.uint8]
INTERPOLATIONS = {
    "cubic": cv2.INTER_CUBIC,
    "linear": cv2.INTER_LINEAR,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
}
GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as cv2.COLOR_RGB2GRAY


@dataclass(frozen=True)
class CountingConfig:
    """Example construction and loss (TrainConfig.crop keys); sources in docs/training.md."""

    tile: int = 114  # the paper's 114 x 114 inputs: tiles and the downsampled crop
    interpolations: tuple[str, ...] = tuple(INTERPOLATIONS)  # drawn per example (paper sec. 4)
    gray_share: float = 0.67  # the paper: 67% of the examples grayscale
    margin: float = 10.0  # M of the contrastive term (the paper)

    def __post_init__(self) -> None:
        bad = [m for m in self.interpolations if m not in INTERPOLATIONS]
        if bad or not self.interpolations:
            raise KeyError(f"unknown interpolation(s) {bad}; valid: {sorted(INTERPOLATIONS)}")
        if not 0 <= self.gray_share <= 1 or self.margin <= 0 or self.tile < 16:
            raise ValueError("need gray_share in [0, 1], margin > 0 and tile >= 16")


def downsample(crop: U8, size: int, method: str) -> U8:
    return np.asarray(cv2.resize(crop, (size, size), interpolation=INTERPOLATIONS[method]))


def quadrants(crop: U8) -> U8:
    """(2t, 2t, 3) -> (4, t, t, 3): top-left, top-right, bottom-left, bottom-right."""
    t = crop.shape[0] // 2
    return np.stack([crop[:t, :t], crop[:t, t:], crop[t:, :t], crop[t:, t:]])


def assemble(tiles: U8) -> U8:
    """Inverse of :func:`quadrants`: (4, t, t, 3) -> (2t, 2t, 3)."""
    return np.concatenate(
        [np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0
    )


class CountingDataset(FrameDataset):
    """Item ``(row, sample_seed)`` -> down (t, t, 3), tiles (4, t, t, 3) uint8 colour, gray
    (bool: the step grays all six inputs), interp (index into cfg.interpolations), row."""

    def __init__(self, frames: pa.Array, cfg: CountingConfig) -> None:
        super().__init__(frames)
        self.cfg = cfg

    def __getitem__(self, item: Item) -> dict[str, Any]:
        row, seed = item
        r, frame, skipped = self.frame(row)
        rng = np.random.default_rng(seed)
        crop = random_square(frame, 2 * self.cfg.tile, rng)
        k = int(rng.integers(0, len(self.cfg.interpolations)))
        down = downsample(crop, self.cfg.tile, self.cfg.interpolations[k])
        gray = bool(rng.random() < self.cfg.gray_share)
        return {"down": down, "tiles": quadrants(crop), "gray": gray, "interp": k,
                "row": r, "skipped": skipped}  # fmt: skip


def collate_counting(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "down": torch.from_numpy(np.stack([it["down"] for it in items])),
        "tiles": torch.from_numpy(np.stack([it["tiles"] for it in items])),
        "gray": torch.tensor([it["gray"] for it in items], dtype=torch.bool),
        "interp": torch.tensor([it["interp"] for it in items], dtype=torch.int64),
        "row": torch.tensor([it["row"] for it in items], dtype=torch.int64),
        "skipped": [r for it in items for r in it["skipped"]],
    }


@dataclass(frozen=True)
class CountingNetConfig:
    trunk: str = "alexnet"  # the paper's AlexNet
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 114  # the paper's 114 x 114 inputs
    hidden: int = 4096  # fc6 and fc7 (the paper: AlexNet's fc 4096 - 4096)
    n_counts: int = 1000  # fc8: the counting vector (the paper: 1000, ReLU)
    # fc8's init std (ours). Measured on the demo's frames (AlexNet, lr 0.001, batch 8): He
    # gives a first count error of 972 and inf at step 2; 0.001 starts at 1.8 (M = 10) and
    # stays finite. Too small a value on a narrow head leaves every count ~0, where the loss
    # is M and flat (a 64-wide toy head needs ~0.2, its He value).
    count_init_std: float = 0.001


class CountingNet(nn.Module):
    """(N, 3, t, t) float -> (N, n_counts) non-negative counts."""

    def __init__(self, cfg: CountingNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        self.head = nn.Sequential(
            nn.Linear(flat_dim(self.trunk, cfg.input_size), cfg.hidden), nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden, cfg.n_counts), nn.ReLU(),
        )  # fmt: skip
        init_linears(self.head, self.trunk.config.init_seed + 1)
        # fc6, fc7 He-initialised (stacked N(0, 0.01) fc starve the signal), the counts at
        # N(0, count_init_std): see CountingNetConfig.count_init_std
        fcs = [m for m in self.head if isinstance(m, nn.Linear)]
        init_hidden_he(fcs[:2], self.trunk.config.init_seed + 2)
        g = torch.Generator().manual_seed(self.trunk.config.init_seed + 3)
        nn.init.normal_(fcs[2].weight, 0.0, cfg.count_init_std, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pool5(x).flatten(1))


def counting_loss(
    phi_dx: torch.Tensor, phi_tiles: torch.Tensor, phi_dy: torch.Tensor, margin: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """phi_dx, phi_dy (N, K), phi_tiles (N, 4, K) -> (mean loss, stats)."""
    total = phi_tiles.sum(dim=1)
    err = (phi_dx - total).pow(2).sum(dim=1)
    other = (phi_dy - total).pow(2).sum(dim=1)
    hinge = torch.relu(margin - other)
    loss = (err + hinge).mean()
    return loss, {
        "loss": float(loss.detach()),
        "count_error": float(err.detach().mean()),
        "other_distance": float(other.detach().mean()),
        "active_hinges": float((hinge.detach() > 0).float().mean()),
    }


def prepare(images: torch.Tensor, gray: torch.Tensor, sc: StepContext) -> torch.Tensor:
    """(M, t, t, 3) uint8 + (M,) bool -> (M, 3, t, t) float: grayed where asked, then each
    image standardised on its own."""
    x = images.to(sc.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    w = torch.tensor(GRAY, device=x.device).view(1, 3, 1, 1)
    g = gray.to(x.device).view(-1, 1, 1, 1)
    x = torch.where(g, (x * w).sum(dim=1, keepdim=True).expand_as(x), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    fmt = torch.channels_last if sc.channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)


def counts(
    model: nn.Module, down: torch.Tensor, tiles: torch.Tensor, gray: torch.Tensor,
    sc: StepContext,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """phi(D x), phi(T x) (N, 4, K), phi(D y) with y the next image of the batch; the six
    inputs of an example share its gray flag."""
    n = down.shape[0]
    imgs = torch.cat([down, tiles.flatten(0, 1), down.roll(-1, dims=0)])
    flags = torch.cat([gray, gray.repeat_interleave(4), gray])
    with sc.autocast():
        phi = model(prepare(imgs, flags, sc)).float()
    return phi[:n], phi[n : 5 * n].reshape(n, 4, -1), phi[5 * n :]


def counting_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    if batch["down"].shape[0] < 2:
        raise ValueError("counting needs at least 2 images per batch and rank (y != x)")
    dx, tiles, dy = counts(model, batch["down"], batch["tiles"], batch["gray"], sc)
    loss, stats = counting_loss(dx, tiles, dy, sc.loss.margin)
    stats["units_active"] = float((dx.detach() > 0).any(dim=0).float().sum())
    return loss, stats


@torch.no_grad()
def pretext_checks(
    model: nn.Module, batches: list[dict[str, Any]], sc: StepContext
) -> dict[str, Any]:
    """On held-back examples: the counting error |phi(D x) - sum phi(T x)|^2 with D x made by
    each interpolation (the paper's shortcut test: a method the network never saw should not
    cost much more), beside the floor of the same code on another image's D y; and the
    count units that are ever non-zero (the rest are dead)."""
    cfg: CountingConfig = sc.loss
    was = model.training
    model.eval()
    errs: dict[str, list[float]] = {m: [] for m in INTERPOLATIONS}
    other: list[float] = []
    active: torch.Tensor | None = None
    for b in batches:
        tiles = b["tiles"]
        crops = [assemble(t.numpy()) for t in tiles]
        for m in INTERPOLATIONS:
            down = torch.from_numpy(np.stack([downsample(c, cfg.tile, m) for c in crops]))
            dx, ts, dy = counts(model, down, tiles, b["gray"], sc)
            errs[m].extend((dx - ts.sum(1)).pow(2).sum(1).cpu().tolist())
            if m == cfg.interpolations[0]:
                other.extend((dy - ts.sum(1)).pow(2).sum(1).cpu().tolist())
            seen = torch.cat([dx, ts.flatten(0, 1)]).gt(0).any(dim=0).cpu()
            active = seen if active is None else active | seen
    model.train(was)
    return {
        "examples": len(other),
        "trained_on": list(cfg.interpolations),
        "count_error_by_interpolation": {m: round(float(np.mean(v)), 4) for m, v in errs.items()},
        "count_error_other_image": round(float(np.mean(other)), 4) if other else None,
        "units_ever_nonzero": int(active.sum()) if active is not None else 0,
        "units": int(active.numel()) if active is not None else 0,
    }


def build_data(cfg: TrainConfig) -> MethodData:
    frames = load_frames(cfg.data, ContextColumns(**{**vars(FRAMES), **cfg.columns}),
                         cfg.registry or None)  # fmt: skip
    ds = CountingDataset(frames, CountingConfig(**cfg.crop))
    return MethodData(ds, collate_counting, np.ones(len(ds)), 6)


METHOD = Method(
    name="counting",
    network_config=CountingNetConfig,
    network=CountingNet,
    default_trunk="alexnet",  # the paper's network
    build_data=build_data,
    step=counting_step,
    pretext_checks=pretext_checks,
    loss_config=lambda cfg: CountingConfig(**cfg.crop),
)
