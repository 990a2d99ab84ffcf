"""The task layer's feature sources: network sources from models, HOG from pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.features import FeatureConfig, embed
from pipeline.shapes import ShapeConfig, shape_patches
from tasks.feature_source import build_source


@pytest.fixture(scope="module")
def shapes() -> tuple[np.ndarray, np.ndarray]:
    return shape_patches(ShapeConfig(n_per_kind=50, seed=3))


def test_unknown_source_lists_network_and_compute_names() -> None:
    with pytest.raises(KeyError, match=r"checkpoint.*hog.*random"):
        build_source(FeatureConfig(source="nope"))
    assert build_source(FeatureConfig(source="hog")).dim == 4356


def test_random_trunk_source_seeded(shapes) -> None:  # type: ignore[no-untyped-def]
    p, _ = shapes
    cfg = FeatureConfig(source="random", trunk="resnet18", init_seed=1, device="cpu")
    a = embed(p[:4], build_source(cfg))
    b = embed(p[:4], build_source(cfg))
    assert a.shape == (4, 512 * 3 * 3)
    assert a.tobytes() == b.tobytes()
    c = embed(p[:4], build_source(FeatureConfig(source="random", trunk="resnet18", init_seed=2)))
    assert a.tobytes() != c.tobytes()


def test_checkpoint_source_loads_weights_only(tmp_path, shapes) -> None:  # type: ignore[no-untyped-def]
    from models import trunks

    p, _ = shapes
    t = trunks.build_trunk("resnet18", init_seed=7)
    state = {f"trunk.{k}": v for k, v in t.state_dict().items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"trunk_spec": trunks.trunk_spec(t), "model": state}, path)
    src = build_source(FeatureConfig(source="checkpoint", checkpoint=str(path)))
    ref = build_source(FeatureConfig(source="random", trunk="resnet18", init_seed=7))
    np.testing.assert_array_equal(embed(p[:3], src), embed(p[:3], ref))
    assert src.spec()["checkpoint"] == str(path)
    with pytest.raises(ValueError, match="checkpoint"):
        build_source(FeatureConfig(source="checkpoint"))


@pytest.mark.gpu
def test_trunk_source_on_cuda_matches_cpu(shapes) -> None:  # type: ignore[no-untyped-def]
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    p, _ = shapes
    cfg = FeatureConfig(source="random", trunk="resnet18", init_seed=3)
    gpu = build_source(cfg)
    assert gpu.spec()["device"] == "cuda"
    cpu = build_source(FeatureConfig(source="random", trunk="resnet18", init_seed=3, device="cpu"))
    a = embed(p[:8], gpu).astype(np.float32)
    b = embed(p[:8], cpu).astype(np.float32)
    assert (a * b).sum(axis=1).min() > 0.999  # same features up to float rounding
