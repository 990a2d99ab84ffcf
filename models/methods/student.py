"""Student method: classify pseudo-labels (knowledge transfer, Noroozi et al. CVPR 2018).

A network trained *from scratch* to predict the cluster of each frame (``pseudo_labels``,
written by ClusterPseudoLabels from a teacher's features) is the transferred representation.

- Data: the ``frames`` table (JPEG bytes) joined to ``pseudo_labels`` on (video_id, frame).
  Each sample is a random square crop of ``crop_fraction`` of the frame's shorter side
  (227/256, the AlexNet ImageNet recipe the paper's student follows), mirrored with
  probability 1/2, resized to ``input_size``.
- Batches are drawn uniformly over clusters (the paper): each draw (with replacement) takes
  a row with probability 1 / (k * its cluster's size), so every cluster is equally likely
  whatever its size.
- Network ``StudentNet``: trunk (AlexNet by default, the paper's student) -> fc6 4096 ->
  ReLU -> dropout -> fc7 4096 -> ReLU -> dropout -> fc8 ``n_classes`` (the AlexNet
  classifier). ``n_classes`` must cover the labels (TrainStudent sets it to the table's k).
- Loss: cross-entropy; accuracy is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from models.images import crop_square, decode_rgb, first_decodable
from models.manifests import has_table, read_table, require_columns
from models.methods.base import Method, MethodData, flat_dim, init_hidden_he, init_linears
from models.sampling import Item
from models.steps import StepContext, to_input
from models.trunks import build_trunk

if TYPE_CHECKING:
    from models.config import TrainConfig


@dataclass(frozen=True)
class StudentColumns:
    frames_table: str = "frames"  # SampleFrames
    image: str = "jpeg"
    video: str = "video_id"
    frame: str = "frame"
    labels_table: str = "pseudo_labels"  # ClusterPseudoLabels
    label: str = "label"


@dataclass(frozen=True)
class StudentCropConfig:
    input_size: int = 227  # AlexNet input (Noroozi et al. 2018's student)
    crop_fraction: float = 227 / 256  # random crop of the shorter side, as 227 of 256
    flip: bool = True  # horizontal mirror with probability 1/2 (AlexNet recipe)


@dataclass(frozen=True)
class StudentNetConfig:
    trunk: str = "alexnet"  # Noroozi et al. 2018: AlexNet student
    trunk_options: dict[str, Any] = field(default_factory=dict)
    input_size: int = 227  # AlexNet input
    hidden: int = 4096  # fc6 and fc7 widths (AlexNet)
    dropout: float = 0.5  # AlexNet's fc dropout
    n_classes: int = 2000  # k of the pseudo-labels (paper: 2000)


@dataclass
class StudentData:
    """images: (N,) JPEG bytes; labels: (N,) int64; weights: (N,) float64 = 1 / cluster size."""

    images: pa.Array
    labels: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float64]
    k: int


def _holding(sources: Sequence[str | Path], table: str, registry: str | None) -> list[str | Path]:
    held = [s for s in sources if has_table(s, table, registry)]
    if not held:
        raise ValueError(f"no source among {list(sources)} holds table {table!r}")
    return held


def load_student_data(
    sources: str | Path | Sequence[str | Path],
    cols: StudentColumns = StudentColumns(),
    registry: str | None = None,
) -> StudentData:
    """Frames with a pseudo-label (sources may hold either table or both)."""
    srcs: list[str | Path] = [sources] if isinstance(sources, str | Path) else list(sources)
    frames = read_table(_holding(srcs, cols.frames_table, registry), cols.frames_table, registry)
    require_columns(frames, cols.frames_table, [cols.image, cols.video, cols.frame])
    labels = read_table(_holding(srcs, cols.labels_table, registry), cols.labels_table, registry)
    require_columns(labels, cols.labels_table, [cols.video, cols.frame, cols.label])
    keys = ["__video", "__frame"]
    f = pa.table(
        {keys[0]: frames[cols.video], keys[1]: frames[cols.frame], "__row": np.arange(len(frames))}
    )
    lab = pa.table(
        {keys[0]: labels[cols.video], keys[1]: labels[cols.frame], "__label": labels[cols.label]}
    )
    j = f.join(lab, keys, join_type="inner").sort_by("__row")
    if j.num_rows == 0:
        raise ValueError(
            f"no {cols.frames_table} row has a {cols.labels_table} row (joined on "
            f"{cols.video}, {cols.frame}): were the labels computed on these frames?"
        )
    y = np.asarray(j["__label"].to_numpy(), dtype=np.int64)
    if (y < 0).any():
        raise ValueError(f"{cols.labels_table}.{cols.label} has negative labels")
    k = int(y.max()) + 1
    sizes = np.bincount(y, minlength=k)
    rows = pa.array(j["__row"].to_numpy())
    return StudentData(
        images=pc.take(frames[cols.image], rows).combine_chunks(),
        labels=y,
        weights=1.0 / sizes[y].astype(np.float64),
        k=k,
    )


def random_crop(
    frame: npt.NDArray[np.uint8], cfg: StudentCropConfig, rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """(H, W, 3) uint8 -> (input_size, input_size, 3): random square crop, maybe mirrored."""
    h, w = frame.shape[:2]
    side = cfg.crop_fraction * min(h, w)
    cx = rng.uniform(side / 2, max(w - side / 2, side / 2))
    cy = rng.uniform(side / 2, max(h - side / 2, side / 2))
    out = crop_square(frame, cx, cy, side, cfg.input_size)
    if cfg.flip and rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
    return out


class StudentDataset(Dataset[dict[str, Any]]):
    """Item ``(row, sample_seed)`` -> image (S, S, 3) uint8, label, row, skipped."""

    def __init__(self, data: StudentData, cfg: StudentCropConfig = StudentCropConfig()) -> None:
        self.data, self.cfg = data, cfg

    def __len__(self) -> int:
        return len(self.data.labels)

    def __getitem__(self, item: Item) -> dict[str, Any]:
        row, seed = item
        r, frame, skipped = first_decodable(
            row, len(self), lambda i: decode_rgb(self.data.images[i].as_py()), "frame"
        )
        img = random_crop(frame, self.cfg, np.random.default_rng(seed))
        return {"image": img, "label": int(self.data.labels[r]), "row": r, "skipped": skipped}


def collate_student(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.from_numpy(np.stack([it["image"] for it in items])),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.int64),
        "row": torch.tensor([it["row"] for it in items], dtype=torch.int64),
        "skipped": [r for it in items for r in it["skipped"]],
    }


class StudentNet(nn.Module):
    def __init__(self, cfg: StudentNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.trunk = build_trunk(cfg.trunk, **cfg.trunk_options)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat_dim(self.trunk, cfg.input_size), cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity(),
            nn.Linear(cfg.hidden, cfg.n_classes),
        )
        init_linears(self.head, self.trunk.config.init_seed + 1)
        fc6, fc7 = self.head[1], self.head[4]
        assert isinstance(fc6, nn.Linear) and isinstance(fc7, nn.Linear)
        init_hidden_he([fc6, fc7], self.trunk.config.init_seed + 2)  # fc8 keeps N(0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pool5(x))


def student_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy over the pseudo-labels; returns (loss, accuracy)."""
    loss = F.cross_entropy(logits.float(), labels)
    return loss, float((logits.argmax(1) == labels).float().mean())


