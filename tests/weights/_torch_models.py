"""Pure-PyTorch replicas of torchvision's AlexNet, VGG, ResNet, DenseNet and GoogLeNet.

torchvision cannot be installed beside the pinned torch, so the tests rebuild its models from
its source (``torchvision/models/{alexnet,vgg,resnet,densenet,googlenet}.py``): the same
modules, in the same containers, so ``state_dict()`` has torchvision's keys
(``features.0.weight``, ``layer1.0.downsample.1.running_var``,
``features.denseblock1.denselayer1.norm1.weight``, ``inception3a.branch2.0.conv.weight``).
Widths are parameters so the tests run small networks; at the defaults the shapes are
torchvision's too.
"""

from __future__ import annotations

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as err:   # pytest --doctest-modules imports every file under tests/
    import pytest

    pytest.skip(f"torch is not installed ({err})", allow_module_level=True)


def alexnet(widths=(64, 192, 384, 256, 256), fc=4096, num_classes=1000) -> nn.Module:
    w1, w2, w3, w4, w5 = widths
    model = nn.Module()
    model.features = nn.Sequential(
        nn.Conv2d(3, w1, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(w1, w2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(w2, w3, 3, padding=1), nn.ReLU(),
        nn.Conv2d(w3, w4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(w4, w5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
    model.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    model.classifier = nn.Sequential(
        nn.Dropout(), nn.Linear(w5 * 36, fc), nn.ReLU(), nn.Dropout(), nn.Linear(fc, fc),
        nn.ReLU(), nn.Linear(fc, num_classes))
    model.forward = lambda x: model.classifier(torch.flatten(model.avgpool(model.features(x)), 1))
    return model


VGG_CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
               19: (2, 2, 4, 4, 4)}


def vgg(depth: int, batch_norm: bool, width=64, fc=4096, num_classes=1000) -> nn.Module:
    layers, channels = [], 3
    for i, n in enumerate(VGG_CONFIGS[depth]):
        out = min(width * 2 ** i, 8 * width)
        for _ in range(n):
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
        layers.append(nn.MaxPool2d(2, 2))
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    model.classifier = nn.Sequential(
        nn.Linear(channels * 49, fc), nn.ReLU(), nn.Dropout(), nn.Linear(fc, fc), nn.ReLU(),
        nn.Dropout(), nn.Linear(fc, num_classes))
    model.forward = lambda x: model.classifier(torch.flatten(model.avgpool(model.features(x)), 1))
    return model


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu, self.downsample = nn.ReLU(), downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)   # v1.5
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu, self.downsample = nn.ReLU(), downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


RESNET_CONFIGS = {18: (_BasicBlock, (2, 2, 2, 2)), 34: (_BasicBlock, (3, 4, 6, 3)),
                  50: (_Bottleneck, (3, 4, 6, 3)), 101: (_Bottleneck, (3, 4, 23, 3)),
                  152: (_Bottleneck, (3, 8, 36, 3))}


class ResNet(nn.Module):
    def __init__(self, depth: int, width=64, num_classes=1000):
        super().__init__()
        block, stages = RESNET_CONFIGS[depth]
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, n in enumerate(stages):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width * 2 ** i, n,
                                                             1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _DenseLayer(nn.Sequential):
    def __init__(self, inputs, growth_rate, bn_size):
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(inputs))
        self.add_module("relu1", nn.ReLU())
        self.add_module("conv1", nn.Conv2d(inputs, bn_size * growth_rate, 1, bias=False))
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth_rate))
        self.add_module("relu2", nn.ReLU())
        self.add_module("conv2", nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1,
                                           bias=False))


class _DenseBlock(nn.Module):
    def __init__(self, num_layers, inputs, bn_size, growth_rate):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            _DenseLayer(inputs + i * growth_rate, growth_rate, bn_size))

    def forward(self, x):
        for layer in self.children():
            x = torch.cat([x, layer(x)], 1)
        return x


# torchvision's densenet{121,161,169,201}: (block_config, growth_rate, num_init_features)
DENSENET_CONFIGS = {121: ((6, 12, 24, 16), 32, 64), 161: ((6, 12, 36, 24), 48, 96),
                    169: ((6, 12, 32, 32), 32, 64), 201: ((6, 12, 48, 32), 32, 64)}


