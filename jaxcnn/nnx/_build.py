"""A jaxcnn Linen layer's NNX twin, built from the Linen layer's configuration."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence

import flax.linen as nn
import numpy as np
from flax import nnx

from jaxcnn import layers as L
from jaxcnn.nnx import conv, core, normalization, pooling
from jaxcnn.nnx._layer import Random, Stateless

__all__ = ["build_layer"]

_TWINS = {name: getattr(module, name) for module in (conv, core, normalization, pooling)
          for name in module.__all__}


def build_layer(module: nn.Module, input_shape: Sequence[int], rngs: nnx.Rngs
                ) -> nnx.Module:
    """The :mod:`jaxcnn.nnx` layer configured as the :mod:`jaxcnn.layers` layer ``module``,
    for inputs of shape ``input_shape`` (``(N, *spatial, C)``; N is ignored).

    The feature count (``in_features`` / ``num_features``) is ``C``, an int ``kernel_size``
    gets the input's spatial rank and LocalConv's ``input_size`` is the spatial size; every
    other option is the Linen field of the same name (``features`` is ``out_features``). The
    variables have the Linen names and shapes, so ``from_linen(layer, variables)`` loads the
    Linen layer's. A block or model builder can map Linen layers to NNX with it, e.g.
    ``register_native(L.Conv, build_layer, lambda layer, args, kwargs: layer(args[0]))``
    (the mode then comes from ``model.train()`` / ``model.eval()``).

    Raises:
        TypeError: when ``module`` is not a jaxcnn.layers layer.

    Example:
        >>> from flax import nnx
        >>> from jaxcnn import layers as L
        >>> layer = build_layer(L.Conv(16, 3, strides=2), (1, 32, 32, 3), rngs=nnx.Rngs(0))
        >>> type(layer).__module__, layer.kernel.shape, layer.strides
        ('jaxcnn.nnx.conv', (3, 3, 3, 16), 2)
    """
    name = type(module).__name__
    if getattr(L, name, None) is not type(module) or name not in _TWINS:
        raise TypeError(f"`module` must be a jaxcnn.layers layer (one of "
                        f"{', '.join(sorted(_TWINS))}), got {type(module).__module__}.{name}.")
    twin = _TWINS[name]
    options = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
               if f.name not in ("parent", "name")}
    if issubclass(twin, Stateless):
        return twin(**options)
    if issubclass(twin, Random):
        return twin(**options, rngs=rngs)
    shape = tuple(int(d) for d in input_shape)
    params = inspect.signature(twin.__init__).parameters
    if "features" in options:
        options["out_features"] = options.pop("features")
    if isinstance(options.get("kernel_size"), int | np.integer):
        options["kernel_size"] = (int(options["kernel_size"]),) * (len(shape) - 2)
    if "input_size" in params:
        options["input_size"] = shape[1:-1]
    feature = "num_features" if "num_features" in params else "in_features"
    return twin(**{feature: shape[-1]}, **options, rngs=rngs)
