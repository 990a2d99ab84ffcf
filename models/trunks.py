"""Convolutional trunks written here (no torchvision on CPU machines).

Three trunks, each with a frozen config dataclass and a ``pool5(x)`` method:

- ``vgg16``   VGG16 conv part (Wang, He & Gupta 2017). 96x96 -> pool5 (512, 3, 3).
- ``alexnet`` AlexNet (Wang & Gupta 2015, Caffe widths 96-256-384-384-256 with LRN).
              96x96 -> (256, 2, 2); 227x227 -> (256, 6, 6).
- ``resnet18`` ResNet-18 conv part. 96x96 -> layer4 (512, 3, 3).

Module names follow torchvision's matching models (``features.N`` for vgg16 without BN,
``conv1``/``bn1``/``layer*`` for resnet18) so ``models.export`` maps them with a table,
not guesswork. Inputs are float (N, 3, H, W) normalised with :func:`preprocess`; every op
works on channels-last tensors (no ``.view`` on activations).

Initialisation is seeded (``init_seed``): the same config gives the same random trunk, which
the ``random`` feature source and the random-init evaluation baseline rely on.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# ImageNet statistics: the normalisation torchvision-trained models (and transfer users) expect.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class VGG16Config:
    # No BatchNorm by default, as in the paper; He (fan-out) init keeps the 13-layer plain
    # net trainable from scratch (He et al. 2015 trained 22-layer plain VGG-style nets so),
    # and the cosine ranking loss is invariant to the feature scale that BN would pin down.
    batch_norm: bool = False
    widths: tuple[int, ...] = (64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1)  # fmt: skip  # VGG "D"; -1 = 2x2 max-pool
    init_seed: int = 0  # seeded init: same config -> same random trunk


@dataclass(frozen=True)
class AlexNetConfig:
    # Caffe AlexNet widths used by Wang & Gupta 2015 (torchvision's are 64-192-384-256-256;
    # pass widths=TORCHVISION_ALEXNET_WIDTHS for a shape-compatible export).
    widths: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256)
    lrn: bool = True  # local response norm after conv1/conv2 as in the 2015 (Caffe) network
    init_seed: int = 0  # seeded init: same config -> same random trunk


@dataclass(frozen=True)
class ResNet18Config:
    zero_init_residual: bool = False  # torchvision default; True helps large-batch runs
    init_seed: int = 0  # seeded init: same config -> same random trunk


TORCHVISION_ALEXNET_WIDTHS = (64, 192, 384, 256, 256)
TrunkConfig = VGG16Config | AlexNetConfig | ResNet18Config


class Trunk(nn.Module, abc.ABC):
    """Base: ``pool5(x)`` returns the last pooled conv map; ``forward`` is ``pool5``."""

    name: str = ""
    out_channels: int = 0
    config: TrunkConfig

    @abc.abstractmethod
    def pool5(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float -> the last pooled conv map, e.g. (N, 512, 3, 3) for vgg16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool5(x)

    def pool5_shape(self, input_size: int) -> tuple[int, int, int]:
        """(C, h, w) of ``pool5`` for a square input of ``input_size`` pixels."""
        with torch.no_grad():
            was_training = self.training
            self.eval()
            p = next(self.parameters())
            out = self.pool5(torch.zeros(1, 3, input_size, input_size, dtype=p.dtype))
            self.train(was_training)
        return (int(out.shape[1]), int(out.shape[2]), int(out.shape[3]))


def _init_weights(module: nn.Module, seed: int) -> None:
    """He init for convs (torchvision's scheme), N(0, 0.01) for linears, seeded."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01, generator=g)
            nn.init.zeros_(m.bias)


class VGG16(Trunk):
    name = "vgg16"

    def __init__(self, cfg: VGG16Config = VGG16Config()) -> None:
        super().__init__()
        self.config = cfg
        layers: list[nn.Module] = []
        c_in = 3
        for w in cfg.widths:
            if w == -1:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(c_in, w, kernel_size=3, padding=1))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU(inplace=True))
            c_in = w
        self.features = nn.Sequential(*layers)  # torchvision's name and indices
        self.out_channels = c_in
        _init_weights(self, cfg.init_seed)

    def pool5(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class AlexNet(Trunk):
    name = "alexnet"

    def __init__(self, cfg: AlexNetConfig = AlexNetConfig()) -> None:
        super().__init__()
        self.config = cfg
        w1, w2, w3, w4, w5 = cfg.widths
        layers: list[nn.Module] = [nn.Conv2d(3, w1, kernel_size=11, stride=4, padding=2)]
        layers.append(nn.ReLU(inplace=True))
        if cfg.lrn:
            layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0))
        layers += [nn.MaxPool2d(3, 2), nn.Conv2d(w1, w2, kernel_size=5, padding=2)]
        layers.append(nn.ReLU(inplace=True))
        if cfg.lrn:
            layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0))
        layers += [nn.MaxPool2d(3, 2)]
        layers += [nn.Conv2d(w2, w3, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(w3, w4, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(w4, w5, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)]
        self.features = nn.Sequential(*layers)
        self.out_channels = w5
        _init_weights(self, cfg.init_seed)

    def pool5(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, same attribute names."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(Trunk):
    name = "resnet18"

    def __init__(self, cfg: ResNet18Config = ResNet18Config()) -> None:
        super().__init__()
        self.config = cfg
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128, 1))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256, 1))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512, 1))
        self.out_channels = 512
        _init_weights(self, cfg.init_seed)
        if cfg.zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def pool5(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


_REGISTRY: dict[str, tuple[type[Trunk], type[Any]]] = {
    "vgg16": (VGG16, VGG16Config),
    "alexnet": (AlexNet, AlexNetConfig),
    "resnet18": (ResNet18, ResNet18Config),
}
TRUNK_NAMES = tuple(_REGISTRY)


def trunk_config(name: str, **cfg: Any) -> TrunkConfig:
    """The config dataclass for ``name`` with ``cfg`` overrides (lists become tuples)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown trunk {name!r}; valid names: {', '.join(TRUNK_NAMES)}")
    config: TrunkConfig = config_from_options(_REGISTRY[name][1], cfg, name)
    return config


def config_from_options(cls: type[Any], options: dict[str, Any], what: str) -> Any:
    """``cls(**options)`` for a config dataclass; unknown keys are a KeyError listing the
    valid ones, lists become tuples (frozen configs stay hashable)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise KeyError(f"unknown {what} option(s) {unknown}; valid: {sorted(fields)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


def build_trunk(name: str, **cfg: Any) -> Trunk:
    """Build trunk ``name`` ("vgg16" | "alexnet" | "resnet18") with config overrides.

    Unknown names raise ``KeyError`` listing the valid ones. Weights are random (seeded by
    ``init_seed``); load trained ones with :func:`load_checkpoint_trunk`.
    """
    config = trunk_config(name, **cfg)
    return _REGISTRY[name][0](config)


def dense_resnet18(name: str, options: dict[str, Any], network: str) -> ResNet18:
    """The ResNet-18 trunk of a dense (per-pixel) network that reads only its first three
    stages (the edge and grouping networks). ``layer4`` is frozen, so DDP does not wait for
    its gradients, and kept at its seeded init, so the state dict stays a whole ResNet-18
    for :func:`load_checkpoint_trunk`. Another ``name`` -> KeyError naming the valid one."""
    if name != "resnet18":
        raise KeyError(f"{network} trunk {name!r} unsupported; valid: resnet18")
    trunk = build_trunk(name, **options)
    assert isinstance(trunk, ResNet18)
    trunk.layer4.requires_grad_(False)
    return trunk


def trunk_spec(trunk: Trunk) -> dict[str, Any]:
    """JSON-able description ``{"name", "config"}`` that :func:`build_trunk` rebuilds."""
    return {"name": trunk.name, "config": dataclasses.asdict(trunk.config)}


def load_checkpoint_trunk(path: str | Path, map_location: str = "cpu") -> Trunk:
    """Load the trunk of a checkpoint written by ``models.train`` (``weights_only=True``).

    The checkpoint holds ``trunk_spec`` ({"name", "config"}) and ``model`` (the network's
    state dict with the trunk under ``trunk.``). Returns the trunk in eval mode.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "trunk_spec" not in ckpt or "model" not in ckpt:
        raise ValueError(
            f"{path} is not a models.train checkpoint (expected keys 'trunk_spec' and 'model')"
        )
    spec = ckpt["trunk_spec"]
    trunk = build_trunk(spec["name"], **spec["config"])
    state = {k[len("trunk.") :]: v for k, v in ckpt["model"].items() if k.startswith("trunk.")}
    trunk.load_state_dict(state, strict=True)
    return trunk.eval()


def preprocess(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, ImageNet-normalised, channels-last."""
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) uint8 RGB, got {tuple(t.shape)} {t.dtype}")
    x = t.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def pool5_features(
    trunk: Trunk, images: np.ndarray, batch_size: int = 128, device: str | torch.device = "cpu"
) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, C*h*w) float32 L2-normalised flattened pool5."""
    trunk = trunk.to(device).eval()
    out: list[np.ndarray] = []
    for i in range(0, len(images), batch_size):
        x = preprocess(images[i : i + batch_size]).to(device)
        f = trunk.pool5(x).flatten(1).float()
        out.append(nn.functional.normalize(f, dim=1).cpu().numpy())
    if not out:
        c, h, w = trunk.pool5_shape(int(images.shape[1]) if images.ndim == 4 else 96)
        return np.zeros((0, c * h * w), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
