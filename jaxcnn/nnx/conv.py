"""Convolution layers as ``nnx.Module``: the :mod:`jaxcnn.layers.conv` layers, built eagerly.

Signatures follow ``flax.nnx.Conv`` (``in_features, out_features, kernel_size, strides``,
then keywords and ``rngs``); the options keep jaxcnn's names (``dilation``, ``groups``). The
variables have the Linen layer's names, shapes and initialisers, and each call is the Linen
layer's one :mod:`jaxcnn.functional` call (:mod:`jaxcnn._layer_specs`). An int
``kernel_size`` is a square 2-D window; pass a tuple for 1-D or 3-D.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxcnn import _layer_specs as S
from jaxcnn.functional.shapes import Padding
from jaxcnn.layers import conv as L
from jaxcnn.layers._utils import Array, Dtype, Initializer
from jaxcnn.nnx._layer import Layer, configure

__all__ = ["Conv", "ConvTranspose", "DepthwiseConv", "LocalConv", "SeparableConv"]

IntOrSeq = int | Sequence[int]
zeros = nnx.initializers.zeros


class Conv(Layer):
    """N-D convolution layer; the NNX form of :class:`jaxcnn.layers.Conv` (see there).

    Variables ``kernel`` ``(*window, in_features // groups, out_features)`` and ``bias``
    ``(out_features,)``; the call is :func:`jaxcnn.functional.conv`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = Conv(4, 16, (3, 3), strides=2, groups=2, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer.bias.shape
        ((3, 3, 2, 16), (16,))
        >>> layer(jnp.ones((2, 8, 8, 4))).shape
        (2, 4, 4, 16)
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrSeq,
                 strides: IntOrSeq = 1, *, padding: Padding = "SAME", dilation: IntOrSeq = 1,
                 groups: int = 1, use_bias: bool = True, dtype: Dtype | None = None,
                 param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer = L.default_kernel_init,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.conv_vars, in_features, rngs)

    def __call__(self, x: Array) -> Array:
        return S.conv_call(self, x, self._values(S.conv_vars, x))


class ConvTranspose(Layer):
    """Transposed convolution layer; the NNX form of :class:`jaxcnn.layers.ConvTranspose`.

    Variables ``kernel`` ``(*window, in_features, out_features)`` and ``bias``; the call is
    :func:`jaxcnn.functional.conv_transpose` (``"SAME"``: output size ``W * strides``).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = ConvTranspose(16, 3, (4, 4), strides=2, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape
        (4, 4, 16, 3)
        >>> layer(jnp.ones((2, 8, 8, 16))).shape
        (2, 16, 16, 3)
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrSeq,
                 strides: IntOrSeq = 1, *, padding: Padding = "SAME", dilation: IntOrSeq = 1,
                 output_padding: IntOrSeq = 0, use_bias: bool = True,
                 dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer = L.default_kernel_init,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.conv_transpose_vars, in_features, rngs)

    def __call__(self, x: Array) -> Array:
        return S.conv_transpose_call(self, x, self._values(S.conv_transpose_vars, x))


class DepthwiseConv(Layer):
    """Depthwise convolution layer; the NNX form of :class:`jaxcnn.layers.DepthwiseConv`.

    ``depth_multiplier`` ``M`` outputs per input channel: variables ``kernel``
    ``(*window, 1, in_features * M)`` and ``bias`` ``(in_features * M,)``; the call is
    :func:`jaxcnn.functional.depthwise_conv`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = DepthwiseConv(4, 3, depth_multiplier=2, use_bias=False, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape
        (3, 3, 1, 8)
        >>> layer(jnp.ones((2, 8, 8, 4))).shape
        (2, 8, 8, 8)
    """

    def __init__(self, in_features: int, kernel_size: IntOrSeq, strides: IntOrSeq = 1, *,
                 depth_multiplier: int = 1, padding: Padding = "SAME",
                 dilation: IntOrSeq = 1, use_bias: bool = True, dtype: Dtype | None = None,
                 param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer = L.default_kernel_init,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.depthwise_conv_vars, in_features, rngs)

    def __call__(self, x: Array) -> Array:
        return S.depthwise_conv_call(self, x, self._values(S.depthwise_conv_vars, x))


class SeparableConv(Layer):
    """Depthwise-separable convolution layer; the NNX form of
    :class:`jaxcnn.layers.SeparableConv` (Keras ``SeparableConv2D`` names).

    Variables ``depthwise_kernel`` ``(*window, 1, in_features * M)``, ``pointwise_kernel``
    ``(1, ..., 1, in_features * M, out_features)`` and ``bias``; the call is
    :func:`jaxcnn.functional.separable_conv`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = SeparableConv(4, 32, 3, use_bias=False, rngs=nnx.Rngs(0))
        >>> layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        ((3, 3, 1, 4), (1, 1, 4, 32))
        >>> layer(jnp.ones((2, 8, 8, 4))).shape
        (2, 8, 8, 32)
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrSeq,
                 strides: IntOrSeq = 1, *, padding: Padding = "SAME", dilation: IntOrSeq = 1,
                 depth_multiplier: int = 1, use_bias: bool = True, dtype: Dtype | None = None,
                 param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer = L.default_kernel_init,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.separable_conv_vars, in_features, rngs)

    def __call__(self, x: Array) -> Array:
        return S.separable_conv_call(self, x, self._values(S.separable_conv_vars, x))


class LocalConv(Layer):
    """Locally connected layer (unshared weights); the NNX form of
    :class:`jaxcnn.layers.LocalConv`.

    The weights depend on the output position, so the input's spatial size ``input_size``
    (e.g. ``(H, W)``) is part of the construction, as ``in_features`` is. Variables
    ``kernel`` ``(*out_spatial, prod(window) * in_features, out_features)`` and an unshared
    ``bias`` ``(*out_spatial, out_features)``; the call is
    :func:`jaxcnn.functional.local_conv`. An int ``kernel_size`` takes its rank from
    ``input_size``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = LocalConv(2, 5, 3, input_size=(6, 6), rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer.bias.shape
        ((4, 4, 18, 5), (4, 4, 5))
        >>> layer(jnp.ones((3, 6, 6, 2))).shape
        (3, 4, 4, 5)
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrSeq,
                 strides: IntOrSeq = 1, *, input_size: Sequence[int],
                 padding: Padding = "VALID", dilation: IntOrSeq = 1, use_bias: bool = True,
                 dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer | None = None, bias_init: Initializer = zeros,
                 rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.local_conv_vars, in_features, rngs, input_size=input_size)

    def __call__(self, x: Array) -> Array:
        return S.local_conv_call(self, x, self._values(S.local_conv_vars, x))
