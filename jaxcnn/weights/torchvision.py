"""torchvision ``state_dict`` s -> jaxcnn variables: :func:`from_torchvision`, and the models.

Supported: ``alexnet_torchvision`` (torchvision's ``alexnet``), ``vgg11`` ... ``vgg19`` and
their ``_bn`` forms, ``resnet18`` ... ``resnet152``, ``densenet121`` ... ``densenet201`` and
``googlenet``, each the jaxcnn model of that name (:func:`torchvision_model` adds the one
structure option needed: VGG's ``adaptive_pool=7``, torchvision's ``AdaptiveAvgPool2d((7, 7))``).

Save the ``state_dict`` without pickle, e.g.
``safetensors.torch.save_file(torchvision.models.resnet50(weights="DEFAULT").state_dict(),
"resnet50.safetensors")`` or ``np.savez("resnet50.npz", **{k: v.numpy() for k, v in
sd.items()})``; ``.pt``/``.pth`` files are refused (:func:`jaxcnn.weights.io.read_state_dict`).
Keys are torchvision's (``layer1.0.conv1.weight``, ``features.denseblock1.denselayer1.norm1.
weight``; DenseNet's old ``norm.1`` form is accepted too). BatchNorm's
``num_batches_tracked`` is ignored, and so are GoogLeNet's ``aux1.*``/``aux2.*`` unless the
model is built with ``aux_logits=True`` (torchvision's pretrained file has them, and drops them
for inference the same way). Inputs are NHWC; torchvision's ImageNet preprocessing (mean/std
normalisation) stays the caller's; for GoogLeNet's pretrained weights pass
``transform_input=True`` to the model, as torchvision does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import flax.linen as nn
import numpy as np

from jaxcnn import models
from jaxcnn.weights import _layout
from jaxcnn.weights.io import PathLike, read_state_dict

__all__ = ["TORCHVISION_MODELS", "from_torchvision", "torchvision_model"]

Plan = dict[_layout.LeafPath, _layout.Source]
_Planner = Callable[[nn.Module, _layout.Template], Plan]


def _plan(template: _layout.Template, prefix: Callable[[tuple[str, ...]], str],
          flattened: dict[tuple[str, ...], int] | None = None) -> Plan:
    """Plan of every module, ``prefix(module_path)`` its PyTorch name; ``flattened`` maps the
    dense modules that read an NCHW-flattened map to its channels."""
    plan = {}
    for module, leaves in template.modules().items():
        dense = _layout.dense_kernel_from_torch
        if flattened and module in flattened:
            dense = partial(_layout.dense_kernel_from_torch_nchw, channels=flattened[module])
        plan.update(_layout.torch_sources(prefix(module), leaves, template, dense))
    return plan


def _out_channels(template: _layout.Template, module: str) -> int:
    return int(template.leaves[("params", module, "kernel")].shape[-1])


def _alexnet(model: nn.Module, template: _layout.Template) -> Plan:
    names = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
             "conv4": "features.8", "conv5": "features.10", "fc6": "classifier.1",
             "fc7": "classifier.4", "fc8": "classifier.6"}
    return _plan(template, lambda path: names.get(path[0], path[0]),
                 {("fc6",): _out_channels(template, "conv5")})


def _vgg(model: nn.Module, template: _layout.Template) -> Plan:
    # torchvision's ``features`` is one Sequential: conv, [bn], relu per convolution and a
    # pool per block, numbered in that order.
    names, index = {"fc1": "classifier.0", "fc2": "classifier.3",
                    "predictions": "classifier.6"}, 0
    last = ""
    for i, n_convs in enumerate(model.stage_sizes, start=1):
        for j in range(1, n_convs + 1):
            last = names[f"block{i}_conv{j}"] = f"features.{index}"
            if model.batch_norm:
                names[f"block{i}_bn{j}"] = f"features.{index + 1}"
            index += 3 if model.batch_norm else 2
        index += 1
    last_conv = next(k for k, v in names.items() if v == last)
    flattened = {("fc1",): _out_channels(template, last_conv)} if model.include_top else {}
    return _plan(template, lambda path: names.get(path[0], path[0]), flattened)


def _resnet_name(path: tuple[str, ...]) -> str:
    top = {"stem_conv": "conv1", "stem_bn": "bn1", "head": "fc"}
    if len(path) == 1:
        return top.get(path[0], path[0])
    stage, block = re.fullmatch(r"stage(\d+)_block(\d+)", path[0]).groups()
    inner = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
    return f"layer{stage}.{int(block) - 1}.{inner.get(path[1], path[1])}"


def _densenet_name(path: tuple[str, ...]) -> str:
    return "classifier" if path == ("head",) else "features." + ".".join(path)


def _googlenet_name(path: tuple[str, ...]) -> str:
    # ``branch2_0`` is torchvision's Sequential ``branch2.0``; ``head`` is ``fc``.
    return "fc" if path == ("head",) else ".".join(re.sub(r"_(\d)$", r".\1", p) for p in path)


@dataclass(frozen=True)
class _Spec:
    planner: _Planner
    epsilon: float | None = 1e-5
    head: str = "fc.bias"
    options: dict[str, Any] = field(default_factory=dict)


def _by_rule(rule: Callable[[tuple[str, ...]], str]) -> _Planner:
    return lambda model, template: _plan(template, rule)


TORCHVISION_MODELS: dict[str, _Spec] = {
    "alexnet_torchvision": _Spec(_alexnet, None, "classifier.6.bias"),
    **{f"vgg{d}{bn}": _Spec(_vgg, 1e-5 if bn else None, "classifier.6.bias",
                            {"adaptive_pool": 7})
       for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    **{f"resnet{d}": _Spec(_by_rule(_resnet_name)) for d in (18, 34, 50, 101, 152)},
    **{f"densenet{d}": _Spec(_by_rule(_densenet_name), head="classifier.bias")
       for d in (121, 161, 169, 201)},
    "googlenet": _Spec(_by_rule(_googlenet_name), 1e-3),
}
"""jaxcnn model name -> how torchvision lays out its ``state_dict``."""

# DenseNet checkpoints from before torchvision 0.3 name ``norm1`` ``norm.1`` (and so on).
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|"
    r"running_var))$")


def _spec(model_name: str) -> _Spec:
    if model_name not in TORCHVISION_MODELS:
        hint = " (torchvision's alexnet is 'alexnet_torchvision')" if model_name == "alexnet" \
            else ""
        raise ValueError(f"no torchvision import for model {model_name!r}{hint}; supported: "
                         f"{', '.join(sorted(TORCHVISION_MODELS))}.")
    return TORCHVISION_MODELS[model_name]


def torchvision_model(model_name: str, num_classes: int = 1000, **options: Any) -> nn.Module:
    """The jaxcnn model with the structure of torchvision's model of the same name.

    ``jaxcnn.models.create(model_name, num_classes, **torchvision_options, **options)``; the
    only structure option is VGG's ``adaptive_pool=7``.

    Args:
        model_name: one of :data:`TORCHVISION_MODELS`.
        num_classes: size of the classifier; default 1000.
        **options: other model options (``aux_logits``, ``transform_input`` for GoogLeNet,
            ``dtype``, ...).

    Example:
        >>> torchvision_model("vgg16").adaptive_pool
        7
    """
    spec = _spec(model_name)
    return models.create(model_name, num_classes, **{**spec.options, **options})


def from_torchvision(model_name: str, path: PathLike, *,
                     input_shape: tuple[int, int, int] = (224, 224, 3),
                     **options: Any) -> dict[str, Any]:
    """Variables for :func:`torchvision_model` ``(model_name, ...)`` from a torchvision
    ``state_dict`` saved as ``.safetensors`` or ``.npz``.

    Converts layouts once (:mod:`jaxcnn.weights._layout`: OIHW kernels to HWIO, ``Linear``
    weights transposed, the first classifier layer of VGG/AlexNet permuted from PyTorch's NCHW
    flatten to NHWC) and checks everything: a missing key, an unused key and a mis-shaped
    tensor raise one ``ValueError`` naming, for each, the torchvision key, the jaxcnn path and
    the shapes. The file is never unpickled.

    Args:
        model_name: e.g. ``"resnet50"``, ``"vgg16_bn"``, ``"densenet121"``, ``"googlenet"``,
            ``"alexnet_torchvision"``.
        path: a ``.safetensors`` or ``.npz`` file of the ``state_dict``.
        input_shape: ``(H, W, C)`` used to trace the model's shapes; default 224x224x3 (no
            torchvision model's parameters depend on it).
        **options: model options, as for :func:`torchvision_model`; ``num_classes`` defaults
            to the size of the file's classifier.

    Returns:
        ``{"params": ..., "batch_stats": ...}`` (no ``batch_stats`` for AlexNet and plain
        VGG) for ``torchvision_model(model_name, **options).apply``.

    Raises:
        ValueError: for an unsupported model, a pickle or unreadable file, or any tensor that
            does not fit (all listed at once).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "resnet18.npz")
        >>> np.savez(path, **{"fc.weight": np.zeros((10, 512), np.float32),
        ...                   "fc.bias": np.zeros(10, np.float32)})
        >>> from_torchvision("resnet18", path)
        Traceback (most recent call last):
        ...
        ValueError: cannot import '...resnet18.npz': 100 problem(s)
          missing: torchvision 'layer1.0.bn1.running_mean' for batch_stats/stage1_block1/bn1/mean...
        >>> from_torchvision("alexnet", path)
        Traceback (most recent call last):
        ...
        ValueError: no torchvision import for model 'alexnet' (torchvision's alexnet is ...
    """
    spec = _spec(model_name)
    tensors = {_DENSENET_OLD_KEY.sub(r"\1\2", key): value
               for key, value in read_state_dict(path).items()}
    if "num_classes" not in options and spec.head in tensors:
        options["num_classes"] = int(np.shape(tensors[spec.head])[0])
    model = torchvision_model(model_name, **options)
    template = _layout.make_template(model, input_shape)
    _layout.check_bn_epsilon(
        template, spec.epsilon, f"torchvision's {model_name}",
        f"build it with jaxcnn.weights.torchvision_model({model_name!r}) or keep its `norm`.")
    keep_aux = bool(getattr(model, "aux_logits", True))

    def ignore(key: str) -> bool:
        return key.endswith(".num_batches_tracked") or (
            not keep_aux and key.startswith(("aux1.", "aux2.")))

    return _layout.assemble(template, spec.planner(model, template), tensors,
                            source="torchvision", file=path, ignore=ignore)
