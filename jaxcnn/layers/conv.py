"""Convolution layers: thin Flax linen wrappers around :mod:`jaxcnn.functional.conv`.

Each layer declares its parameters and makes exactly one call into ``jaxcnn.functional``; the
math, the padding rules and the input validation live there. Parameter names and layouts follow
Flax (``kernel`` HWIO ``(*window, C_in // groups, C_out)``, ``bias``) or, for
:class:`SeparableConv`, Keras, so pretrained weights map 1:1.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn import _layer_specs as S
from jaxcnn.functional.shapes import Padding
from jaxcnn.layers._utils import Array, Dtype, Initializer, declare

__all__ = ["Conv", "ConvTranspose", "DepthwiseConv", "LocalConv", "SeparableConv"]

default_kernel_init = nn.initializers.lecun_normal()

IntOrSeq = int | Sequence[int]


class Conv(nn.Module):
    """N-D convolution layer (1, 2 or 3 spatial dims) with stride, padding, dilation and groups.

    ``y = conv(x, kernel) + bias`` computed by :func:`jaxcnn.functional.conv`; in 2-D::

        y[n, i, j, o] = bias[o] + sum_{di, dj, c} x[n, s*i + d*di - p, s*j + d*dj - p, c]
                                                * kernel[di, dj, c, o]

    Same parameters and numerics as ``flax.linen.Conv`` (``groups`` is its
    ``feature_group_count``, ``dilation`` its ``kernel_dilation``).

    Args:
        features: number of output channels ``C_out``.
        kernel_size: window, an int (spatial rank taken from ``x.ndim - 2``) or one int per
            spatial dim (its length fixes the rank).
        strides: int or one per spatial dim, >= 1. Default 1.
        padding: ``"SAME"`` (default), ``"VALID"``, ``"CAUSAL"`` (1-D), an int, one int per dim
            or ``(low, high)`` pairs (see :func:`jaxcnn.functional.resolve_padding`).
        dilation: kernel dilation (atrous convolution), int or per dim. Default 1.
        groups: feature groups (Krizhevsky et al. 2012); must divide ``C_in`` and ``features``.
        use_bias: add a learned ``bias`` of shape ``(features,)``. Default True.
        dtype: compute dtype (input and params are cast to it); None promotes like Flax.
        param_dtype: dtype of the stored parameters. Default float32.
        kernel_init: initializer of ``kernel`` ``(*window, C_in // groups, features)``;
            default LeCun normal.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer = Conv(16, (3, 3), strides=2, groups=2)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 8, 8, 4)))
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'bias': (16,), 'kernel': (3, 3, 2, 16)}
        >>> layer.apply(variables, jnp.ones((2, 8, 8, 4))).shape
        (2, 4, 4, 16)
    """

    features: int
    kernel_size: IntOrSeq
    strides: IntOrSeq = 1
    padding: Padding = "SAME"
    dilation: IntOrSeq = 1
    groups: int = 1
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = default_kernel_init
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return S.conv_call(self, x, declare(self, S.conv_vars(self, x), x))


class ConvTranspose(nn.Module):
    """Transposed convolution layer (the gradient of :class:`Conv` w.r.t. its input).

    Computed by :func:`jaxcnn.functional.conv_transpose`; in 1-D each input pixel scatters the
    kernel into the output::

        y[n, s*i + d*di - p, o] += x[n, i, c] * kernel[di, c, o]      (then + bias[o])

    ``"SAME"`` padding gives output size ``W * s`` (as ``flax.linen.ConvTranspose``, whose
    default ``transpose_kernel=False`` equals this layer with the kernel flipped spatially).

    Args:
        features: number of output channels.
        kernel_size: window, an int or one per spatial dim.
        strides: upsampling factor, int or per dim. Default 1.
        padding: padding of the forward conv, cropped from the output; any form
            :class:`Conv` accepts. Default ``"SAME"``.
        dilation: kernel dilation, int or per dim. Default 1.
        output_padding: extra rows on the high side, ``< max(stride, dilation)`` (PyTorch's
            rule). Default 0.
        use_bias: add a learned ``bias`` ``(features,)``. Default True.
        dtype: compute dtype; None promotes like Flax.
        param_dtype: dtype of the stored parameters. Default float32.
        kernel_init: initializer of ``kernel`` ``(*window, C_in, features)``; default LeCun
            normal.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer, x = ConvTranspose(3, (4, 4), strides=2), jnp.ones((2, 8, 8, 16))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)  # shapes only
        >>> variables["params"]["kernel"].shape
        (4, 4, 16, 3)
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (2, 16, 16, 3)
    """

    features: int
    kernel_size: IntOrSeq
    strides: IntOrSeq = 1
    padding: Padding = "SAME"
    dilation: IntOrSeq = 1
    output_padding: IntOrSeq = 0
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = default_kernel_init
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return S.conv_transpose_call(self, x, declare(self, S.conv_transpose_vars(self, x), x))


class DepthwiseConv(nn.Module):
    """Depthwise convolution layer: every input channel filtered by its own kernels.

    Computed by :func:`jaxcnn.functional.depthwise_conv`; output channel ``c * M + m`` (``M`` =
    ``depth_multiplier``) sees input channel ``c`` only::

        y[n, i, j, c*M + m] = bias[c*M + m]
                              + sum_{di, dj} x[n, s*i + d*di - p, s*j + d*dj - p, c]
                                             * kernel[di, dj, 0, c*M + m]

    (MobileNet, Howard et al. 2017). Keras' ``DepthwiseConv2D`` kernel ``(*window, C, M)``
    reshaped to ``(*window, 1, C * M)`` is this layer's ``kernel``.

    Args:
        kernel_size: window, an int or one per spatial dim.
        depth_multiplier: output channels per input channel ``M``. Default 1.
        strides: int or per dim. Default 1.
        padding: any form :class:`Conv` accepts. Default ``"SAME"``.
        dilation: int or per dim. Default 1.
        use_bias: add a learned ``bias`` ``(C * M,)``. Default True.
        dtype: compute dtype; None promotes like Flax.
        param_dtype: dtype of the stored parameters. Default float32.
        kernel_init: initializer of ``kernel`` ``(*window, 1, C * M)``; default LeCun normal.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer = DepthwiseConv(3, depth_multiplier=2, use_bias=False)
        >>> x = jnp.ones((2, 8, 8, 4))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)  # shapes only
        >>> variables["params"]["kernel"].shape
        (3, 3, 1, 8)
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (2, 8, 8, 8)
    """

    kernel_size: IntOrSeq
    depth_multiplier: int = 1
    strides: IntOrSeq = 1
    padding: Padding = "SAME"
    dilation: IntOrSeq = 1
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = default_kernel_init
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return S.depthwise_conv_call(self, x, declare(self, S.depthwise_conv_vars(self, x), x))


class SeparableConv(nn.Module):
    """Depthwise-separable convolution layer: depthwise conv, then a 1x1 pointwise conv.

    Computed by :func:`jaxcnn.functional.separable_conv` with Keras ``SeparableConv2D``
    semantics (Xception, Chollet 2017)::

        y = depthwise_conv(x, depthwise_kernel) @ pointwise_kernel + bias

    stride, padding and dilation apply to the depthwise step. Parameter names and shapes are
    Keras': ``depthwise_kernel`` ``(*window, 1, C * M)`` (Keras ``(*window, C, M)`` reshaped),
    ``pointwise_kernel`` ``(1, ..., 1, C * M, features)``, ``bias`` ``(features,)``.

    Args:
        features: number of output channels.
        kernel_size: depthwise window, an int or one per spatial dim.
        strides: int or per dim. Default 1.
        padding: any form :class:`Conv` accepts. Default ``"SAME"``.
        dilation: int or per dim. Default 1.
        depth_multiplier: depthwise outputs per input channel ``M``. Default 1.
        use_bias: add a learned ``bias`` ``(features,)``. Default True.
        dtype: compute dtype; None promotes like Flax.
        param_dtype: dtype of the stored parameters. Default float32.
        kernel_init: initializer of both kernels (each with its own fan-in); default LeCun
            normal.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer, x = SeparableConv(32, 3, use_bias=False), jnp.ones((2, 8, 8, 4))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)  # shapes only
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'depthwise_kernel': (3, 3, 1, 4), 'pointwise_kernel': (1, 1, 4, 32)}
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (2, 8, 8, 32)
    """

    features: int
    kernel_size: IntOrSeq
    strides: IntOrSeq = 1
    padding: Padding = "SAME"
    dilation: IntOrSeq = 1
    depth_multiplier: int = 1
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = default_kernel_init
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return S.separable_conv_call(self, x, declare(self, S.separable_conv_vars(self, x), x))


class LocalConv(nn.Module):
    """Locally connected layer: a convolution with unshared weights at each output position.

    Computed by :func:`jaxcnn.functional.local_conv`; with ``P[n, i, j]`` the (padded, strided,
    dilated) window of ``x`` read by output ``(i, j)``, flattened channel-major::

        y[n, i, j, o] = bias[i, j, o] + sum_q flat(P[n, i, j])[q] * kernel[i, j, q, o]

    (Taigman et al. 2014, DeepFace; Keras ``LocallyConnected2D`` with an unshared bias). The
    kernel layout is Flax ``nn.ConvLocal``'s. Because the weights depend on the position, the
    input's spatial size is fixed by the parameters.

    Args:
        features: number of output channels.
        kernel_size: window, an int or one per spatial dim.
        strides: int or per dim. Default 1.
        padding: any form :class:`Conv` accepts. Default ``"VALID"`` (as Keras).
        dilation: int or per dim. Default 1.
        use_bias: add a learned unshared ``bias`` ``(*out_spatial, features)``. Default True.
        dtype: compute dtype; None promotes like Flax.
        param_dtype: dtype of the stored parameters. Default float32.
        kernel_init: initializer of ``kernel`` ``(*out_spatial, prod(window) * C_in,
            features)``. Default (None): LeCun normal with the output positions as batch axes,
            i.e. fan-in ``prod(window) * C_in`` as for :class:`Conv` (Flax's ``ConvLocal``
            counts the positions into the fan-in, which shrinks the initial weights).
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer, x = LocalConv(5, 3), jnp.ones((3, 6, 6, 2))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)  # shapes only
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'bias': (4, 4, 5), 'kernel': (4, 4, 18, 5)}
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (3, 4, 4, 5)
    """

    features: int
    kernel_size: IntOrSeq
    strides: IntOrSeq = 1
    padding: Padding = "VALID"
    dilation: IntOrSeq = 1
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer | None = None
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return S.local_conv_call(self, x, declare(self, S.local_conv_vars(self, x), x))
