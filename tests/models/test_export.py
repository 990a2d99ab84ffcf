"""Exports load into torchvision-named reference models (written here: no torchvision)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from models.export import export, torchvision_state_dict
from models.trunks import TORCHVISION_ALEXNET_WIDTHS, build_trunk, trunk_spec

# --- minimal references with torchvision's module names (torchvision/models/{vgg,alexnet,resnet}.py)
VGG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class RefVGG(nn.Module):
    def __init__(self, batch_norm: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                assert isinstance(v, int)
                layers.append(nn.Conv2d(c, v, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 10))


class RefAlexNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Linear(256 * 6 * 6, 10))


class RefBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)


class RefResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (a, b, s) in enumerate(chans, 1):
            setattr(self, f"layer{i}", nn.Sequential(RefBlock(a, b, s), RefBlock(b, b, 1)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x


def _roundtrip(trunk: nn.Module, tmp_path: Path) -> dict[str, torch.Tensor]:
    ckpt = tmp_path / "ckpt.pt"
    state = {"trunk." + k: v for k, v in trunk.state_dict().items()}
    torch.save({"trunk_spec": trunk_spec(trunk), "model": state}, ckpt)  # type: ignore[arg-type]
    out = export(ckpt, tmp_path / "export.pt")
    return dict(torch.load(out, weights_only=True))


@pytest.mark.parametrize("bn", [False, True])
def test_vgg16_export_loads_into_torchvision_names(tmp_path: Path, bn: bool) -> None:
    trunk = build_trunk("vgg16", batch_norm=bn, init_seed=4).eval()
    ref = RefVGG(bn).eval()
    result = ref.load_state_dict(_roundtrip(trunk, tmp_path), strict=False)
    assert not result.unexpected_keys
    assert set(result.missing_keys) == {"classifier.0.weight", "classifier.0.bias"}
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ref.features(x), trunk.pool5(x))


def test_alexnet_export_renumbers_convs_to_torchvision_indices(tmp_path: Path) -> None:
    trunk = build_trunk("alexnet", widths=list(TORCHVISION_ALEXNET_WIDTHS), lrn=False).eval()
    ref = RefAlexNet().eval()
    ref.features.load_state_dict(
        {k[len("features.") :]: v for k, v in _roundtrip(trunk, tmp_path).items()}, strict=True
    )
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        torch.testing.assert_close(ref.features(x), trunk.pool5(x))
    # the 2015 network (LRN layers shift our indices) is exported under the same names
    names = set(torchvision_state_dict(build_trunk("alexnet")))
    assert names == {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}


def test_resnet18_export_loads_into_torchvision_names(tmp_path: Path) -> None:
    trunk = build_trunk("resnet18", init_seed=2)
    trunk.train()
    with torch.no_grad():  # move the BN running stats away from their init
        trunk.pool5(torch.randn(4, 3, 64, 64))
    trunk.eval()
    ref = RefResNet18().eval()
    result = ref.load_state_dict(_roundtrip(trunk, tmp_path), strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) == {"fc.weight", "fc.bias"}
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ref.features(x), trunk.pool5(x))


def test_export_cli_prints_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from models.export import main

    trunk = build_trunk("resnet18")
    torch.save(
        {
            "trunk_spec": trunk_spec(trunk),
            "model": {"trunk." + k: v for k, v in trunk.state_dict().items()},
        },
        tmp_path / "c.pt",
    )
    main([str(tmp_path / "c.pt"), str(tmp_path / "out.pt")])
    assert f"wrote {tmp_path / 'out.pt'}" in capsys.readouterr().out
    assert "layer4.1.bn2.running_var" in torch.load(tmp_path / "out.pt", weights_only=True)
