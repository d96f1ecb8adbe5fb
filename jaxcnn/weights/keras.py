"""Keras applications weights -> jaxcnn variables: :func:`from_keras`, :func:`keras_model`.

Supported (``keras.applications`` name -> jaxcnn model):

========================  ===================  ===============================================
Keras                     jaxcnn               structure options (:func:`keras_model`)
========================  ===================  ===============================================
``VGG16``, ``VGG19``      ``vgg16``, ``vgg19`` none: same layers, same names
``ResNet50``              ``resnet50_keras``   conv biases, stride on the 1x1, BN eps 1.001e-5
``DenseNet121``           ``densenet121``      ``norm=KERAS_RESNET_BATCH_NORM`` (eps 1.001e-5)
``Xception``              ``xception``         none: Keras' layout (BN eps 1e-3)
========================  ===================  ===============================================

Files: Keras 3 ``model.save_weights("m.weights.h5")`` and the legacy HDF5 layout (Keras 2,
``model.save("m.h5")``, and the ``*_weights_tf_dim_ordering_tf_kernels*.h5`` files
``keras.applications`` downloads), read by :func:`jaxcnn.weights.io.read_keras_h5` without
TensorFlow or Keras. Layers are matched by name (Keras 2's ``conv1/conv`` is Keras 3's
``conv1_conv``); Keras' unnamed layers (Xception's shortcut ``conv2d``/``batch_normalization``,
whose numbers depend on the session) by their order.
Keras' preprocessing is not part of the model: feed what ``keras.applications.<model>.
preprocess_input`` returns (``"caffe"`` BGR mean subtraction for VGG and ResNet50, ``"torch"``
for DenseNet, ``"tf"`` [-1, 1] for Xception).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import flax.linen as nn

from jaxcnn import models
from jaxcnn.models.resnet import KERAS_RESNET_BATCH_NORM
from jaxcnn.weights import _layout
from jaxcnn.weights.io import PathLike, read_keras_h5

__all__ = ["KERAS_MODELS", "from_keras", "keras_model"]


class _Auto(NamedTuple):
    """A layer Keras names itself (``conv2d``, ``conv2d_7``, ...): matched by order."""

    prefix: str


def _same_name(path: tuple[str, ...]) -> str:
    return "_".join(path)


def _resnet_layer(path: tuple[str, ...]) -> str:
    top = {"stem_conv": "conv1_conv", "stem_bn": "conv1_bn", "head": "predictions"}
    if len(path) == 1:
        return top.get(path[0], path[0])
    stage, block = re.fullmatch(r"stage(\d+)_block(\d+)", path[0]).groups()
    kind, index = re.fullmatch(r"(conv|bn|downsample_conv|downsample_bn)(\d*)", path[1]).groups()
    if kind.startswith("downsample"):
        kind, index = kind.removeprefix("downsample_"), "0"
    return f"conv{int(stage) + 1}_block{block}_{index}_{kind}"


def _densenet_layer(path: tuple[str, ...]) -> str:
    top = {"conv0": "conv1_conv", "norm0": "conv1_bn", "norm5": "bn", "head": "predictions"}
    if len(path) == 1:
        return top.get(path[0], path[0])
    block = int(re.search(r"\d+", path[0]).group()) + 1
    if path[0].startswith("transition"):   # transition{i}/{norm, conv}
        return f"pool{block}_{'bn' if path[1] == 'norm' else 'conv'}"
    layer = re.search(r"\d+", path[1]).group()
    inner = {"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}[path[2]]
    return f"conv{block}_block{layer}_{inner}"


def _xception_layer(path: tuple[str, ...]) -> str | _Auto:
    if path[-1] == "residual_conv":
        return _Auto("conv2d")
    if path[-1] == "residual_bn":
        return _Auto("batch_normalization")
    return _same_name(path)


@dataclass(frozen=True)
class _Spec:
    keras_name: str
    layer: Callable[[tuple[str, ...]], str | _Auto]
    epsilon: float | None
    input_size: int = 224
    options: dict[str, Any] = field(default_factory=dict)


KERAS_MODELS: dict[str, _Spec] = {
    "vgg16": _Spec("VGG16", _same_name, None),
    "vgg19": _Spec("VGG19", _same_name, None),
    "resnet50_keras": _Spec("ResNet50", _resnet_layer, 1.001e-5),
    "densenet121": _Spec("DenseNet121", _densenet_layer, 1.001e-5,
                         options={"norm": KERAS_RESNET_BATCH_NORM}),
    "xception": _Spec("Xception", _xception_layer, 1e-3, input_size=299),
}
"""jaxcnn model name -> how its Keras counterpart is laid out (see the module docstring)."""


def _spec(model_name: str) -> _Spec:
    if model_name == "resnet50":
        raise ValueError("Keras' ResNet50 has conv biases and strides its 1x1 convolutions, "
                         "unlike jaxcnn's (torchvision's) 'resnet50': use "
                         "model_name='resnet50_keras'.")
    if model_name not in KERAS_MODELS:
        raise ValueError(f"no Keras import for model {model_name!r}; supported: "
                         f"{', '.join(sorted(KERAS_MODELS))}.")
    return KERAS_MODELS[model_name]


def keras_model(model_name: str, num_classes: int = 1000, **options: Any) -> nn.Module:
    """The jaxcnn model with the structure of Keras' ``keras.applications`` counterpart.

    ``jaxcnn.models.create(model_name, num_classes, **keras_options, **options)`` where the
    Keras options are listed in the module docstring (e.g. DenseNet-121's BatchNorm epsilon).

    Args:
        model_name: one of :data:`KERAS_MODELS` (``vgg16``, ``vgg19``, ``resnet50_keras``,
            ``densenet121``, ``xception``).
        num_classes: size of the classifier; default 1000.
        **options: other model options (``include_top=False`` for VGG, ``dtype``, ...).

    Example:
        >>> keras_model("densenet121").norm.keywords["epsilon"]
        1.001e-05
    """
    spec = _spec(model_name)
    return models.create(model_name, num_classes, **{**spec.options, **options})


def _resolve(layer: str | _Auto, ordinal: dict[tuple[str, ...], int],
             path: tuple[str, ...], auto_names: dict[str, list[str]]) -> str:
    if isinstance(layer, str):
        return layer
    candidates = auto_names.get(layer.prefix, [])
    index = ordinal[path]
    return candidates[index] if index < len(candidates) else f"<{layer.prefix} #{index + 1}>"


def from_keras(model_name: str, path: PathLike, *, input_shape: tuple[int, int, int] | None = None,
               **options: Any) -> dict[str, Any]:
    """Variables for :func:`keras_model` ``(model_name, ...)`` from a Keras weight file.

    Reads ``path`` (Keras 3 ``.weights.h5`` or legacy ``.h5``; see the module docstring),
    matches each layer to the jaxcnn module it feeds, converts layouts
    (:mod:`jaxcnn.weights._layout`) and checks everything: a layer missing from the file, a
    file layer the model does not use, a mis-shaped tensor and a BatchNorm epsilon that
    differs from Keras' all raise a ``ValueError`` naming the Keras weight, the jaxcnn path and
    the shapes. Nothing in the file is executed.

    Args:
        model_name: ``vgg16``, ``vgg19``, ``resnet50_keras``, ``densenet121`` or ``xception``.
        path: the weight file.
        input_shape: ``(H, W, C)`` the Keras model was built for; only VGG's ``fc1`` depends
            on it (``7 * 7 * 512`` inputs at 224x224). Default 224x224x3 (299x299x3 for
            Xception).
        **options: model options, as for :func:`keras_model`; ``num_classes`` defaults to the
            size of the file's ``predictions`` layer.

    Returns:
        ``{"params": ..., "batch_stats": ...}`` (no ``batch_stats`` for VGG) for
        ``keras_model(model_name, **options).apply``.

    Raises:
        ValueError: for an unsupported model, an unreadable file, or any tensor that does not
            fit (all listed at once).

    Example:
        >>> import os, tempfile
        >>> import h5py, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "vgg16.h5")
        >>> with h5py.File(path, "w") as f:      # a legacy file with one layer only
        ...     f["fc2/fc2/kernel:0"] = np.ones((4096, 4096), np.float32)
        ...     f["fc2/fc2/bias:0"] = np.zeros(4096, np.float32)
        ...     f["fc2"].attrs["weight_names"] = [b"fc2/kernel:0", b"fc2/bias:0"]
        ...     f.attrs["layer_names"] = [b"fc2"]
        >>> from_keras("vgg16", path)
        Traceback (most recent call last):
        ...
        ValueError: cannot import '...vgg16.h5': 30 problem(s)
          missing: Keras 'block1_conv1/bias' for params/block1_conv1/bias (64,)...
        >>> from_keras("resnet50", path)
        Traceback (most recent call last):
        ...
        ValueError: Keras' ResNet50 has conv biases ... use model_name='resnet50_keras'.
    """
    spec = _spec(model_name)
    # Keras 2 named DenseNet's stem "conv1/conv" and "conv1/bn" (its pretrained files still
    # do); Keras 3 forbids "/" in names and calls them "conv1_conv", "conv1_bn".
    layers = [(name.replace("/", "_"), arrays) for name, arrays in read_keras_h5(path)]
    found = dict(layers)
    if "num_classes" not in options and found.get("predictions"):   # every head's name
        options["num_classes"] = int(found["predictions"][-1].shape[-1])
    model = keras_model(model_name, **options)
    size = spec.input_size
    template = _layout.make_template(model, input_shape or (size, size, 3))
    _layout.check_bn_epsilon(
        template, spec.epsilon, f"Keras' {spec.keras_name}",
        f"build it with jaxcnn.weights.keras_model({model_name!r}) or keep its `norm`.")

    modules = template.modules()
    targets = {module: spec.layer(module) for module in modules}
    auto_names: dict[str, list[str]] = {}
    for name, _ in layers:
        match = re.fullmatch(r"(.*?)(?:_\d+)?", name)
        auto_names.setdefault(match.group(1), []).append(name)
    ordinal: dict[tuple[str, ...], int] = {}
    counters: dict[str, int] = {}
    for module, layer in targets.items():   # modules are in natural (model) order
        if isinstance(layer, _Auto):
            ordinal[module] = counters.get(layer.prefix, 0)
            counters[layer.prefix] = ordinal[module] + 1

    plan, kinds = {}, {}
    for module, leaves in modules.items():
        layer = _resolve(targets[module], ordinal, module, auto_names)
        kinds[layer] = _layout.keras_kind(leaves)
        plan.update(_layout.keras_sources(layer, leaves))
    tensors = {}
    for name, arrays in layers:
        names = _layout.KERAS_VARIABLES.get(kinds.get(name), ())
        for i, array in enumerate(arrays):
            tensors[f"{name}/{names[i] if i < len(names) else i}"] = array
    return _layout.assemble(template, plan, tensors, source="Keras", file=path)
