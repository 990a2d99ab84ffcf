"""Trunks: shapes, seeded init, catalog errors, checkpoint loading, channels-last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.trunks import (
    TRUNK_NAMES,
    build_trunk,
    load_checkpoint_trunk,
    pool5_features,
    preprocess,
    trunk_spec,
)


@pytest.mark.parametrize(
    ("name", "size", "shape"),
    [
        ("vgg16", 96, (512, 3, 3)),
        ("alexnet", 96, (256, 2, 2)),
        ("alexnet", 227, (256, 6, 6)),
        ("resnet18", 96, (512, 3, 3)),
    ],
)
def test_pool5_shapes(name: str, size: int, shape: tuple[int, int, int]) -> None:
    trunk = build_trunk(name)
    assert trunk.pool5_shape(size) == shape
    assert trunk.out_channels == shape[0]


def test_vgg16_batchnorm_flag_uses_torchvision_layout() -> None:
    plain = build_trunk("vgg16")
    bn = build_trunk("vgg16", batch_norm=True)
    assert "features.0.weight" in plain.state_dict() and "features.2.weight" in plain.state_dict()
    # vgg16_bn: conv, bn, relu -> the second conv sits at index 3
    assert "features.1.running_mean" in bn.state_dict() and "features.3.weight" in bn.state_dict()
    assert bn.pool5_shape(96) == (512, 3, 3)


def test_unknown_name_and_option_list_valid_ones() -> None:
    with pytest.raises(KeyError, match="vgg16, alexnet, resnet18"):
        build_trunk("vgg19")
    with pytest.raises(KeyError, match="batch_norm"):
        build_trunk("vgg16", batchnorm=True)


def test_init_is_seeded() -> None:
    a, b = build_trunk("resnet18"), build_trunk("resnet18")
    c = build_trunk("resnet18", init_seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["conv1.weight"], sc["conv1.weight"])


@pytest.mark.parametrize("name", TRUNK_NAMES)
def test_channels_last_matches_contiguous(name: str) -> None:
    trunk = build_trunk(name).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = trunk.pool5(x)
        cl = trunk.to(memory_format=torch.channels_last).pool5(
            x.contiguous(memory_format=torch.channels_last)
        )
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)


def test_load_checkpoint_trunk_roundtrip(tmp_path: Path) -> None:
    trunk = build_trunk("alexnet", widths=[8, 16, 16, 16, 8], init_seed=3)
    state = {"trunk." + k: v for k, v in trunk.state_dict().items()}
    state["head.fc.weight"] = torch.zeros(2, 2)
    path = tmp_path / "ckpt.pt"
    torch.save({"trunk_spec": trunk_spec(trunk), "model": state}, path)
    loaded = load_checkpoint_trunk(path)
    assert loaded.config == trunk.config
    for k, v in trunk.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a models.train checkpoint"):
        load_checkpoint_trunk(tmp_path / "other.pt")


def test_preprocess_and_features() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((2, 96, 96, 3), np.float32))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)
    feats = pool5_features(
        build_trunk("vgg16", widths=[8, -1, 8, -1, 8, -1, 8, -1, 8, -1]), images, batch_size=2
    )
    assert feats.shape == (5, 8 * 3 * 3) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
