"""The benchmark models in plain PyTorch (no torchvision), equal in structure to jaxcnn's.

Layer for layer the networks of ``jaxcnn.models.create``: same convolutions, paddings, strides,
norms, pooling, heads and parameter counts (``benchmarks.run`` asserts the counts match the
jaxcnn model's ``params``). Layout is PyTorch's NCHW; the runner converts a model to
``channels_last`` itself.

* ``lenet5``: LeNet-5 (tanh, 2x2 average pooling), 32x32x1 input, 61,706 parameters.
* ``resnet18``: ResNet-18 with the CIFAR stem (3x3 stride-1 convolution, no max pool),
  32x32x3 input, 10 classes, 11,173,962 parameters.
* ``vgg16``: VGG-16 without BatchNorm, 224x224x3, 1,000 classes, 138,357,544 parameters (as
  jaxcnn, the 7x7x512 map is flattened directly: torchvision's adaptive 7x7 pool is the
  identity at 224x224).
* ``resnet50``: ResNet-50 v1.5 (stride on the 3x3 convolution), 224x224x3, 1,000 classes,
  25,557,032 parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["BUILDERS", "build", "count_params"]


class LeNet5(nn.Module):
    """LeNet-5 as ``jaxcnn.models.create("lenet5")``: three VALID 5x5 convolutions, tanh."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
            nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    # 3x3 pads 1 and 1x1 pads 0 on both sides, as jaxcnn's blocks (and torchvision) do.
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class _Block(nn.Module):
    """ResNet v1 basic (expansion 1) or bottleneck (expansion 4, stride on the 3x3) block."""

    def __init__(self, c_in: int, width: int, stride: int, bottleneck: bool):
        super().__init__()
        c_out = width * (4 if bottleneck else 1)
        if bottleneck:
            layers = (_conv_bn(c_in, width, 1, 1) + [nn.ReLU(inplace=True)]
                      + _conv_bn(width, width, 3, stride) + [nn.ReLU(inplace=True)]
                      + _conv_bn(width, c_out, 1, 1))
        else:
            layers = (_conv_bn(c_in, width, 3, stride) + [nn.ReLU(inplace=True)]
                      + _conv_bn(width, width, 3, 1))
        self.residual = nn.Sequential(*layers)
        self.shortcut = (nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))
                         if stride != 1 or c_in != c_out else nn.Identity())
        self.out_channels = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet v1.5 as ``jaxcnn.models.ResNet``: stem, four stages, global average pool, head."""

    def __init__(self, stage_sizes: tuple[int, ...], bottleneck: bool, num_classes: int,
                 cifar_stem: bool):
        super().__init__()
        if cifar_stem:
            stem = _conv_bn(3, 64, 3, 1) + [nn.ReLU(inplace=True)]
        else:
            stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        blocks, c_in = [], 64
        for i, n_blocks in enumerate(stage_sizes):
            for j in range(n_blocks):
                block = _Block(c_in, 64 * 2**i, 2 if i > 0 and j == 0 else 1, bottleneck)
                blocks.append(block)
                c_in = block.out_channels
        self.features = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class VGG16(nn.Module):
    """VGG-16 (configuration D) as ``jaxcnn.models.create("vgg16")``: dense head, dropout 0.5."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers, c_in = [], 3
        for i, n_convs in enumerate((2, 2, 3, 3, 3)):
            width = min(64 * 2**i, 512)
            for _ in range(n_convs):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(7 * 7 * 512, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    "lenet5": LeNet5,
    "resnet18": lambda num_classes: ResNet((2, 2, 2, 2), False, num_classes, cifar_stem=True),
    "vgg16": VGG16,
    "resnet50": lambda num_classes: ResNet((3, 4, 6, 3), True, num_classes, cifar_stem=False),
}
"""Benchmark model name -> ``builder(num_classes) -> torch.nn.Module``."""


def build(name: str, num_classes: int) -> nn.Module:
    """The PyTorch twin of benchmark model ``name`` (one of :data:`BUILDERS`).

    Args:
        name: ``"lenet5"``, ``"resnet18"`` (CIFAR stem), ``"vgg16"`` or ``"resnet50"``.
        num_classes: size of the classification head.

    Example:
        >>> count_params(build("lenet5", 10))
        61706
    """
    if name not in BUILDERS:
        raise ValueError(f"`name` must be one of {sorted(BUILDERS)}, got {name!r}; add a "
                         f"builder to benchmarks.torch_models.BUILDERS for a new model.")
    return BUILDERS[name](num_classes)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, as in jaxcnn's state).

    Example:
        >>> count_params(build("resnet18", 10))
        11173962
    """
    return sum(p.numel() for p in model.parameters())
