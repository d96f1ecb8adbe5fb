"""Convolutional highway networks (Srivastava, Greff & Schmidhuber 2015, "Training Very Deep
Networks") for CIFAR / MNIST sized images, with configurable depth.

Registered as ``"highway_net"``. A stem convolution sets the width, ``depth`` highway layers
(:class:`~jaxcnn.blocks.highway.HighwayConv`, ``y = T * H(x) + (1 - T) * x``) follow in
``stages`` groups separated by 2x2 max pooling, then a global average and a dense head.
Because the gates start closed (negative gate bias), even deep stacks train with plain SGD,
the point of the paper.

Submodule names: ``stem_conv``, ``stage{i}_highway{j}`` (from 1), ``stage{i}_pool`` (between
stages), ``global_pool``, ``dropout``, ``head``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.blocks.highway import HighwayConv
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import CIFAR_INPUT, register

__all__ = ["HighwayNet", "highway_net"]

ModuleDef = Any
Array = jax.Array


def _stage_sizes(depth: int, stages: int) -> list[int]:
    """``depth`` layers over ``stages`` groups, the earlier groups one larger when uneven."""
    if stages > depth:
        raise ValueError(f"`stages` ({stages}) must not exceed `depth` ({depth}): every stage "
                         f"needs at least one highway layer.")
    return [depth // stages + (i < depth % stages) for i in range(stages)]


class HighwayNet(nn.Module):
    """Convolutional highway network: stem conv, ``depth`` highway layers, global pool, head.

    ``h = act(stem_conv(x))``; then for each stage its highway layers
    ``h <- T(h) * act(conv_H(h)) + (1 - T(h)) * h`` and, between stages, 2x2 max pooling;
    ``logits = head(dropout(mean_spatial(h)))``. Stage ``i`` holds
    ``depth // stages (+1 for the first depth % stages stages)`` layers.

    Parameter count (``k = kernel_size``, width ``w``, ``C`` input channels, ``K`` classes,
    no norm): stem ``k*k*C*w + w``; each highway layer ``2 (k*k*w*w + w)`` (transform and
    gate); head ``w*K + K``. Defaults on CIFAR (``C=3``, ``w=64``, ``k=3``, depth 9,
    ``K=10``): 1,728 + 64 = 1,792; 9 * 2 * (36,864 + 64) = 9 * 73,856 = 664,704;
    640 + 10 = 650; total **667,146** (on MNIST, ``C=1``: 640 + 664,704 + 650 = 665,994).

    Args:
        num_classes: size of the head; default 10.
        depth: number of highway layers; default 9.
        width: channels of the stem and of every highway layer; default 64.
        stages: groups of highway layers separated by 2x2 max pooling; default 3.
        kernel_size: window of every convolution; default 3.
        gate_bias: initial transform-gate bias (Srivastava et al. suggest -1 to -3, more
            negative for deeper networks); default -2.0.
        dropout_rate: dropout before the head; default 0.
        conv: convolution factory for the highway layers; default ``L.Conv``.
        norm: optional normalization inside each transform ``H`` (e.g. ``L.BatchNorm``);
            default None (the paper has none).
        act: activation; default ``F.relu``.
        dtype: compute dtype; params stay float32.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = HighwayNet(depth=5, stages=2)
        >>> x = jnp.ones((2, 28, 28, 1))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes, no memory
        >>> [name for name in variables["params"] if "highway" in name]
        ['stage1_highway1', 'stage1_highway2', 'stage1_highway3',
         'stage2_highway1', 'stage2_highway2']
        >>> jaxcnn.count_params(variables["params"]) == 640 + 5 * 73_856 + 650
        True
        >>> jax.eval_shape(model.apply, variables, x).shape
        (2, 10)
    """

    num_classes: int = 10
    depth: int = 9
    width: int = 64
    stages: int = 3
    kernel_size: int = 3
    gate_bias: float = -2.0
    dropout_rate: float = 0.0
    conv: ModuleDef = L.Conv
    norm: ModuleDef | None = None
    act: Callable[[Array], Array] = F.relu
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", (3, 4, 5), "(N, *spatial, C) for HighwayNet")
        check_float(x, "x")
        sizes = _stage_sizes(positive_int(self.depth, "depth"),
                             positive_int(self.stages, "stages"))
        conv = self.conv if self.dtype is None else partial(self.conv, dtype=self.dtype)
        norm = self.norm
        if norm is not None and self.dtype is not None:
            norm = partial(norm, dtype=self.dtype)
        width = positive_int(self.width, "width")
        x = self.act(conv(width, self.kernel_size, padding="SAME", name="stem_conv")(x))
        for i, n_layers in enumerate(sizes, start=1):
            if i > 1:
                x = L.MaxPool(2, name=f"stage{i - 1}_pool")(x)
            for j in range(1, n_layers + 1):
                x = HighwayConv(self.kernel_size, conv=conv, norm=norm, act=self.act,
                                gate_bias=self.gate_bias,
                                name=f"stage{i}_highway{j}")(x, train=train)
        x = L.GlobalAvgPool(name="global_pool")(x)
        x = L.Dropout(self.dropout_rate, name="dropout")(x, train=train)
        return L.Dense(positive_int(self.num_classes, "num_classes"), dtype=self.dtype,
                       name="head")(x)


@register("highway_net", input_shape=CIFAR_INPUT)
def highway_net(num_classes: int = 10, depth: int = 9, **options: Any) -> HighwayNet:
    """Convolutional highway network (Srivastava et al. 2015); 667,146 parameters by default.

    ``HighwayNet(num_classes, depth, **options)``: a 64-channel stem, ``depth`` 3x3 highway
    layers in 3 stages, global average pooling, dense head. Count for 32x32x3 inputs and 10
    classes at depth 9: 1,792 + 9 * 73,856 + 650 = 667,146; each extra layer adds 73,856
    (arithmetic in :class:`HighwayNet`). Registered as ``"highway_net"``.

    Args:
        num_classes: default 10.
        depth: number of highway layers; default 9 (try 30+: the gates keep it trainable).
        **options: other :class:`HighwayNet` fields (``width``, ``stages``, ``gate_bias``,
            ``dropout_rate``, ``norm``, ``dtype``).

    Example:
        >>> highway_net(depth=30).depth
        30
    """
    return HighwayNet(num_classes=num_classes, depth=depth, **options)
