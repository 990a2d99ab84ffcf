"""The method catalog: names, unknown names, every entry builds and steps."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from models import dist, methods
from models.config import TrainConfig
from models.steps import StepContext

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_method_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="unknown method 'nope'; valid: ranking, mask, context"):
        methods.get("nope")
    with pytest.raises(KeyError, match="valid: ranking, mask, context"):
        TrainConfig(task="nope")


def test_every_method_builds_its_network_with_its_paper_trunk() -> None:
    for name in methods.names():
        m = methods.get(name)
        assert m.name == name
        assert TrainConfig(task=name).trunk == m.default_trunk
        # alexnet keeps it cheap; edges and grouping read ResNet-18 stages, so their own trunk
        trunk = "resnet18" if m.default_trunk == "resnet18" else "alexnet"
        cfg = methods.network_config(name, trunk=trunk)
        net = methods.build_network(cfg)
        assert isinstance(net, torch.nn.Module) and hasattr(net, "trunk")
    with pytest.raises(KeyError, match="unknown option|valid"):
        methods.network_config("ranking", no_such_option=1)


def test_a_method_object_can_be_registered_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    calls = []
    base = methods.get("context")

    def step(model, batch, step, sc):  # type: ignore[no-untyped-def]
        calls.append(step)
        return base.step(model, batch, step, sc)

    monkeypatch.setitem(methods.CATALOG, "context2", replace(base, name="context2", step=step))
    assert methods.get("context2").step is step
    assert "context2" in methods.names()
    model = methods.build_network(methods.network_config("context", trunk="alexnet"))
    batch = {
        "a": torch.zeros(2, 96, 96, 3, dtype=torch.uint8),
        "b": torch.zeros(2, 96, 96, 3, dtype=torch.uint8),
        "label": torch.tensor([0, 3]),
    }
    sc = StepContext(
        dist.DistContext(0, 1, 0, torch.device("cpu"), None), torch.device("cpu"), False,
        None, None, 0, False, 0,
    )  # fmt: skip
    loss, stats = methods.get("context2").step(model, batch, 0, sc)
    assert calls == [0] and torch.isfinite(loss) and set(stats) == {"loss", "accuracy"}


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_layers_import_one_way() -> None:
    """pipeline/ never imports models/; tasks.graph and tasks.train never import each other."""
    for path in (ROOT / "pipeline").glob("*.py"):
        assert not any(m == "models" or m.startswith("models.") for m in _imports(path)), path
    assert not any(m.startswith("tasks.graph") for m in _imports(ROOT / "tasks" / "train.py"))
    assert not any(m.startswith("tasks.train") for m in _imports(ROOT / "tasks" / "graph.py"))
