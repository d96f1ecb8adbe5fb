"""Residual blocks: ResNet v1 / v1.5 (He et al. 2016) and pre-activation ResNet v2.

Every block takes its parts as arguments, as Flax's ImageNet example does: ``conv`` (called as
``conv(features, kernel_size, strides=..., padding=..., name=...)(x)``), ``norm`` (called as
``norm(name=...)(x, train=train)``) and ``act`` (an element-wise function). Swapping
``norm=partial(L.GroupNorm, num_groups=8)`` or ``conv=L.LocalConv`` needs no copy of a block.

3x3 convolutions pad 1 on both sides and 1x1 convolutions pad 0, as torchvision does (not
``"SAME"``, which pads a strided convolution on the high side only), so weights imported from
torchvision give the same activations. Submodule names follow torchvision
(``conv1``, ``bn1``, ..., ``downsample_conv``, ``downsample_bn``).

The shortcut is the identity when the block keeps the shape, and a strided 1x1 convolution
otherwise ("option B" of He et al. 2016): followed by a norm in v1, applied to the
pre-activated input without a norm in v2 (He et al. 2016, "Identity Mappings in Deep Residual
Networks", and Zagoruyko & Komodakis 2016).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_rank, normalize_tuple

__all__ = ["BasicBlock", "Bottleneck", "PreActBlock", "PreActBottleneck"]

ModuleDef = Any
Array = jax.Array

_STRIDE_ON = ("3x3", "1x1")


def _downsamples(x: Array, strides: int | tuple[int, ...], name: str) -> bool:
    """Whether ``strides`` downsamples ``x``; validates both."""
    check_rank(x, "x", (3, 4, 5), f"(N, *spatial, C) for {name}")
    return any(s != 1 for s in normalize_tuple(strides, x.ndim - 2, "strides"))


def _check_stride_on(stride_on: str) -> None:
    if stride_on not in _STRIDE_ON:
        raise ValueError(f"`stride_on` must be one of {_STRIDE_ON} (v1.5: '3x3', torchvision "
                         f"and Flax; original v1: '1x1'), got {stride_on!r}.")


def _bottleneck_strides(stride_on: str, strides) -> tuple[Any, Any]:
    """Strides of the (first 1x1, 3x3) convolutions of a bottleneck."""
    _check_stride_on(stride_on)
    return (strides, 1) if stride_on == "1x1" else (1, strides)


def _zero_scale_norm(norm: ModuleDef, zero: bool) -> ModuleDef:
    # Goyal et al. 2017: a zero last-BN scale makes every block start as the identity.
    return partial(norm, scale_init=nn.initializers.zeros) if zero else norm


def _zero_kernel_conv(conv: ModuleDef, zero: bool) -> ModuleDef:
    # Pre-activation blocks end with a conv, so zeroing its kernel gives the same identity start.
    return partial(conv, kernel_init=nn.initializers.zeros) if zero else conv


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016, ResNet-18/34): two 3x3 convolutions and a shortcut.

    ``y = act(norm(conv3x3(act(norm(conv3x3_s(x))))) + shortcut(x))`` with
    ``shortcut(x) = x`` when the shape is kept, else ``norm(conv1x1_s(x))``.

    Args:
        filters: output channels of both convolutions (expansion 1).
        strides: stride of the first 3x3 convolution and of the projection; default 1.
        conv: convolution factory; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory, called ``norm(name=...)(x, train=train)``; default
            ``L.BatchNorm``.
        act: activation function; default ``F.relu``.
        zero_init_residual: initialise the scale of the last norm (``bn2``) to zero so the
            block starts as the identity (Goyal et al. 2017); the norm must take
            ``scale_init``. Default False.

    Input ``(N, *spatial, C_in)`` with 1-3 spatial dims; output
    ``(N, *ceil(spatial / strides), filters)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = BasicBlock(16, strides=2)
        >>> x = jnp.ones((2, 8, 8, 8))
        >>> variables = block.init(jax.random.key(0), x)
        >>> block.apply(variables, x).shape
        (2, 4, 4, 16)
        >>> sorted(variables["params"])
        ['bn1', 'bn2', 'conv1', 'conv2', 'downsample_bn', 'downsample_conv']
    """

    filters: int
    strides: int | tuple[int, ...] = 1
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu
    zero_init_residual: bool = False

    expansion: ClassVar[int] = 1
    preact: ClassVar[bool] = False

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        downsample = _downsamples(x, self.strides, type(self).__name__)
        y = self.conv(self.filters, 3, strides=self.strides, padding=1, name="conv1")(x)
        y = self.act(self.norm(name="bn1")(y, train=train))
        y = self.conv(self.filters, 3, strides=1, padding=1, name="conv2")(y)
        y = _zero_scale_norm(self.norm, self.zero_init_residual)(name="bn2")(y, train=train)
        return self.act(y + _v1_shortcut(self, x, self.filters, downsample, train))


