"""Core layers as ``nnx.Module``: Dense, Maxout, Dropout, SpatialDropout and Activation.

The NNX forms of :mod:`jaxcnn.layers.core`: same variable names, shapes and initialisers,
the same :mod:`jaxcnn.functional` call (:mod:`jaxcnn._layer_specs`). Dropout follows
``flax.nnx.Dropout``: ``deterministic`` (``model.train()`` / ``model.eval()`` set it) and keys
from a stream forked off ``rngs["dropout"]`` at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import jax.numpy as jnp
from flax import nnx

from jaxcnn import _layer_specs as S
from jaxcnn.functional import maxout
from jaxcnn.layers import core as L
from jaxcnn.layers._utils import Array, Dtype, Initializer, positive_int
from jaxcnn.nnx._layer import Layer, Random, Stateless, configure

__all__ = ["Activation", "Dense", "Dropout", "Maxout", "SpatialDropout"]

zeros = nnx.initializers.zeros


class Dense(Layer):
    """Fully connected layer ``y = x @ kernel + bias``; the NNX form of
    :class:`jaxcnn.layers.Dense` (signature of ``flax.nnx.Linear``).

    Variables ``kernel`` ``(in_features, out_features)`` (LeCun normal) and ``bias``
    ``(out_features,)``; the call is :func:`jaxcnn.functional.dense`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = Dense(84, 10, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer.bias.shape
        ((84, 10), (10,))
        >>> layer(jnp.ones((4, 84))).shape
        (4, 10)
    """

    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True,
                 dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer = L.default_kernel_init,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.dense_vars, in_features, rngs)

    def __call__(self, x: Array) -> Array:
        return S.dense_call(self, x, self._values(S.dense_vars, x, unit="features"))


class Maxout(nnx.Module):
    """Maxout layer: a :class:`Dense` of ``out_features * pieces`` units named ``dense``, then
    :func:`jaxcnn.functional.maxout`; the NNX form of :class:`jaxcnn.layers.Maxout`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = Maxout(8, 16, pieces=3, rngs=nnx.Rngs(0))
        >>> layer.dense.kernel.shape
        (8, 48)
        >>> layer(jnp.ones((4, 8))).shape
        (4, 16)
    """

    def __init__(self, in_features: int, out_features: int, pieces: int, *,
                 use_bias: bool = True, dtype: Dtype | None = None,
                 param_dtype: Dtype = jnp.float32,
                 kernel_init: Initializer = L.default_kernel_init,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        self.features = out_features
        self.pieces = positive_int(pieces, "pieces")
        self.dense = Dense(in_features, positive_int(out_features, "out_features") * pieces,
                           use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
                           kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)

    def __call__(self, x: Array) -> Array:
        return maxout(self.dense(x), self.pieces)


class _Dropout(Random):
    """Dropout and SpatialDropout: ``rate``, then :class:`Random`'s switch and keys."""

    _call: ClassVar[Callable[..., Array]]

    def __init__(self, rate: float, *, deterministic: bool = False,
                 rng_collection: str = "dropout",
                 rngs: nnx.Rngs | nnx.RngStream | None = None):
        self.rate = rate
        self._init_rngs(deterministic, rng_collection, rngs)

    def __call__(self, x: Array, *, deterministic: bool | None = None,
                 rngs: nnx.Rngs | nnx.RngStream | Array | None = None) -> Array:
        train, key = self._key(deterministic, rngs, self.rate > 0)
        return self._call(self, x, key, train)


class Dropout(_Dropout):
    """Inverted dropout; the NNX form of :class:`jaxcnn.layers.Dropout` (see there), switched
    as ``flax.nnx.Dropout``: training while ``deterministic`` is False (``model.train()``),
    the identity after ``model.eval()``.

    Args:
        rate: probability of dropping a unit, in ``[0, 1]``.
        deterministic: start in evaluation mode. Default False, as ``flax.nnx.Dropout``.
        rng_collection: the stream of ``rngs`` the keys come from. Default ``"dropout"``.
        rngs: an ``nnx.Rngs`` (or stream) to fork the layer's key stream from; may be left out
            when every training call passes ``rngs=``.

    The call takes ``deterministic`` and ``rngs`` (an ``nnx.Rngs``, stream or key) to
    override the layer's.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> layer = Dropout(0.5, rngs=nnx.Rngs(dropout=0))
        >>> sorted(set(layer(jnp.ones((2, 8))).ravel().tolist()))   # training: 0 or 1 / 0.5
        [0.0, 2.0]
        >>> layer.eval()
        >>> layer(jnp.ones((2, 8))).sum()                            # evaluation: identity
        Array(16., dtype=float32)
    """

    _call = staticmethod(S.dropout_call)


class SpatialDropout(_Dropout):
    """Spatial (channel) dropout: whole feature maps dropped; the NNX form of
    :class:`jaxcnn.layers.SpatialDropout`, built, switched and seeded as :class:`Dropout`.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> y = SpatialDropout(0.5, rngs=nnx.Rngs(dropout=1))(jnp.ones((1, 4, 4, 8)))
        >>> bool(((y == 0).all(axis=(1, 2)) | (y == 2).all(axis=(1, 2))).all())
        True
    """

    _call = staticmethod(S.spatial_dropout_call)


def _activation_call(m: Activation, x: Array) -> Array:
    return L.get_activation(m.activation)(x)


class Activation(Stateless, linen=L.Activation, call=_activation_call):
    """An activation function as a named module: ``Activation("relu")``; the NNX form of
    :class:`jaxcnn.layers.Activation` (names: :func:`jaxcnn.layers.get_activation`).

    Example:
        >>> import jax.numpy as jnp
        >>> Activation("relu")(jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
    """
