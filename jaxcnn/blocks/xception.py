"""Xception blocks (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions").

Xception is a linear stack of depthwise-separable convolutions with residual connections:

* :class:`EntryFlowBlock` (and :class:`ExitFlowBlock`, the same module with the exit flow's
  widths): two separable convolutions + norm, a 3x3 stride-2 max pool, and a strided 1x1
  convolution + norm on the shortcut;
* :class:`MiddleFlowBlock`: three (act, separable convolution, norm) and the identity shortcut.

The layout is Keras' ``keras.applications.Xception``: "SAME" padding, separable convolutions
without bias, BatchNorm with Keras' defaults (``epsilon=1e-3``, ``momentum=0.99``,
:data:`KERAS_BATCH_NORM`). Submodule names are Keras' layer names without the ``blockN_``
prefix (Keras ``block2_sepconv1_bn`` is ``block2/sepconv1_bn`` here; Keras' unnamed shortcut
``conv2d``/``batch_normalization`` are ``residual_conv``/``residual_bn``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_rank
from jaxcnn.layers._utils import positive_int

__all__ = ["KERAS_BATCH_NORM", "EntryFlowBlock", "ExitFlowBlock", "MiddleFlowBlock"]

ModuleDef = Any
Array = jax.Array

KERAS_BATCH_NORM = partial(L.BatchNorm, momentum=0.99, epsilon=1e-3)
"""Keras' ``BatchNormalization()`` defaults (its momentum has Flax's meaning)."""

_LAYOUT = "(N, *spatial, C)"


def _pair(features: int | Sequence[int]) -> tuple[int, int]:
    """The two separable convolutions' widths: an int for both, or one per convolution."""
    pair = (features, features) if isinstance(features, int) else tuple(features)
    if len(pair) != 2:
        raise ValueError(f"`features` must be an int or a pair (sepconv1, sepconv2), got "
                         f"{features!r}.")
    return positive_int(pair[0], "features"), positive_int(pair[1], "features")


class EntryFlowBlock(nn.Module):
    """Xception downsampling module: two separable convolutions, max pool, 1x1 strided shortcut.

    ``y = maxpool_3x3/2(norm(sep_f2(act(norm(sep_f1(act?(x))))))) + norm(conv1x1/2(x))``,
    all "SAME" padded (output ``ceil(H / 2)``), ``act?`` present when ``first_act`` is True.
    Entry flow: blocks 2-4 with ``features`` 128 (``first_act=False``: block 1 already ends
    with a ReLU), 256, 728; the exit flow's residual module is the same with
    ``(728, 1024)`` (:class:`ExitFlowBlock`).

    Args:
        features: output channels of both separable convolutions (an int), or one per
            convolution ``(f1, f2)``; the shortcut has ``f2`` channels.
        first_act: apply ``act`` before the first separable convolution. Default True.
        sepconv: separable convolution factory, called ``sepconv(features, 3,
            padding="SAME", name=...)``; default ``partial(L.SeparableConv, use_bias=False)``.
        conv: convolution factory of the shortcut; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory, called ``norm(name=...)(x, train=train)``; default
            :data:`KERAS_BATCH_NORM`.
        act: activation; default ``F.relu``.

    Submodules: ``residual_conv``, ``residual_bn``, ``sepconv1``, ``sepconv1_bn``,
    ``sepconv2``, ``sepconv2_bn``, ``pool``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = EntryFlowBlock(16, first_act=False)
        >>> x = jnp.ones((2, 9, 9, 8))
        >>> variables = block.init(jax.random.key(0), x)
        >>> block.apply(variables, x).shape
        (2, 5, 5, 16)
        >>> jax.tree.map(jnp.shape, variables["params"]["sepconv1"])
        {'depthwise_kernel': (3, 3, 1, 8), 'pointwise_kernel': (1, 1, 8, 16)}
    """

    features: int | Sequence[int]
    first_act: bool = True
    sepconv: ModuleDef = partial(L.SeparableConv, use_bias=False)
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = KERAS_BATCH_NORM
    act: Callable[[Array], Array] = F.relu

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for {type(self).__name__}")
        f1, f2 = _pair(self.features)
        residual = self.conv(f2, 1, strides=2, padding="SAME", name="residual_conv")(x)
        residual = self.norm(name="residual_bn")(residual, train=train)
        y = self.act(x) if self.first_act else x
        y = self.sepconv(f1, 3, padding="SAME", name="sepconv1")(y)
        y = self.act(self.norm(name="sepconv1_bn")(y, train=train))
        y = self.sepconv(f2, 3, padding="SAME", name="sepconv2")(y)
        y = self.norm(name="sepconv2_bn")(y, train=train)
        y = L.MaxPool(3, strides=2, padding="SAME", name="pool")(y)
        return y + residual


class ExitFlowBlock(EntryFlowBlock):
    """Xception exit-flow residual module: :class:`EntryFlowBlock` with widths (728, 1024).

    ``y = maxpool_3x3/2(norm(sep_1024(act(norm(sep_728(act(x))))))) + norm(conv1x1/2(x))``
    (Keras ``block13``). The exit flow's last two separable convolutions (1536, 2048, each
    followed by norm and act, Keras ``block14``) have no shortcut and live in
    :class:`jaxcnn.models.xception.Xception`.

    Args:
        features: ``(f1, f2)``; default ``(728, 1024)``.
        first_act, sepconv, conv, norm, act: as :class:`EntryFlowBlock`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = ExitFlowBlock((12, 16))
        >>> x = jnp.ones((1, 4, 4, 12))
        >>> block.apply(block.init(jax.random.key(0), x), x).shape
        (1, 2, 2, 16)
    """

    features: int | Sequence[int] = (728, 1024)


class MiddleFlowBlock(nn.Module):
    """Xception middle-flow module: ``num_convs`` x (act, separable conv, norm) + identity.

    ``y = x + norm(sep(act(norm(sep(act(norm(sep(act(x)))))))))`` (three convolutions by
    default, 728 channels in Xception, repeated 8 times).

    Args:
        features: channels; must equal the input's (identity shortcut). Default (None): the
            input's.
        num_convs: separable convolutions in the residual branch. Default 3.
        sepconv, norm, act: as :class:`EntryFlowBlock`.

    Submodules: ``sepconv1``, ``sepconv1_bn``, ..., ``sepconv{num_convs}_bn``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = MiddleFlowBlock()
        >>> x = jnp.ones((2, 3, 3, 16))
        >>> variables = block.init(jax.random.key(0), x)
        >>> block.apply(variables, x).shape, sorted(variables["params"])[:2]
        ((2, 3, 3, 16), ['sepconv1', 'sepconv1_bn'])
    """

    features: int | None = None
    num_convs: int = 3
    sepconv: ModuleDef = partial(L.SeparableConv, use_bias=False)
    norm: ModuleDef = KERAS_BATCH_NORM
    act: Callable[[Array], Array] = F.relu

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for MiddleFlowBlock")
        features = x.shape[-1] if self.features is None else positive_int(self.features,
                                                                           "features")
        if features != x.shape[-1]:
            raise ValueError(f"`features`={features} must equal the input channels of the "
                             f"identity shortcut, got input shape {x.shape}.")
        y = x
        for i in range(1, positive_int(self.num_convs, "num_convs") + 1):
            y = self.sepconv(features, 3, padding="SAME", name=f"sepconv{i}")(self.act(y))
            y = self.norm(name=f"sepconv{i}_bn")(y, train=train)
        return x + y
