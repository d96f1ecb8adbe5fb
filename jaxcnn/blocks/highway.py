"""Highway layers (Srivastava, Greff & Schmidhuber 2015, "Training Very Deep Networks"; "Highway
Networks"), in dense and convolutional form.

A highway layer mixes a transform ``H(x)`` with its input through a learned gate
``T(x) = sigmoid(W_T x + b_T)`` in (0, 1)::

    y = T(x) * H(x) + (1 - T(x)) * x

``1 - T`` is the "carry" gate. The transform-gate bias ``b_T`` is initialised NEGATIVE so a
fresh network starts close to the identity (carry behaviour) and gradients reach deep layers;
the paper suggests values such as -1 to -3, more negative for deeper networks. The default
here is -2 (``T`` about 0.12 at start). ``H`` and ``T`` must keep the input's shape, so the
layers have no width or stride argument: change the width or resolution between highway
layers with a plain convolution or pooling.

The gates are sown as ``intermediates/gates`` (read them with ``mutable=["intermediates"]``).
Submodule names: ``transform`` (``H``'s dense / convolution), ``norm`` (optional), ``gate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank

__all__ = ["HighwayConv", "HighwayDense"]

ModuleDef = Any
Array = jax.Array


def _carry(x: Array, h: Array, t: Array) -> Array:
    # x + t * (h - x) is T*H + (1 - T)*x with one multiplication fewer.
    return x + t * (h - x)


class HighwayDense(nn.Module):
    """Dense highway layer: ``y = T(x) * H(x) + (1 - T(x)) * x`` over the last axis.

    ``H(x) = act(x @ W_H + b_H)``, ``T(x) = sigmoid(x @ W_T + b_T)`` with ``W_H, W_T`` of shape
    ``(C, C)``; ``2 * (C * C + C)`` parameters. ``b_T`` starts at ``gate_bias`` (negative:
    carry the input at first, Srivastava et al. 2015).

    Args:
        act: activation of ``H``; default ``F.relu``.
        gate_bias: initial value of the transform-gate bias; default -2.0 (the paper suggests
            -1 to -3).
        dense: dense-layer factory, called ``dense(features, name=...)``; default ``L.Dense``.

    Input ``(..., C)``; output of the same shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer = HighwayDense()
        >>> x = jax.random.normal(jax.random.key(0), (4, 16))
        >>> variables = layer.init(jax.random.key(1), x)
        >>> variables["params"]["gate"]["bias"][:3]
        Array([-2., -2., -2.], dtype=float32)
        >>> y, state = layer.apply(variables, x, mutable=["intermediates"])
        >>> y.shape, state["intermediates"]["gates"][0].shape
        ((4, 16), (4, 16))
    """

    act: Callable[[Array], Array] = F.relu
    gate_bias: float = -2.0
    dense: ModuleDef = L.Dense

    @nn.compact
    def __call__(self, x: Array) -> Array:
        check_float(x, "x")
        if x.ndim < 1:
            raise ValueError(f"`x` must have a feature axis (..., C), got shape {x.shape}.")
        features = x.shape[-1]
        h = self.act(self.dense(features, name="transform")(x))
        t = F.sigmoid(self.dense(features, bias_init=nn.initializers.constant(self.gate_bias),
                                 name="gate")(x))
        self.sow("intermediates", "gates", t)
        return _carry(x, h, t)


class HighwayConv(nn.Module):
    """Convolutional highway layer: ``y = T(x) * H(x) + (1 - T(x)) * x`` per pixel and channel.

    ``H(x) = act(norm(conv_H(x)))`` and ``T(x) = sigmoid(conv_T(x) + b_T)``, both ``k x k``
    convolutions with ``"SAME"`` padding, stride 1 and ``C`` output channels (the convolutional
    highway networks of Srivastava et al. 2015, sec. 4); ``b_T`` starts at ``gate_bias``.
    Parameters without a norm: ``2 * (k*k*C*C + C)``.

    Args:
        kernel_size: window of both convolutions, an int or one per spatial dim; default 3.
        conv: convolution factory, called ``conv(features, kernel_size, strides=1,
            padding="SAME", name=...)``; default ``L.Conv`` (with bias). The gate is built with
            ``use_bias=True`` and ``bias_init`` set, whatever ``conv`` fixes, so e.g.
            ``partial(L.Conv, use_bias=False)`` with a ``norm`` drops only ``H``'s bias.
        norm: optional normalization factory on ``H``'s pre-activation, called
            ``norm(name="norm")(y, train=train)`` (e.g. ``L.BatchNorm``); default None.
        act: activation of ``H``; default ``F.relu``.
        gate_bias: initial transform-gate bias; default -2.0 (the paper suggests -1 to -3).

    Input ``(N, *spatial, C)`` with 1-3 spatial dims; output of the same shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer = HighwayConv()
        >>> x = jnp.ones((2, 8, 8, 4))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)   # shapes only
        >>> jax.tree.map(jnp.shape, variables["params"]["gate"])
        {'bias': (4,), 'kernel': (3, 3, 4, 4)}
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (2, 8, 8, 4)
    """

    kernel_size: int | tuple[int, ...] = 3
    conv: ModuleDef = L.Conv
    norm: ModuleDef | None = None
    act: Callable[[Array], Array] = F.relu
    gate_bias: float = -2.0

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), "(N, *spatial, C) for HighwayConv")
        check_float(x, "x")
        features = x.shape[-1]
        h = self.conv(features, self.kernel_size, strides=1, padding="SAME",
                      name="transform")(x)
        if self.norm is not None:
            h = self.norm(name="norm")(h, train=train)
        h = self.act(h)
        t = self.conv(features, self.kernel_size, strides=1, padding="SAME", use_bias=True,
                      bias_init=nn.initializers.constant(self.gate_bias), name="gate")(x)
        t = F.sigmoid(t)
        self.sow("intermediates", "gates", t)
        return _carry(x, h, t)
