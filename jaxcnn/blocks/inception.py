"""Inception v1 blocks (Szegedy et al. 2015, "Going Deeper with Convolutions", GoogLeNet).

:class:`BasicConv` is torchvision's ``BasicConv2d`` (convolution without bias, batch norm with
``epsilon=1e-3``, ReLU); :class:`Inception` is the four-branch module and
:class:`InceptionAux` the auxiliary classifier. Like every block in :mod:`jaxcnn.blocks` they
take their parts as arguments (``conv``, ``norm``, ``act``), so GroupNorm or LocalConv swap in
without a copy of the block.

Submodule names follow torchvision with ``.`` replaced by ``_`` (``branch2.0.conv`` is
``branch2_0/conv``), so torchvision's GoogLeNet weights map 1:1 (convolution kernels
transposed from OIHW to HWIO).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_rank, normalize_tuple
from jaxcnn.functional.shapes import Padding
from jaxcnn.layers._utils import positive_int

__all__ = ["BasicConv", "Inception", "InceptionAux", "TORCHVISION_BATCH_NORM"]

ModuleDef = Any
Array = jax.Array

TORCHVISION_BATCH_NORM = partial(L.BatchNorm, epsilon=1e-3)
"""torchvision's GoogLeNet norm, ``BatchNorm2d(eps=0.001)`` (momentum 0.1 = Flax's 0.9)."""

_LAYOUT = "(N, *spatial, C)"


def _centre_padding(kernel_size: int | Sequence[int], ndim: int) -> int | tuple[int, ...]:
    """``k // 2`` on both sides per dim: torchvision's padding, "same" size for odd kernels."""
    window = normalize_tuple(kernel_size, ndim - 2, "kernel_size")
    return tuple(k // 2 for k in window)


class BasicConv(nn.Module):
    """Convolution (no bias), normalization, activation: torchvision's ``BasicConv2d``.

    ``y = act(norm(conv(x)))``; with the defaults ``y = relu(BN_eps=1e-3(x * W))``.

    Args:
        features: output channels.
        kernel_size: window, an int or one per spatial dim.
        strides: int or per dim. Default 1.
        padding: any form :class:`~jaxcnn.layers.Conv` accepts; default (None) ``k // 2`` on
            both sides of each dim, as torchvision (same size for odd kernels at stride 1).
        conv: convolution factory, called ``conv(features, kernel_size, strides=...,
            padding=..., name="conv")``; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory, called ``norm(name="bn")(y, train=train)``; default
            :data:`TORCHVISION_BATCH_NORM` (``epsilon=1e-3``).
        act: activation; default ``F.relu``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> unit = BasicConv(16, 7, strides=2, padding=3)
        >>> variables = unit.init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'bn': {'bias': (16,), 'scale': (16,)}, 'conv': {'kernel': (7, 7, 3, 16)}}
        >>> unit.apply(variables, jnp.ones((2, 32, 32, 3))).shape
        (2, 16, 16, 16)
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: Padding | None = None
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = TORCHVISION_BATCH_NORM
    act: Callable[[Array], Array] = F.relu

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for BasicConv")
        padding = (_centre_padding(self.kernel_size, x.ndim) if self.padding is None
                   else self.padding)
        y = self.conv(self.features, self.kernel_size, strides=self.strides, padding=padding,
                      name="conv")(x)
        return self.act(self.norm(name="bn")(y, train=train))


class Inception(nn.Module):
    """Inception v1 module: four parallel branches concatenated on the channel axis.

    ``y = concat[b1(x), b2(x), b3(x), b4(x)]`` (this order, as torchvision) with

    * ``b1 = unit_1x1(x)`` (``ch1x1`` channels);
    * ``b2 = unit_3x3(unit_1x1(x))`` (``ch3x3_reduce`` then ``ch3x3``);
    * ``b3 = unit_kxk(unit_1x1(x))`` (``ch5x5_reduce`` then ``ch5x5``, ``k = kernel_5x5``);
    * ``b4 = unit_1x1(maxpool_3x3/1(x))`` (``pool_proj``; max pool padded 1 with ``-inf``);

    where every ``unit`` is a :class:`BasicConv` (conv, norm, act). The output has
    ``ch1x1 + ch3x3 + ch5x5 + pool_proj`` channels and the input's spatial size.

    The paper's "5x5" branch uses a 5x5 kernel (the default here); torchvision's GoogLeNet
    uses 3x3 there (a known bug kept for its pretrained weights), so
    :func:`jaxcnn.models.googlenet` passes ``kernel_5x5=3``.

    Args:
        ch1x1: channels of the 1x1 branch.
        ch3x3_reduce: channels of the 1x1 reduction before the 3x3 convolution.
        ch3x3: channels of the 3x3 convolution.
        ch5x5_reduce: channels of the 1x1 reduction before the "5x5" convolution.
        ch5x5: channels of the "5x5" convolution.
        pool_proj: channels of the 1x1 projection after the max pool.
        kernel_5x5: kernel size of the "5x5" branch, a positive odd int (padding ``k // 2``
            keeps the size). Default 5 (the paper); 3 for torchvision compatibility.
        conv: convolution factory; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory; default :data:`TORCHVISION_BATCH_NORM`.
        act: activation; default ``F.relu``.

    Submodules: ``branch1``, ``branch2_0``, ``branch2_1``, ``branch3_0``, ``branch3_1``,
    ``branch4_0`` (the pool), ``branch4_1``; each unit has ``conv`` and ``bn``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = Inception(64, 96, 128, 16, 32, 32)                # GoogLeNet's 3a
        >>> x = jnp.ones((1, 8, 8, 192))
        >>> variables = block.init(jax.random.key(0), x)
        >>> block.apply(variables, x).shape                         # 64 + 128 + 32 + 32
        (1, 8, 8, 256)
        >>> variables["params"]["branch3_1"]["conv"]["kernel"].shape
        (5, 5, 16, 32)
    """

    ch1x1: int
    ch3x3_reduce: int
    ch3x3: int
    ch5x5_reduce: int
    ch5x5: int
    pool_proj: int
    kernel_5x5: int = 5
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = TORCHVISION_BATCH_NORM
    act: Callable[[Array], Array] = F.relu

    def _validate(self, x: Array) -> None:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for Inception")
        for name in ("ch1x1", "ch3x3_reduce", "ch3x3", "ch5x5_reduce", "ch5x5", "pool_proj"):
            positive_int(getattr(self, name), name)
        k = self.kernel_5x5
        if positive_int(k, "kernel_5x5") % 2 == 0:
            raise ValueError(f"`kernel_5x5` must be odd so that padding k // 2 keeps the "
                             f"spatial size {x.shape[1:-1]}, got {k!r}.")

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        self._validate(x)
        unit = partial(BasicConv, conv=self.conv, norm=self.norm, act=self.act)
        b1 = unit(self.ch1x1, 1, name="branch1")(x, train)
        b2 = unit(self.ch3x3_reduce, 1, name="branch2_0")(x, train)
        b2 = unit(self.ch3x3, 3, name="branch2_1")(b2, train)
        b3 = unit(self.ch5x5_reduce, 1, name="branch3_0")(x, train)
        b3 = unit(self.ch5x5, self.kernel_5x5, name="branch3_1")(b3, train)
        b4 = L.MaxPool(3, strides=1, padding=1, name="branch4_0")(x)
        b4 = unit(self.pool_proj, 1, name="branch4_1")(b4, train)
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier, attached to an intermediate feature map in training.

    ``logits = fc2(dropout(act(fc1(flatten(unit_1x1(adaptive_avg_pool_4x4(x)))))))``
    (Szegedy et al. 2015, Sec. 5: 128 1x1 filters, a 1024-unit layer, dropout 0.7; torchvision
    pools adaptively to 4x4 instead of the paper's 5x5/3 average pool, identical on 14x14).

    The flatten is channel-major, ``(N, C, H, W)`` order as in PyTorch, so torchvision's
    ``fc1`` weight transposed is this ``fc1/kernel`` unchanged.

    Args:
        num_classes: size of the output.
        conv_features: channels of the 1x1 unit. Default 128.
        hidden: units of ``fc1``. Default 1024.
        dropout_rate: dropout before ``fc2``. Default 0.7.
        pool_size: side of the adaptive average pool. Default 4.
        conv, norm, act: as :class:`Inception`.
        dtype: compute dtype of the two dense layers (None: promote like Flax).

    Submodules: ``pool``, ``conv`` (a :class:`BasicConv`), ``fc1``, ``dropout``, ``fc2``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> head = InceptionAux(10)
        >>> x = jnp.ones((2, 14, 14, 512))
        >>> variables = head.init(jax.random.key(0), x)
        >>> variables["params"]["fc1"]["kernel"].shape                # 128 * 4 * 4
        (2048, 1024)
        >>> head.apply(variables, x).shape
        (2, 10)
    """

    num_classes: int
    conv_features: int = 128
    hidden: int = 1024
    dropout_rate: float = 0.7
    pool_size: int = 4
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = TORCHVISION_BATCH_NORM
    act: Callable[[Array], Array] = F.relu
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for InceptionAux")
        positive_int(self.num_classes, "num_classes")
        y = L.AdaptiveAvgPool(positive_int(self.pool_size, "pool_size"), name="pool")(x)
        y = BasicConv(self.conv_features, 1, conv=self.conv, norm=self.norm, act=self.act,
                      name="conv")(y, train)
        y = jnp.moveaxis(y, -1, 1).reshape(y.shape[0], -1)   # PyTorch's flatten order
        y = self.act(L.Dense(self.hidden, dtype=self.dtype, name="fc1")(y))
        y = L.Dropout(self.dropout_rate, name="dropout")(y, train=train)
        return L.Dense(self.num_classes, dtype=self.dtype, name="fc2")(y)