def student_step(
    model: nn.Module, batch: dict[str, Any], step: int, sc: StepContext
) -> tuple[torch.Tensor, dict[str, float]]:
    with sc.autocast():
        logits = model(to_input(batch["image"], sc))
    labels = batch["label"].to(sc.device)
    loss, acc = student_loss(logits, labels)
    return loss, {"loss": float(loss.detach()), "accuracy": acc, "chance": 1.0 / logits.shape[1]}


def build_data(cfg: TrainConfig) -> MethodData:
    data = load_student_data(cfg.data, StudentColumns(**cfg.columns), cfg.registry or None)
    n_classes = int(cfg.network.get("n_classes", StudentNetConfig.n_classes))
    if data.k > n_classes:
        raise ValueError(
            f"pseudo-labels go up to {data.k - 1} but the student has n_classes={n_classes}: "
            f"set network: {{n_classes: {data.k}}} (TrainStudent does it from the table's k)"
        )
    crop = {"input_size": int(cfg.network.get("input_size", StudentNetConfig.input_size))}
    ds = StudentDataset(data, StudentCropConfig(**{**crop, **cfg.crop}))
    return MethodData(ds, collate_student, data.weights, 1, replacement=True)


METHOD = Method(
    name="student",
    network_config=StudentNetConfig,
    network=StudentNet,
    default_trunk="alexnet",  # Noroozi et al. 2018
    build_data=build_data,
    step=student_step,
)