class Bottleneck(nn.Module):
    """ResNet bottleneck block (He et al. 2016, ResNet-50/101/152): 1x1, 3x3, 1x1 convolutions.

    ``y = act(norm(conv1x1_4f(act(norm(conv3x3(act(norm(conv1x1_f(x))))))) + shortcut(x))``;
    the output has ``4 * filters`` channels; ``shortcut(x) = norm(conv1x1_s(x))`` unless the
    shape is kept.

    Args:
        filters: bottleneck width ``f``; the block outputs ``4 * f`` channels.
        strides: the block's stride; default 1.
        stride_on: which convolution carries the stride: ``"3x3"`` (default; "ResNet v1.5",
            torchvision and Flax, about 0.5% better top-1) or ``"1x1"`` (the original v1 of
            He et al. 2016 and Caffe/Keras, which skips 3/4 of the input in the first 1x1).
        conv: convolution factory; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory; default ``L.BatchNorm``.
        act: activation; default ``F.relu``.
        zero_init_residual: zero-initialise the scale of ``bn3``; default False.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = Bottleneck(8, strides=2, stride_on="1x1")     # original v1
        >>> x = jnp.ones((1, 8, 8, 32))
        >>> y, variables = jax.eval_shape(block.init_with_output, jax.random.key(0), x)
        >>> y.shape, variables["params"]["conv1"]["kernel"].shape
        ((1, 4, 4, 32), (1, 1, 32, 8))
        >>> Bottleneck(8, stride_on="5x5").init(jax.random.key(0), x)
        Traceback (most recent call last):
        ...
        ValueError: `stride_on` must be one of ('3x3', '1x1') ...
    """

    filters: int
    strides: int | tuple[int, ...] = 1
    stride_on: str = "3x3"
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu
    zero_init_residual: bool = False

    expansion: ClassVar[int] = 4
    preact: ClassVar[bool] = False

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        s1, s3 = _bottleneck_strides(self.stride_on, self.strides)
        downsample = _downsamples(x, self.strides, type(self).__name__)
        out = self.filters * self.expansion
        y = self.conv(self.filters, 1, strides=s1, padding=0, name="conv1")(x)
        y = self.act(self.norm(name="bn1")(y, train=train))
        y = self.conv(self.filters, 3, strides=s3, padding=1, name="conv2")(y)
        y = self.act(self.norm(name="bn2")(y, train=train))
        y = self.conv(out, 1, strides=1, padding=0, name="conv3")(y)
        y = _zero_scale_norm(self.norm, self.zero_init_residual)(name="bn3")(y, train=train)
        return self.act(y + _v1_shortcut(self, x, out, downsample, train))


def _v1_shortcut(block: nn.Module, x: Array, out: int, downsample: bool, train: bool) -> Array:
    if not downsample and x.shape[-1] == out:
        return x
    y = block.conv(out, 1, strides=block.strides, padding=0, name="downsample_conv")(x)
    return block.norm(name="downsample_bn")(y, train=train)


