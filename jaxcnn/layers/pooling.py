"""Pooling layers: thin Flax linen wrappers around :mod:`jaxcnn.functional.pooling`.

Pooling has no parameters, so these modules only carry the configuration (and, for
:class:`StochasticPool`, draw a key from the ``"dropout"`` rng stream), which lets a model
name them (``block1_pool``) and lets configs swap one pooling for another.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from jaxcnn import _layer_specs as S
from jaxcnn.functional.shapes import Padding
from jaxcnn.layers._utils import Array, dropout_key

__all__ = [
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "AvgPool",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "LPPool",
    "MaxPool",
    "SpatialPyramidPool",
    "StochasticPool",
]

IntOrSeq = int | Sequence[int]


class MaxPool(nn.Module):
    """Max pooling layer: the largest element of each window, per channel.

    ``y[n, i, c] = max_{j < window} x_pad[n, i * stride + j * dilation, c]`` per spatial dim,
    with ``-inf`` padding; see :func:`jaxcnn.functional.max_pool`.

    Args:
        window: window size, an int or one per spatial dim. Default 2.
        strides: step between windows; default (None) ``window`` (non-overlapping). AlexNet's
            overlapping pooling is ``window=3, strides=2`` (Krizhevsky et al. 2012).
        padding: ``"VALID"`` (default), ``"SAME"``, an int, one per dim or ``(low, high)`` pairs.
        dilation: spacing between window elements. Default 1.
        ceil_mode: round the output size up as PyTorch's ``ceil_mode=True`` (torchvision's
            GoogLeNet uses it). Default False.

    Example:
        >>> import jax.numpy as jnp
        >>> MaxPool(3, strides=2).apply({}, jnp.ones((1, 55, 55, 96))).shape
        (1, 27, 27, 96)
    """

    window: IntOrSeq = 2
    strides: IntOrSeq | None = None
    padding: Padding = "VALID"
    dilation: IntOrSeq = 1
    ceil_mode: bool = False

    def __call__(self, x: Array) -> Array:
        return S.max_pool_call(self, x)


class AvgPool(nn.Module):
    """Average pooling layer: the mean of each window, per channel (PyTorch divisor rules).

    ``y[n, i, c] = sum_{j < window} x_pad[n, i * stride + j, c] / divisor[i]`` with zero padding;
    see :func:`jaxcnn.functional.avg_pool`.

    Args:
        window: window size, an int or one per spatial dim. Default 2.
        strides: step between windows; default (None) ``window``.
        padding: ``"VALID"`` (default), ``"SAME"``, an int, one per dim or ``(low, high)`` pairs.
        count_include_pad: divide by the full window (True, PyTorch default) or by the number
            of non-padded elements (False, TF/Keras ``"SAME"``).
        ceil_mode: round the output size up as PyTorch's ``ceil_mode=True``. Default False.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> AvgPool(2).apply({}, x)[0, ..., 0]
        Array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """

    window: IntOrSeq = 2
    strides: IntOrSeq | None = None
    padding: Padding = "VALID"
    count_include_pad: bool = True
    ceil_mode: bool = False

    def __call__(self, x: Array) -> Array:
        return S.avg_pool_call(self, x)


class LPPool(nn.Module):
    """Power-average (L^p) pooling layer: ``(sum_{window} x^p)^(1/p)`` per channel.

    See :func:`jaxcnn.functional.lp_pool` (PyTorch's ``LPPool``; Boureau et al. 2010).

    Args:
        p: the exponent, > 0.
        window: window size, an int or one per spatial dim. Default 2.
        strides: step between windows; default (None) ``window``.
        padding: ``"VALID"`` (default), ``"SAME"``, an int, one per dim or ``(low, high)`` pairs.

    Example:
        >>> import jax.numpy as jnp
        >>> LPPool(2, window=2).apply({}, jnp.full((1, 4, 4, 1), 3.0))[0, ..., 0]
        Array([[6., 6.],
               [6., 6.]], dtype=float32)
    """

    p: float
    window: IntOrSeq = 2
    strides: IntOrSeq | None = None
    padding: Padding = "VALID"

    def __call__(self, x: Array) -> Array:
        return S.lp_pool_call(self, x)


class GlobalAvgPool(nn.Module):
    """Global average pooling layer: ``y[n, c] = mean_i x[n, i, c]`` over all spatial dims.

    Network in Network (Lin et al. 2014); see :func:`jaxcnn.functional.global_avg_pool`.

    Args:
        keepdims: keep size-1 spatial axes, ``(N, 1, ..., 1, C)``; default False ``(N, C)``.

    Example:
        >>> import jax.numpy as jnp
        >>> GlobalAvgPool().apply({}, jnp.ones((2, 7, 7, 512))).shape
        (2, 512)
    """

    keepdims: bool = False

    def __call__(self, x: Array) -> Array:
        return S.global_avg_pool_call(self, x)


class GlobalMaxPool(nn.Module):
    """Global max pooling layer: ``y[n, c] = max_i x[n, i, c]`` over all spatial dims.

    See :func:`jaxcnn.functional.global_max_pool`.

    Args:
        keepdims: keep size-1 spatial axes, ``(N, 1, ..., 1, C)``; default False ``(N, C)``.

    Example:
        >>> import jax.numpy as jnp
        >>> GlobalMaxPool(keepdims=True).apply({}, jnp.ones((2, 7, 7, 8))).shape
        (2, 1, 1, 8)
    """

    keepdims: bool = False

    def __call__(self, x: Array) -> Array:
        return S.global_max_pool_call(self, x)


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling layer: a fixed output size for any input size (PyTorch bins).

    Output ``i`` of a dim of size ``W`` pooled to ``O`` averages
    ``x[floor(i W / O):ceil((i + 1) W / O)]``; see :func:`jaxcnn.functional.adaptive_avg_pool`
    (torchvision's VGG/AlexNet use ``(7, 7)`` / ``(6, 6)`` before the classifier).

    Args:
        output_size: an int, or one per spatial dim (None keeps that dim).

    Example:
        >>> import jax.numpy as jnp
        >>> AdaptiveAvgPool((7, 7)).apply({}, jnp.ones((1, 9, 13, 4))).shape
        (1, 7, 7, 4)
    """

    output_size: int | Sequence[int | None]

    def __call__(self, x: Array) -> Array:
        return S.adaptive_avg_pool_call(self, x)


class AdaptiveMaxPool(nn.Module):
    """Adaptive max pooling layer: a fixed output size for any input size (PyTorch bins).

    Output ``i`` of a dim of size ``W`` pooled to ``O`` is the max of
    ``x[floor(i W / O):ceil((i + 1) W / O)]``; see :func:`jaxcnn.functional.adaptive_max_pool`.

    Args:
        output_size: an int, or one per spatial dim (None keeps that dim).

    Example:
        >>> import jax.numpy as jnp
        >>> AdaptiveMaxPool(3).apply({}, jnp.ones((1, 10, 10, 4))).shape
        (1, 3, 3, 4)
    """

    output_size: int | Sequence[int | None]

    def __call__(self, x: Array) -> Array:
        return S.adaptive_max_pool_call(self, x)


class SpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling layer (He et al. 2014, SPP-net): fixed-length output for any H, W.

    ``y = concat_l flatten(adaptive_pool(x, (l, l)))`` over the pyramid ``levels``; see
    :func:`jaxcnn.functional.spatial_pyramid_pool`.

    Args:
        levels: grid sizes. Default ``(1, 2, 4)`` (21 bins per channel).
        kind: ``"max"`` (the paper, default) or ``"avg"``.

    Example:
        >>> import jax.numpy as jnp
        >>> SpatialPyramidPool().apply({}, jnp.ones((2, 13, 17, 8))).shape     # 8 * 21
        (2, 168)
    """

    levels: Sequence[int] = (1, 2, 4)
    kind: str = "max"

    def __call__(self, x: Array) -> Array:
        return S.spatial_pyramid_pool_call(self, x)


class StochasticPool(nn.Module):
    """Stochastic pooling layer (Zeiler & Fergus 2013): sample one activation per window.

    With ``p_j = a_j / sum_k a_k`` over a window's (non-negative) activations, training
    outputs ``a_J``, ``J ~ Categorical(p)``; evaluation outputs ``sum_j p_j a_j``. See
    :func:`jaxcnn.functional.stochastic_pool`. Training draws its key from the ``"dropout"`` rng
    stream, so pass ``rngs={"dropout": key}`` to ``apply``.

    Args:
        window: window size, an int or one per spatial dim. Default 2.
        strides: step between windows; default (None) ``window``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.array([1.0, 3.0, 0.0, 0.0]).reshape(1, 4, 1)
        >>> StochasticPool(2).apply({}, x)[0, :, 0]                   # eval: (1 + 9) / 4
        Array([2.5, 0. ], dtype=float32)
        >>> y = StochasticPool(2).apply({}, x, train=True, rngs={"dropout": jax.random.key(0)})
        >>> float(y[0, 0, 0]) in (1.0, 3.0)
        True
    """

    window: IntOrSeq = 2
    strides: IntOrSeq | None = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        return S.stochastic_pool_call(self, x, dropout_key(self, train), train)