def densenet(block_config=(6, 12, 24, 16), growth_rate=32, num_init_features=64, bn_size=4,
             num_classes=1000) -> nn.Module:
    features = nn.Sequential()
    features.add_module("conv0", nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False))
    features.add_module("norm0", nn.BatchNorm2d(num_init_features))
    features.add_module("relu0", nn.ReLU())
    features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
    channels = num_init_features
    for i, n in enumerate(block_config):
        features.add_module(f"denseblock{i + 1}", _DenseBlock(n, channels, bn_size, growth_rate))
        channels += n * growth_rate
        if i != len(block_config) - 1:
            transition = nn.Sequential()
            transition.add_module("norm", nn.BatchNorm2d(channels))
            transition.add_module("relu", nn.ReLU())
            transition.add_module("conv", nn.Conv2d(channels, channels // 2, 1, bias=False))
            transition.add_module("pool", nn.AvgPool2d(2, 2))
            features.add_module(f"transition{i + 1}", transition)
            channels //= 2
    features.add_module("norm5", nn.BatchNorm2d(channels))
    model = nn.Module()
    model.features = features
    model.classifier = nn.Linear(channels, num_classes)
    model.forward = lambda x: model.classifier(torch.flatten(
        nn.functional.adaptive_avg_pool2d(nn.functional.relu(model.features(x)), 1), 1))
    return model


class _BasicConv2d(nn.Module):
    def __init__(self, inputs, out, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(inputs, out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out, eps=0.001)

    def forward(self, x):
        return nn.functional.relu(self.bn(self.conv(x)))


class _Inception(nn.Module):
    def __init__(self, inputs, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = _BasicConv2d(inputs, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(_BasicConv2d(inputs, ch3x3red, kernel_size=1),
                                     _BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(_BasicConv2d(inputs, ch5x5red, kernel_size=1),
                                     _BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     _BasicConv2d(inputs, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class _InceptionAux(nn.Module):
    def __init__(self, inputs, num_classes, conv=128, hidden=1024):
        super().__init__()
        self.conv = _BasicConv2d(inputs, conv, kernel_size=1)
        self.fc1 = nn.Linear(conv * 16, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)


GOOGLENET_TABLE = (
    ("inception3a", (64, 96, 128, 16, 32, 32)), ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("inception4a", (192, 96, 208, 16, 48, 64)), ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)), ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
    ("inception5b", (384, 192, 384, 48, 128, 128)))


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet; ``width`` scales every channel count as jaxcnn's option."""

    def __init__(self, width=1.0, num_classes=1000, aux_logits=True, transform_input=False):
        super().__init__()
        w = lambda c: max(1, round(c * width))   # noqa: E731
        self.transform_input = transform_input
        self.conv1 = _BasicConv2d(3, w(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = _BasicConv2d(w(64), w(64), kernel_size=1)
        self.conv3 = _BasicConv2d(w(64), w(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        channels, self.order = w(192), []
        for name, table in GOOGLENET_TABLE:
            widths = [w(c) for c in table]
            setattr(self, name, _Inception(channels, *widths))
            channels = widths[0] + widths[2] + widths[4] + widths[5]
            self.order.append(name)
            if name == "inception3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
                self.order.append("maxpool3")
            if name == "inception4e":
                self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
                self.order.append("maxpool4")
            if aux_logits and name in ("inception4a", "inception4d"):
                aux = _InceptionAux(channels, num_classes, w(128), w(1024))
                setattr(self, "aux1" if name == "inception4a" else "aux2", aux)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        if self.transform_input:
            x = torch.cat([x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                           x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                           x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5], 1)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        for name in self.order:
            x = getattr(self, name)(x)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


def randomize(model: nn.Module, x: torch.Tensor, seed: int) -> None:
    """Random weights, He-normal kernels, and BatchNorm statistics calibrated on ``x``.

    Biases and BatchNorm shifts ``N(0, 0.1^2)``, scales ``U(0.1, 0.4)``; one training-mode
    pass with ``momentum=1`` sets the running statistics to ``x``'s batch statistics, then
    they are perturbed (variance times ``U(0.8, 1.25)``, mean plus 0.05 std) so that the test
    batch does not reproduce them (see ``tests/weights/_keras_helpers.calibrate``).
    """
    rng = np.random.default_rng(seed)

    def draw(shape, kind):
        if kind == "kernel":
            return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        if kind == "scale":
            return rng.uniform(0.1, 0.4, shape)
        return 0.1 * rng.standard_normal(shape)

    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.copy_(torch.as_tensor(draw(module.weight.shape, "kernel")))
                if module.bias is not None:
                    module.bias.copy_(torch.as_tensor(draw(module.bias.shape, "bias")))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.as_tensor(draw(module.weight.shape, "scale")))
                module.bias.copy_(torch.as_tensor(draw(module.bias.shape, "bias")))
        for norm in norms:
            norm.momentum = 1.0
        model.train()
        model(x)
        model.eval()
        for norm in norms:
            norm.momentum = 0.1
            var = norm.running_var.numpy()
            norm.running_mean += torch.as_tensor(
                0.05 * np.sqrt(var) * rng.standard_normal(var.shape), dtype=torch.float32)
            norm.running_var *= torch.as_tensor(rng.uniform(0.8, 1.25, var.shape),
                                                dtype=torch.float32)
