"""Tensor layouts of Keras and PyTorch weights versus jaxcnn's, and their assembly into variables.

The ONE place where layouts are converted:

* PyTorch convolution weights are ``(C_out, C_in / groups, kH, kW)`` (OIHW); jaxcnn's kernels
  are HWIO ``(kH, kW, C_in / groups, C_out)``: :func:`conv_kernel_from_torch`.
* PyTorch ``Linear`` weights are ``(out, in)``; jaxcnn's dense kernels ``(in, out)``:
  :func:`dense_kernel_from_torch`. The first ``Linear`` after a feature map (VGG's
  ``classifier.0``, AlexNet's ``classifier.1``) reads PyTorch's NCHW flatten, jaxcnn flattens
  NHWC: :func:`dense_kernel_from_torch_nchw` permutes its input rows.
* Keras kernels are already HWIO and Keras flattens NHWC; only the depthwise kernel of
  ``SeparableConv2D`` differs, ``(kH, kW, C, M)`` versus ``(kH, kW, 1, C * M)``:
  :func:`depthwise_kernel_from_keras`.
* BatchNorm: PyTorch ``weight, bias, running_mean, running_var``, Keras ``gamma, beta,
  moving_mean, moving_variance``, jaxcnn ``params/scale, params/bias, batch_stats/mean,
  batch_stats/var``; the variance is stored as is by all three (``y = (x - mean) /
  sqrt(var + eps)``), so the only thing left is ``eps``, which lives in the model, not in the
  file: :func:`check_bn_epsilon` compares the model's with the source's.

:func:`assemble` builds the variables from a plan (jaxcnn leaf -> source key + conversion)
and refuses any missing, unexpected or mis-shaped tensor, naming it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxcnn import layers as L

__all__ = [
    "KERAS_VARIABLES",
    "TORCH_LEAF_NAMES",
    "Source",
    "Template",
    "assemble",
    "check_bn_epsilon",
    "conv_kernel_from_torch",
    "copy",
    "dense_kernel_from_torch",
    "dense_kernel_from_torch_nchw",
    "depthwise_kernel_from_keras",
    "keras_kind",
    "keras_sources",
    "make_template",
    "natural_key",
    "torch_sources",
]

Convert = Callable[[np.ndarray], np.ndarray]
LeafPath = tuple[str, ...]   # (collection, *module path, leaf name)

TORCH_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias",
                    "mean": "running_mean", "var": "running_var"}
"""jaxcnn leaf name -> PyTorch parameter/buffer name (Conv2d, Linear, BatchNorm2d)."""

KERAS_VARIABLES = {
    "conv": ("kernel", "bias"),           # Conv2D and Dense
    "batch_norm": ("gamma", "beta", "moving_mean", "moving_variance"),
    "separable": ("depthwise_kernel", "pointwise_kernel", "bias"),
}
"""The weights of each Keras layer kind, in the layer's own (and its files') order."""

_KERAS_LEAF = {"conv": {"kernel": "kernel", "bias": "bias"},
               "batch_norm": {"scale": "gamma", "bias": "beta", "mean": "moving_mean",
                              "var": "moving_variance"},
               "separable": {"depthwise_kernel": "depthwise_kernel",
                             "pointwise_kernel": "pointwise_kernel", "bias": "bias"}}


def copy(array: np.ndarray) -> np.ndarray:
    """The array unchanged (same layout in the file and in jaxcnn).

    Example:
        >>> copy(np.ones(3)).shape
        (3,)
    """
    return array


def conv_kernel_from_torch(weight: np.ndarray) -> np.ndarray:
    """PyTorch ``(C_out, C_in / groups, *window)`` (OIHW) -> jaxcnn ``(*window, C_in / groups,
    C_out)`` (HWIO).

    Example:
        >>> conv_kernel_from_torch(np.zeros((64, 3, 7, 5))).shape
        (7, 5, 3, 64)
    """
    _check_ndim(weight, (3, 4, 5), "a convolution weight (C_out, C_in, *window)")
    return np.transpose(weight, (*range(2, weight.ndim), 1, 0))


def dense_kernel_from_torch(weight: np.ndarray) -> np.ndarray:
    """PyTorch ``Linear`` weight ``(out, in)`` -> jaxcnn dense kernel ``(in, out)``.

    Example:
        >>> dense_kernel_from_torch(np.zeros((10, 84))).shape
        (84, 10)
    """
    _check_ndim(weight, (2,), "a Linear weight (out, in)")
    return weight.T


def dense_kernel_from_torch_nchw(weight: np.ndarray, channels: int) -> np.ndarray:
    """The first ``Linear`` after a flattened ``(C, H, W)`` map -> a kernel for an NHWC flatten.

    PyTorch's input feature ``c * H * W + h * W + w`` is jaxcnn's ``(h * W + w) * C + c``, so the
    rows are permuted as well as transposed (H = W, as after torchvision's adaptive pools).

    Args:
        weight: ``(out, C * H * W)``.
        channels: ``C``.

    Example:
        >>> w = np.arange(2 * 3 * 2 * 2).reshape(2, 12)          # out=2, C=3, H=W=2
        >>> k = dense_kernel_from_torch_nchw(w, channels=3)
        >>> k.shape, k[:3, 0].tolist()                             # h=w=0: c = 0, 1, 2
        ((12, 2), [0, 4, 8])
    """
    _check_ndim(weight, (2,), "a Linear weight (out, in)")
    out, size = weight.shape
    side = math.isqrt(size // channels) if size % channels == 0 else 0
    if side * side * channels != size:
        raise ValueError(f"a Linear weight of shape {weight.shape} does not read a square "
                         f"{channels}-channel feature map (in = C * H * W with H = W).")
    return (weight.reshape(out, channels, side, side).transpose(2, 3, 1, 0)
            .reshape(size, out))


def depthwise_kernel_from_keras(kernel: np.ndarray) -> np.ndarray:
    """Keras depthwise kernel ``(*window, C, M)`` -> jaxcnn ``(*window, 1, C * M)``.

    Output channel ``c * M + m`` is Keras' ``[..., c, m]`` in both (row-major reshape).

    Example:
        >>> depthwise_kernel_from_keras(np.zeros((3, 3, 64, 1))).shape
        (3, 3, 1, 64)
    """
    _check_ndim(kernel, (3, 4, 5), "a depthwise kernel (*window, C, M)")
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def _check_ndim(array: np.ndarray, ndims: tuple[int, ...], what: str) -> None:
    if np.ndim(array) not in ndims:
        raise ValueError(f"expected {what} with {' or '.join(map(str, ndims))} dims, got shape "
                         f"{np.shape(array)}.")


def natural_key(text: str) -> tuple:
    """Sort key reading digit runs as numbers (``block2`` < ``block13``).

    Example:
        >>> sorted(["block13", "block2", "block4"], key=natural_key)
        ['block2', 'block4', 'block13']
    """
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


@dataclass(frozen=True)
class Template:
    """A model's variable shapes and BatchNorm epsilons, traced without computing.

    Attributes:
        leaves: ``{(collection, *module_path, leaf): jax.ShapeDtypeStruct}``.
        bn_epsilons: ``{"module/path": epsilon}`` of every :class:`jaxcnn.layers.BatchNorm`.
    """

    leaves: dict[LeafPath, jax.ShapeDtypeStruct]
    bn_epsilons: dict[str, float] = field(default_factory=dict)

    def modules(self) -> dict[tuple[str, ...], dict[str, LeafPath]]:
        """``{module_path: {leaf name: full leaf path}}`` in natural order of the paths."""
        out: dict[tuple[str, ...], dict[str, LeafPath]] = {}
        for path in sorted(self.leaves, key=lambda p: natural_key("/".join(p[1:]))):
            out.setdefault(path[1:-1], {})[path[-1]] = path
        return out


def make_template(model: nn.Module, input_shape: Iterable[int]) -> Template:
    """Trace ``model.init`` on one ``(1, *input_shape)`` image: variable shapes and BN epsilons.

    Example:
        >>> from jaxcnn import models
        >>> t = make_template(models.create("resnet18", num_classes=10), (32, 32, 3))
        >>> t.leaves[("params", "head", "kernel")].shape, t.bn_epsilons["stem_bn"]
        ((512, 10), 1e-05)
    """
    shape = (1, *(int(d) for d in input_shape))
    if len(shape) != 4:
        raise ValueError(f"`input_shape` must be (H, W, C), got {tuple(input_shape)!r}.")
    epsilons: dict[str, float] = {}

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, L.BatchNorm) and context.method_name == "__call__":
            epsilons["/".join(context.module.path)] = float(context.module.epsilon)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        abstract = jax.eval_shape(model.init, jax.random.key(0),
                                  jax.ShapeDtypeStruct(shape, jnp.float32))
    leaves = traverse_util.flatten_dict(dict(abstract))
    return Template(leaves=leaves, bn_epsilons=epsilons)


def check_bn_epsilon(template: Template, expected: float | None, source: str, fix: str) -> None:
    """Raise unless every BatchNorm of the model uses the source framework's ``expected`` eps.

    The files hold the running variance, not the epsilon added to it, so a model with another
    epsilon would load without complaint and compute slightly different outputs.

    Args:
        template: from :func:`make_template`.
        expected: the source's epsilon (None: the source model has no BatchNorm to check).
        source: e.g. ``"Keras' ResNet50"``, for the message.
        fix: how to build the right model, for the message.

    Example:
        >>> from jaxcnn import models
        >>> t = make_template(models.create("resnet18", num_classes=10), (32, 32, 3))
        >>> check_bn_epsilon(t, 1e-5, "torchvision's resnet18", "")
        >>> check_bn_epsilon(t, 1e-3, "a source", "pass norm=...")
        Traceback (most recent call last):
        ...
        ValueError: BatchNorm 'stem_bn' of the model has epsilon 1e-05 but a source uses 0.001...
    """
    if expected is None:
        return
    for path, eps in template.bn_epsilons.items():
        if not math.isclose(eps, expected, rel_tol=1e-9, abs_tol=0.0):
            raise ValueError(f"BatchNorm {path!r} of the model has epsilon {eps!r} but {source} "
                             f"uses {expected!r}, which the weights were trained with; {fix}")


@dataclass(frozen=True)
class Source:
    """Where one jaxcnn leaf comes from: a key of the file and the layout conversion."""

    key: str
    convert: Convert = copy


def keras_kind(leaves: Mapping[str, LeafPath]) -> str:
    """The Keras layer kind of a jaxcnn module from its leaf names (see :data:`KERAS_VARIABLES`).

    Example:
        >>> keras_kind({"scale": (), "bias": (), "mean": (), "var": ()})
        'batch_norm'
    """
    if "depthwise_kernel" in leaves:
        return "separable"
    if "mean" in leaves or "scale" in leaves:
        return "batch_norm"
    return "conv"


def keras_sources(layer: str, leaves: Mapping[str, LeafPath]) -> dict[LeafPath, Source]:
    """The plan of one jaxcnn module read from the Keras layer ``layer``.

    Example:
        >>> keras_sources("fc1", {"kernel": ("params", "fc1", "kernel")})
        {('params', 'fc1', 'kernel'): Source(key='fc1/kernel', convert=<function copy ...>)}
    """
    kind = keras_kind(leaves)
    plan = {}
    for leaf, path in leaves.items():
        name = _KERAS_LEAF[kind].get(leaf)
        if name is None:
            raise ValueError(f"jaxcnn leaf {'/'.join(path)!r} has no Keras {kind} counterpart.")
        convert = depthwise_kernel_from_keras if leaf == "depthwise_kernel" else copy
        plan[path] = Source(f"{layer}/{name}", convert)
    return plan


def torch_sources(prefix: str, leaves: Mapping[str, LeafPath], template: Template,
                  dense: Convert = dense_kernel_from_torch) -> dict[LeafPath, Source]:
    """The plan of one jaxcnn module read from the PyTorch module ``prefix`` (``layer1.0.conv1``).

    Kernels are converted by their rank: 4-D (convolutions) by :func:`conv_kernel_from_torch`,
    2-D (dense) by ``dense`` (:func:`dense_kernel_from_torch` unless the layer reads a
    flattened NCHW map).

    Example:
        >>> from jaxcnn import models
        >>> t = make_template(models.create("resnet18", num_classes=10), (32, 32, 3))
        >>> plan = torch_sources("bn1", t.modules()[("stem_bn",)], t)
        >>> sorted(source.key for source in plan.values())
        ['bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.weight']
    """
    plan = {}
    for leaf, path in leaves.items():
        name = TORCH_LEAF_NAMES.get(leaf)
        if name is None:
            raise ValueError(f"jaxcnn leaf {'/'.join(path)!r} has no PyTorch counterpart.")
        convert = copy
        if leaf == "kernel":
            convert = conv_kernel_from_torch if len(template.leaves[path].shape) > 2 else dense
        plan[path] = Source(f"{prefix}.{name}", convert)
    return plan


_MAX_LISTED = 12


def assemble(template: Template, plan: Mapping[LeafPath, Source],
             tensors: Mapping[str, np.ndarray], *, source: str, file: str | os.PathLike,
             ignore: Callable[[str], bool] = lambda key: False) -> dict[str, Any]:
    """Fill every leaf of ``template`` from ``tensors`` following ``plan``; refuse any mismatch.

    Every template leaf must have a plan entry whose key is in ``tensors`` and whose converted
    shape equals the leaf's; every tensor must be used unless ``ignore(key)``. All problems
    are collected and raised as one ``ValueError`` naming, for each, the file's key and the
    jaxcnn path, with both shapes.

    Args:
        template: the model's shapes (:func:`make_template`).
        plan: ``{leaf path: Source(key, convert)}``.
        tensors: ``{key: numpy array}`` read from the file.
        source: the framework's name for messages (``"Keras"``, ``"torchvision"``).
        file: the file's path, for messages.
        ignore: keys that may be left unused (BatchNorm's ``num_batches_tracked``, ...).

    Returns:
        ``{"params": ..., "batch_stats": ...}``: nested dicts of ``jax.Array`` in the
        template's dtypes.

    Example:
        >>> t = Template({("params", "fc", "kernel"): jax.ShapeDtypeStruct((3, 2), jnp.float32)})
        >>> plan = {("params", "fc", "kernel"): Source("fc.weight", dense_kernel_from_torch)}
        >>> assemble(t, plan, {"fc.weight": np.ones((2, 3))}, source="torchvision",
        ...          file="f")["params"]["fc"]["kernel"].shape
        (3, 2)
        >>> assemble(t, plan, {"fc.weight": np.ones((2, 4))}, source="torchvision", file="f")
        Traceback (most recent call last):
        ...
        ValueError: cannot import 'f': 1 problem(s)...
          wrong shape: torchvision 'fc.weight' (2, 4) -> (4, 2) for params/fc/kernel (3, 2)...
    """
    problems, used, out = [], set(), {}
    for path in sorted(template.leaves, key=lambda p: natural_key("/".join(p))):
        spec, target = template.leaves[path], "/".join(path)
        where = plan.get(path)
        if where is None:
            problems.append(f"no {source} tensor is known for {target} {tuple(spec.shape)}")
            continue
        if where.key not in tensors:
            problems.append(f"missing: {source} {where.key!r} for {target} "
                            f"{tuple(spec.shape)}")
            continue
        used.add(where.key)
        raw = np.asarray(tensors[where.key])
        if raw.dtype.kind != "f":
            problems.append(f"wrong dtype: {source} {where.key!r} is {raw.dtype}, not floating "
                            f"point, for {target}")
            continue
        try:
            value = where.convert(raw)
        except ValueError as err:
            problems.append(f"wrong shape: {source} {where.key!r} {raw.shape} for {target} "
                            f"{tuple(spec.shape)}: {err}")
            continue
        if value.shape != tuple(spec.shape):
            arrow = "" if value.shape == raw.shape else f" -> {value.shape}"
            problems.append(f"wrong shape: {source} {where.key!r} {raw.shape}{arrow} for "
                            f"{target} {tuple(spec.shape)}")
            continue
        out[path] = jnp.asarray(value, dtype=spec.dtype)
    for key in tensors:
        if key not in used and not ignore(key):
            problems.append(f"unexpected: {source} {key!r} {np.shape(tensors[key])} is not "
                            f"used by the model")
    if problems:
        listed = problems[:_MAX_LISTED]
        more = len(problems) - len(listed)
        raise ValueError(
            f"cannot import {os.fspath(file)!r}: {len(problems)} problem(s)\n  "
            + "\n  ".join(listed) + (f"\n  ... and {more} more" if more else "")
            + "\nCheck that the model options (num_classes, input_shape, width, ...) match the "
              "network that wrote the file.")
    return traverse_util.unflatten_dict(out)
