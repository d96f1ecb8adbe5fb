"""Core layers: Dense, Dropout, SpatialDropout, Maxout and named activations.

Thin Flax linen wrappers around :mod:`jaxcnn.functional`. Dropout layers draw their key from
the ``"dropout"`` rng stream, so a training step passes ``rngs={"dropout": key}``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn import _layer_specs as S
from jaxcnn import functional as F
from jaxcnn.layers._utils import Array, Dtype, Initializer, declare, dropout_key, positive_int

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Dense",
    "Dropout",
    "Maxout",
    "SpatialDropout",
    "get_activation",
]

default_kernel_init = nn.initializers.lecun_normal()


def _identity(x: Array) -> Array:
    return x


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": F.relu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "elu": F.elu,
    "leaky_relu": F.leaky_relu,
    "gelu": F.gelu,
    "swish": F.swish,
    "silu": F.swish,
    "step": F.step,
    "rectify": F.rectify,
    "softmax": F.softmax,
    "log_softmax": F.log_softmax,
    "identity": _identity,
    "linear": _identity,
}
"""Activation names understood by :func:`get_activation` and :class:`Activation`."""


def get_activation(name: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    """The activation function called ``name`` (case-insensitive); callables pass through.

    Names: ``relu``, ``tanh``, ``sigmoid``, ``elu``, ``leaky_relu``, ``gelu``, ``swish``
    (``silu``), ``step`` (perceptron sign), ``rectify`` (``|x|``, Jarrett et al. 2009),
    ``softmax``, ``log_softmax`` and ``identity`` (``linear``), i.e. the keys of
    :data:`ACTIVATIONS`, each the :mod:`jaxcnn.functional` function of that name.

    Args:
        name: an activation name, or a callable returned unchanged (so configs may hold either).

    Raises:
        ValueError: for an unknown name, suggesting the closest known ones.

    Example:
        >>> import jax.numpy as jnp
        >>> get_activation("ReLU")(jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
        >>> get_activation("rleu")
        Traceback (most recent call last):
        ...
        ValueError: unknown activation name 'rleu'. Did you mean 'relu'...
    """
    if callable(name):
        return name
    if not isinstance(name, str):
        raise TypeError(f"`name` must be an activation name or a callable, got {name!r}.")
    key = name.lower()
    if key not in ACTIVATIONS:
        close = difflib.get_close_matches(key, list(ACTIVATIONS), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown activation name {name!r}.{hint} "
                         f"Known names: {', '.join(sorted(ACTIVATIONS))}.")
    return ACTIVATIONS[key]


class Activation(nn.Module):
    """An activation function as a named module, for configs: ``Activation("relu")``.

    ``y = f(x)`` with ``f = get_activation(name)`` (see :func:`get_activation`). Having a module
    gives the activation a place (and a name) in the module tree, so
    ``capture_intermediates`` and :func:`jaxcnn.inspect.summary` see it.

    Args:
        activation: an activation name (e.g. ``"relu"``, ``"tanh"``) or a callable. (Flax
            reserves the attribute ``name`` for the module's own name.)

    Example:
        >>> import jax.numpy as jnp
        >>> Activation("tanh").apply({}, jnp.array([0.0, 100.0]))
        Array([0., 1.], dtype=float32)
    """

    activation: str | Callable[[Array], Array]

    def __call__(self, x: Array) -> Array:
        return get_activation(self.activation)(x)


class Dense(nn.Module):
    """Fully connected layer ``y = x @ kernel + bias`` over the last axis.

    Computed by :func:`jaxcnn.functional.dense`; same parameters and numerics as
    ``flax.linen.Dense``. Flattens nothing: reshape feature maps first
    (``x.reshape(x.shape[0], -1)``).

    Args:
        features: number of output units.
        use_bias: add a learned ``bias`` ``(features,)``. Default True.
        dtype: compute dtype (input and params cast to it); None promotes like Flax.
        param_dtype: dtype of the stored parameters. Default float32.
        kernel_init: initializer of ``kernel`` ``(in_features, features)``; default LeCun
            normal.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer = Dense(10)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 84)))
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'bias': (10,), 'kernel': (84, 10)}
        >>> layer.apply(variables, jnp.ones((4, 84))).shape
        (4, 10)
    """

    features: int
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = default_kernel_init
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return S.dense_call(self, x, declare(self, S.dense_vars(self, x), x, unit="features"))


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013): ``Dense(features * pieces)`` then the max per group.

    ``y[..., j] = max_{k < pieces} (x @ W + b)[..., j * pieces + k]``: a learned convex
    piecewise-linear activation. The affine part is a :class:`Dense` submodule named
    ``"dense"`` (params ``dense/kernel`` ``(in, features * pieces)``, ``dense/bias``), the max
    is :func:`jaxcnn.functional.maxout`.

    Args:
        features: number of output units.
        pieces: linear pieces per unit, >= 1.
        use_bias: bias of the affine part. Default True.
        dtype: compute dtype; None promotes like Flax.
        param_dtype: dtype of the parameters. Default float32.
        kernel_init: initializer of the affine kernel; default LeCun normal.
        bias_init: initializer of the affine bias; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer, x = Maxout(16, pieces=3), jnp.ones((4, 8))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)  # shapes only
        >>> variables["params"]["dense"]["kernel"].shape
        (8, 48)
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (4, 16)
    """

    features: int
    pieces: int
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = default_kernel_init
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        pieces = positive_int(self.pieces, "pieces")
        z = Dense(self.features * pieces, use_bias=self.use_bias, dtype=self.dtype,
                  param_dtype=self.param_dtype, kernel_init=self.kernel_init,
                  bias_init=self.bias_init, name="dense")(x)
        return F.maxout(z, pieces)


class Dropout(nn.Module):
    """Inverted dropout layer (Srivastava et al. 2014); the identity at evaluation.

    Training: ``y = x * m / (1 - rate)``, ``m ~ Bernoulli(1 - rate)`` per element; see
    :func:`jaxcnn.functional.dropout`. The key comes from the ``"dropout"`` rng stream.

    Args:
        rate: probability of DROPPING a unit, in ``[0, 1]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.ones((2, 4))
        >>> bool((Dropout(0.5).apply({}, x) == x).all())                # eval: identity
        True
        >>> y = Dropout(0.5).apply({}, x, train=True, rngs={"dropout": jax.random.key(0)})
        >>> set(y.ravel().tolist()) <= {0.0, 2.0}
        True
    """

    rate: float

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        return S.dropout_call(self, x, dropout_key(self, train, self.rate > 0), train)


class SpatialDropout(nn.Module):
    """Spatial (channel) dropout layer (Tompson et al. 2015): drops whole feature maps.

    Training: one Bernoulli draw per example and channel, broadcast over the spatial axes,
    ``y[n, ..., c] = x[n, ..., c] * m[n, c] / (1 - rate)``; see
    :func:`jaxcnn.functional.spatial_dropout`. The key comes from the ``"dropout"`` rng stream.

    Args:
        rate: probability of dropping a channel, in ``[0, 1]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> y = SpatialDropout(0.5).apply({}, jnp.ones((1, 4, 4, 8)), train=True,
        ...                               rngs={"dropout": jax.random.key(1)})
        >>> bool(((y == 0).all(axis=(1, 2)) | (y == 2).all(axis=(1, 2))).all())
        True
    """

    rate: float

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        return S.spatial_dropout_call(self, x, dropout_key(self, train, self.rate > 0), train)
