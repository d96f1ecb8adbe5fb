"""Pooling layers as ``nnx.Module``: the :mod:`jaxcnn.layers.pooling` layers.

Pooling has no variables: each layer takes the Linen layer's arguments (same names, order
and defaults) and calls the same :mod:`jaxcnn.functional` function
(:mod:`jaxcnn._layer_specs`). :class:`StochasticPool` samples while training, switched and
seeded as :class:`jaxcnn.nnx.Dropout`.
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx

from jaxcnn import _layer_specs as S
from jaxcnn.layers import pooling as L
from jaxcnn.layers._utils import Array
from jaxcnn.nnx._layer import Random, Stateless

__all__ = [  # the classes of jaxcnn.layers.pooling
    "AdaptiveAvgPool", "AdaptiveMaxPool", "AvgPool", "GlobalAvgPool", "GlobalMaxPool",
    "LPPool", "MaxPool", "SpatialPyramidPool", "StochasticPool",
]

IntOrSeq = int | Sequence[int]


class MaxPool(Stateless, linen=L.MaxPool, call=S.max_pool_call):
    """Max pooling; :class:`jaxcnn.layers.MaxPool` as an ``nnx.Module``
    ``(window=2, strides=None, padding="VALID", dilation=1, ceil_mode=False)``.

    Example:
        >>> import jax.numpy as jnp
        >>> MaxPool(3, strides=2)(jnp.ones((1, 55, 55, 96))).shape
        (1, 27, 27, 96)
    """


class AvgPool(Stateless, linen=L.AvgPool, call=S.avg_pool_call):
    """Average pooling; :class:`jaxcnn.layers.AvgPool` as an ``nnx.Module``
    ``(window=2, strides=None, padding="VALID", count_include_pad=True, ceil_mode=False)``.

    Example:
        >>> import jax.numpy as jnp
        >>> AvgPool(2)(jnp.arange(16.0).reshape(1, 4, 4, 1))[0, ..., 0]
        Array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """


class LPPool(Stateless, linen=L.LPPool, call=S.lp_pool_call):
    """Power-average pooling; :class:`jaxcnn.layers.LPPool` as an ``nnx.Module``
    ``(p, window=2, strides=None, padding="VALID")``.

    Example:
        >>> import jax.numpy as jnp
        >>> LPPool(2, window=2)(jnp.full((1, 4, 4, 1), 3.0))[0, ..., 0]
        Array([[6., 6.],
               [6., 6.]], dtype=float32)
    """


class GlobalAvgPool(Stateless, linen=L.GlobalAvgPool, call=S.global_avg_pool_call):
    """Global average pooling; :class:`jaxcnn.layers.GlobalAvgPool` as an ``nnx.Module``
    ``(keepdims=False)``.

    Example:
        >>> import jax.numpy as jnp
        >>> GlobalAvgPool()(jnp.ones((2, 7, 7, 512))).shape
        (2, 512)
    """


class GlobalMaxPool(Stateless, linen=L.GlobalMaxPool, call=S.global_max_pool_call):
    """Global max pooling; :class:`jaxcnn.layers.GlobalMaxPool` as an ``nnx.Module``
    ``(keepdims=False)``.

    Example:
        >>> import jax.numpy as jnp
        >>> GlobalMaxPool(keepdims=True)(jnp.ones((2, 7, 7, 8))).shape
        (2, 1, 1, 8)
    """


class AdaptiveAvgPool(Stateless, linen=L.AdaptiveAvgPool, call=S.adaptive_avg_pool_call):
    """Adaptive average pooling to a fixed ``output_size``;
    :class:`jaxcnn.layers.AdaptiveAvgPool` as an ``nnx.Module``.

    Example:
        >>> import jax.numpy as jnp
        >>> AdaptiveAvgPool((7, 7))(jnp.ones((1, 9, 13, 4))).shape
        (1, 7, 7, 4)
    """


class AdaptiveMaxPool(Stateless, linen=L.AdaptiveMaxPool, call=S.adaptive_max_pool_call):
    """Adaptive max pooling to a fixed ``output_size``;
    :class:`jaxcnn.layers.AdaptiveMaxPool` as an ``nnx.Module``.

    Example:
        >>> import jax.numpy as jnp
        >>> AdaptiveMaxPool(3)(jnp.ones((1, 10, 10, 4))).shape
        (1, 3, 3, 4)
    """


class SpatialPyramidPool(Stateless, linen=L.SpatialPyramidPool,
                         call=S.spatial_pyramid_pool_call):
    """Spatial pyramid pooling; :class:`jaxcnn.layers.SpatialPyramidPool` as an
    ``nnx.Module`` ``(levels=(1, 2, 4), kind="max")``.

    Example:
        >>> import jax.numpy as jnp
        >>> SpatialPyramidPool()(jnp.ones((2, 13, 17, 8))).shape     # 8 * 21
        (2, 168)
    """


class StochasticPool(Random):
    """Stochastic pooling (Zeiler & Fergus 2013); :class:`jaxcnn.layers.StochasticPool` as an
    ``nnx.Module``: samples one activation per window while ``deterministic`` is False (the
    default, ``model.train()``), the probability-weighted average after ``model.eval()``.

    Args:
        window: window size, an int or one per spatial dim. Default 2.
        strides: step between windows; default (None) ``window``.
        deterministic, rng_collection, rngs: as :class:`jaxcnn.nnx.Dropout`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> x = jnp.array([1.0, 3.0, 0.0, 0.0]).reshape(1, 4, 1)
        >>> pool = StochasticPool(2, rngs=nnx.Rngs(dropout=0))
        >>> float(pool(x)[0, 0, 0]) in (1.0, 3.0)                   # training: a sample
        True
        >>> pool.eval()
        >>> pool(x)[0, :, 0]                                       # (1 + 9) / 4
        Array([2.5, 0. ], dtype=float32)
    """

    def __init__(self, window: IntOrSeq = 2, strides: IntOrSeq | None = None, *,
                 deterministic: bool = False, rng_collection: str = "dropout",
                 rngs: nnx.Rngs | nnx.RngStream | None = None):
        self.window, self.strides = window, strides
        self._init_rngs(deterministic, rng_collection, rngs)

    def __call__(self, x: Array, *, deterministic: bool | None = None,
                 rngs: nnx.Rngs | nnx.RngStream | Array | None = None) -> Array:
        train, key = self._key(deterministic, rngs)
        return S.stochastic_pool_call(self, x, key, train)
