"""Networks for the training study: an MLP, a small CNN (the CPU default) and ResNet-18.

Every model maps images (N, 1, H, W) to ``out`` scores per image: (N, 1) for a binary
task, (N, K) for K classes.

- ``"mlp"``: flatten, 256 hidden units, ReLU.
- ``"cnn"``: two 3x3 convolutions (32 and 64 channels), each with ReLU and 2x2 max
  pooling, then 128 hidden units: the "two-layer CNN" of the issue's probe.
- ``"resnet18"``: torchvision's ResNet-18 adapted to small 1-channel images as is usual
  for 28x28 and 32x32 inputs: ``conv1`` a 3x3 stride-1 convolution from 1 channel and no
  initial max pooling (the 7x7 stride-2 stem with pooling would shrink 28x28 to 7x7
  before the first block).
"""
from __future__ import annotations

from torch import nn

__all__ = ["build_model", "MODELS"]

MODELS = ("mlp", "cnn", "resnet18")


def _cnn(image_hw: tuple[int, int], out: int) -> nn.Module:
    h, w = image_hw
    flat = 64 * (h // 4) * (w // 4)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, out))


def build_model(name: str, image_hw: tuple[int, int], out: int) -> nn.Module:
    """A fresh ``name`` model (initialised from torch's current RNG state)."""
    if name == "mlp":
        h, w = image_hw
        return nn.Sequential(nn.Flatten(), nn.Linear(h * w, 256), nn.ReLU(),
                             nn.Linear(256, out))
    if name == "cnn":
        return _cnn(image_hw, out)
    if name == "resnet18":
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=out)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        return net
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")