def _v2_shortcut(block: nn.Module, x: Array, pre: Array, out: int, downsample: bool) -> Array:
    # The projection reads the pre-activated input, as in He et al.'s and Zagoruyko's code.
    if not downsample and x.shape[-1] == out:
        return x
    return block.conv(out, 1, strides=block.strides, padding=0, name="downsample_conv")(pre)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016, "Identity Mappings", ResNet v2; WRN).

    ``y = conv3x3(drop(act(norm(conv3x3_s(p))))) + shortcut`` with ``p = act(norm(x))`` and
    ``shortcut = x`` when the shape is kept, else ``conv1x1_s(p)`` (no norm). Nothing follows
    the addition, so the identity path is clean; a network of these blocks needs a final
    norm + activation (``post_bn`` in :class:`jaxcnn.models.resnet.ResNet`).

    Args:
        filters: output channels.
        strides: stride of the first 3x3 convolution and of the projection; default 1.
        conv, norm, act: as :class:`BasicBlock`.
        dropout_rate: dropout between the two convolutions, as Wide ResNets (Zagoruyko &
            Komodakis 2016, 0.3 on CIFAR); needs ``rngs={"dropout": key}`` in training.
            Default 0 (no dropout layer).
        zero_init_residual: zero-initialise the kernel of ``conv2`` (the block's last layer)
            so it starts as the identity. Default False.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = PreActBlock(16, strides=2, dropout_rate=0.3)
        >>> x = jnp.ones((2, 8, 8, 8))
        >>> variables = block.init(jax.random.key(0), x)
        >>> sorted(variables["params"])
        ['bn1', 'bn2', 'conv1', 'conv2', 'downsample_conv']
        >>> y = block.apply(variables, x, train=True, mutable=["batch_stats"],
        ...                 rngs={"dropout": jax.random.key(1)})[0]
        >>> y.shape
        (2, 4, 4, 16)
    """

    filters: int
    strides: int | tuple[int, ...] = 1
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu
    dropout_rate: float = 0.0
    zero_init_residual: bool = False

    expansion: ClassVar[int] = 1
    preact: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        downsample = _downsamples(x, self.strides, type(self).__name__)
        pre = self.act(self.norm(name="bn1")(x, train=train))
        shortcut = _v2_shortcut(self, x, pre, self.filters, downsample)
        y = self.conv(self.filters, 3, strides=self.strides, padding=1, name="conv1")(pre)
        y = self.act(self.norm(name="bn2")(y, train=train))
        if self.dropout_rate > 0:
            y = L.Dropout(self.dropout_rate, name="dropout")(y, train=train)
        last = _zero_kernel_conv(self.conv, self.zero_init_residual)
        return last(self.filters, 3, strides=1, padding=1, name="conv2")(y) + shortcut


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (He et al. 2016, "Identity Mappings", ResNet-v2-50/101/152).

    ``p = act(norm(x))``; ``y = conv1x1_4f(act(norm(conv3x3(act(norm(conv1x1_f(p))))))) +
    shortcut`` with ``shortcut = x`` when the shape is kept, else ``conv1x1_s(p)``.

    Args:
        filters: bottleneck width ``f``; the block outputs ``4 * f`` channels.
        strides: the block's stride; default 1.
        stride_on: ``"3x3"`` (default, as fb.resnet.torch's pre-activation ResNet) or
            ``"1x1"``; see :class:`Bottleneck`.
        conv, norm, act: as :class:`BasicBlock`.
        zero_init_residual: zero-initialise the kernel of ``conv3``; default False.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> block = PreActBottleneck(4)
        >>> x = jnp.ones((1, 6, 6, 8))
        >>> y, variables = jax.eval_shape(block.init_with_output, jax.random.key(0), x)
        >>> y.shape, sorted(variables["params"])
        ((1, 6, 6, 16), ['bn1', 'bn2', 'bn3', 'conv1', 'conv2', 'conv3', 'downsample_conv'])
    """

    filters: int
    strides: int | tuple[int, ...] = 1
    stride_on: str = "3x3"
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu
    zero_init_residual: bool = False

    expansion: ClassVar[int] = 4
    preact: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        s1, s3 = _bottleneck_strides(self.stride_on, self.strides)
        downsample = _downsamples(x, self.strides, type(self).__name__)
        out = self.filters * self.expansion
        pre = self.act(self.norm(name="bn1")(x, train=train))
        shortcut = _v2_shortcut(self, x, pre, out, downsample)
        y = self.conv(self.filters, 1, strides=s1, padding=0, name="conv1")(pre)
        y = self.act(self.norm(name="bn2")(y, train=train))
        y = self.conv(self.filters, 3, strides=s3, padding=1, name="conv2")(y)
        y = self.act(self.norm(name="bn3")(y, train=train))
        last = _zero_kernel_conv(self.conv, self.zero_init_residual)
        return last(out, 1, strides=1, padding=0, name="conv3")(y) + shortcut
