"""Dense blocks (Huang et al. 2017, "Densely Connected Convolutional Networks", DenseNet-BC).

Inside a :class:`DenseBlock` every :class:`DenseLayer` sees the concatenation of the block's
input and of all earlier layers' outputs, and adds ``growth_rate`` new channels; a
:class:`Transition` between blocks compresses the channels (factor 0.5 in DenseNet-BC) and
halves the resolution. Blocks take ``conv``, ``norm`` and ``act`` as arguments (defaults
``partial(L.Conv, use_bias=False)``, ``L.BatchNorm``, ``F.relu``, torchvision's layers).

Submodule names follow torchvision (``denselayer1`` ... with ``norm1``, ``conv1``, ``norm2``,
``conv2``; a transition's ``norm``, ``conv``, ``pool``), so its DenseNet weights map 1:1.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_rank
from jaxcnn.layers._utils import positive_int

__all__ = ["DenseBlock", "DenseLayer", "Transition"]

ModuleDef = Any
Array = jax.Array

_LAYOUT = "(N, *spatial, C)"


class DenseLayer(nn.Module):
    """DenseNet-BC bottleneck layer: BN-ReLU-1x1 conv (``bn_size * k``)-BN-ReLU-3x3 conv (``k``).

    ``y = conv3x3_k(act(norm(conv1x1_4k(act(norm(x))))))``, then dropout when
    ``drop_rate > 0`` (in training). Returns only the ``k = growth_rate`` NEW channels;
    :class:`DenseBlock` concatenates them to its running feature map.

    Args:
        growth_rate: ``k``, output channels.
        bn_size: bottleneck width factor: the 1x1 convolution has ``bn_size * k`` channels
            (4 in the paper, "B"). None drops the bottleneck, giving the plain DenseNet layer
            BN-ReLU-3x3 conv.
        drop_rate: dropout after the 3x3 convolution, as torchvision (the paper uses 0.2
            without data augmentation); needs ``rngs={"dropout": key}`` in training. Default 0.
        conv: convolution factory, called ``conv(features, kernel, strides=1, padding=...,
            name=...)``; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory, called ``norm(name=...)(x, train=train)``; default
            ``L.BatchNorm``.
        act: activation; default ``F.relu``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> layer = DenseLayer(12)
        >>> x = jnp.ones((2, 8, 8, 24))
        >>> variables = layer.init(jax.random.key(0), x)
        >>> sorted(variables["params"])
        ['conv1', 'conv2', 'norm1', 'norm2']
        >>> variables["params"]["conv1"]["kernel"].shape, layer.apply(variables, x).shape
        ((1, 1, 24, 48), (2, 8, 8, 12))
    """

    growth_rate: int
    bn_size: int | None = 4
    drop_rate: float = 0.0
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for DenseLayer")
        k = positive_int(self.growth_rate, "growth_rate")
        y = self.act(self.norm(name="norm1")(x, train=train))
        if self.bn_size is not None:
            width = positive_int(self.bn_size, "bn_size") * k
            y = self.conv(width, 1, strides=1, padding=0, name="conv1")(y)
            y = self.act(self.norm(name="norm2")(y, train=train))
        y = self.conv(k, 3, strides=1, padding=1, name="conv2")(y)
        if self.drop_rate > 0:
            y = L.Dropout(self.drop_rate, name="dropout")(y, train=train)
        return y


class DenseBlock(nn.Module):
    """Dense block: ``num_layers`` :class:`DenseLayer` s, each fed all earlier feature maps.

    ``x_0 = x``, ``x_l = concat[x_{l-1}, H_l(x_{l-1})]`` for ``l = 1 .. L``, so layer ``l``
    sees ``C + (l - 1) k`` channels and the block returns ``x_L`` with ``C + L k`` channels,
    in the order input, layer 1, ..., layer ``L`` (torchvision's ``torch.cat(features, 1)``).

    Args:
        num_layers: ``L``, the number of dense layers.
        growth_rate: ``k``, channels added by each layer.
        bn_size: bottleneck factor of each layer (4; None for no bottleneck).
        drop_rate: dropout inside each layer; default 0.
        conv, norm, act: as :class:`DenseLayer`.

    Submodules: ``denselayer1`` ... ``denselayer{L}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = DenseBlock(num_layers=3, growth_rate=4)
        >>> x = jnp.ones((1, 4, 4, 8))
        >>> block.apply(block.init(jax.random.key(0), x), x).shape      # 8 + 3 * 4
        (1, 4, 4, 20)
    """

    num_layers: int
    growth_rate: int
    bn_size: int | None = 4
    drop_rate: float = 0.0
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for DenseBlock")
        for i in range(positive_int(self.num_layers, "num_layers")):
            new = DenseLayer(self.growth_rate, self.bn_size, self.drop_rate, conv=self.conv,
                             norm=self.norm, act=self.act, name=f"denselayer{i + 1}")(x, train)
            x = jnp.concatenate([x, new], axis=-1)
        return x


class Transition(nn.Module):
    """DenseNet transition layer: BN-ReLU-1x1 conv (compression), then 2x2 average pooling.

    ``y = avg_pool_2x2/2(conv1x1_m(act(norm(x))))`` with ``m = floor(compression * C)``
    (DenseNet-BC: ``compression = 0.5``, torchvision's ``C // 2``) unless ``features`` is
    given. Odd spatial sizes are floored by the pool, as PyTorch's ``AvgPool2d(2, 2)``.

    Args:
        features: output channels; default (None) ``floor(compression * C)``.
        compression: ``theta`` in ``(0, 1]``; default 0.5 ("C" in DenseNet-BC).
        conv, norm, act: as :class:`DenseLayer`.

    Submodules: ``norm``, ``conv``, ``pool``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> transition = Transition()
        >>> x = jnp.ones((1, 8, 8, 216))
        >>> transition.apply(transition.init(jax.random.key(0), x), x).shape
        (1, 4, 4, 108)
        >>> Transition(compression=1.5).init(jax.random.key(0), x)
        Traceback (most recent call last):
        ...
        ValueError: `compression` must be in (0, 1] ...
    """

    features: int | None = None
    compression: float = 0.5
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu

    def _out_features(self, x: Array) -> int:
        check_rank(x, "x", (3, 4, 5), f"{_LAYOUT} for Transition")
        if self.features is not None:
            return positive_int(self.features, "features")
        if not 0 < self.compression <= 1:
            raise ValueError(f"`compression` must be in (0, 1] (DenseNet-BC: 0.5), got "
                             f"{self.compression!r} for input shape {x.shape}.")
        out = int(self.compression * x.shape[-1])
        if out < 1:
            raise ValueError(f"`compression`={self.compression!r} leaves no channel of the "
                             f"{x.shape[-1]} of input shape {x.shape}.")
        return out

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        out = self._out_features(x)
        y = self.act(self.norm(name="norm")(x, train=train))
        y = self.conv(out, 1, strides=1, padding=0, name="conv")(y)
        return L.AvgPool(2, strides=2, name="pool")(y)
