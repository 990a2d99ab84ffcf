"""Export a trained trunk with torchvision's parameter names, for transfer.

    python -m models.export CHECKPOINT OUT.pt

Detection and segmentation frameworks load backbones by torchvision's names; the export holds
only the convolutional part, so load it with ``strict=False`` into the full model (the
classifier stays as it is) or strictly into its ``features`` / trunk:

- vgg16 (with or without BN) and alexnet: ``features.<i>.*``. Our trunks already use
  torchvision's ``features`` indices for vgg16/vgg16_bn. Our alexnet may insert LRN layers
  (the 2015 network), so its convs are renumbered to torchvision's indices 0, 3, 6, 8, 10;
  shapes match torchvision only with ``widths=TORCHVISION_ALEXNET_WIDTHS`` (the Caffe widths
  are exported under the same names, for a model built with those widths).
- resnet18: ``conv1``, ``bn1``, ``layer1..4`` (BN running stats included), as in torchvision.

The file is a plain state dict (``torch.load(weights_only=True)`` reads it).
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from models.checkpoint import save_atomic
from models.trunks import VGG16, AlexNet, ResNet18, Trunk, load_checkpoint_trunk

TORCHVISION_ALEXNET_CONVS = (0, 3, 6, 8, 10)  # indices of the 5 convs in torchvision's features


def torchvision_state_dict(trunk: Trunk) -> OrderedDict[str, torch.Tensor]:
    """The trunk's parameters and buffers under torchvision's names."""
    state = trunk.state_dict()
    if isinstance(trunk, VGG16 | ResNet18):
        return OrderedDict((k, v.detach().clone()) for k, v in state.items())
    if isinstance(trunk, AlexNet):
        convs = [i for i, m in enumerate(trunk.features) if isinstance(m, nn.Conv2d)]
        rename = dict(zip(convs, TORCHVISION_ALEXNET_CONVS, strict=True))
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for k, v in state.items():
            _, idx, rest = k.split(".", 2)
            out[f"features.{rename[int(idx)]}.{rest}"] = v.detach().clone()
        return out
    raise TypeError(f"no torchvision naming for trunk {type(trunk).__name__}")


def export(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the torchvision-named trunk weights of a models.train checkpoint."""
    trunk = load_checkpoint_trunk(checkpoint)
    return save_atomic(dict(torchvision_state_dict(trunk)), out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("models.export", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("out")
    a = p.parse_args(argv)
    path = export(a.checkpoint, a.out)
    print(f"models.export: wrote {path}")


if __name__ == "__main__":
    main()
