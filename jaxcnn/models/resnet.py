"""Residual networks: ResNet v1 / v1.5 (He et al. 2016), pre-activation v2, Wide ResNets.

:class:`ResNet` is the general network, as in Flax's ImageNet example: a stem, stages of
residual blocks (``block_cls``, e.g. :class:`~jaxcnn.blocks.BasicBlock`) whose width doubles
and resolution halves from stage to stage, global average pooling and a dense head.
``ResNet18`` ... ``ResNet152V2`` are partials of it per depth, and the registered factories
``resnet18`` ... ``resnet152_v2`` and ``wide_resnet28_10`` build them by name
(``jaxcnn.models.create("resnet50", num_classes=10)``).

Submodule names (stable, for ``capture_intermediates`` and weight import):

* ``stem_conv`` (7x7 stride 2, pad 3; with ``cifar_stem=True`` 3x3 stride 1, pad 1),
  ``stem_bn`` (v1 only: v2 blocks normalise their own input), ``stem_pool`` (3x3 max pool,
  stride 2, pad 1; absent with ``cifar_stem=True``);
* ``stage{i}_block{j}`` for stage ``i`` and block ``j``, both from 1 (torchvision's
  ``layer{i}.{j-1}``); inside a block torchvision's names ``conv1``, ``bn1``, ...,
  ``downsample_conv``, ``downsample_bn``;
* ``post_bn`` (v2 only: the final norm + activation a pre-activation network needs);
* ``global_pool``, ``head`` (the dense classifier, torchvision's ``fc``).

Parameter counts are the ``params`` collection (BatchNorm running statistics are state, not
parameters); v1 counts equal torchvision's. Derivation of the v2 counts: a v2 network has the
same convolutions (no biases) and head as v1, so only the norms differ, each with 2 parameters
(scale, bias) per channel. v1 has ``stem_bn`` (64 channels), a norm after every convolution
(its output channels) and after every projection; v2 has no ``stem_bn``, a norm before every
convolution of the residual branch (its input channels), none on the projection, and
``post_bn`` on the final features.

* Basic-block nets (18, 34), a stage of width ``f`` with ``n`` blocks: v1 norms cover
  ``2nf`` channels plus ``f`` for the projection (stages 2-4); v2 norms cover ``(f/2 + f) +
  (n - 1) 2f = 2nf - f/2`` (stages 2-4; stage 1 has ``2nf`` in both). v1 - v2 = ``3f/2``
  channels = ``3f`` parameters per stage 2-4: ``3 (128 + 256 + 512) = 2,688``; plus
  ``stem_bn`` ``2 * 64 = 128``, minus ``post_bn`` ``2 * 512 = 1,024``: **1,792** fewer.
  resnet18_v2 = 11,689,512 - 1,792 = 11,687,720; resnet34_v2 = 21,797,672 - 1,792 =
  21,795,880. (resnet18: v1 norms 9,600 parameters, v2 7,808.)
* Bottleneck nets (50, 101, 152), width ``f`` (output ``4f``), ``n`` blocks, first-block input
  ``c``: v1 norms cover ``n (f + f + 4f) + 4f`` (projection in every stage) = ``6nf + 4f``
  channels; v2 cover ``(c + 2f) + (n - 1)(4f + 2f) = 6nf + c - 4f``. v1 - v2 = ``8f - c``
  channels, with ``(f, c)`` = (64, 64), (128, 256), (256, 512), (512, 1024): 448 + 768 +
  1,536 + 3,072 = 5,824 channels = 11,648 parameters; plus 128 (``stem_bn``) minus
  ``2 * 2048 = 4,096`` (``post_bn``): **7,680** fewer, whatever the depth.
  resnet50_v2 = 25,557,032 - 7,680 = 25,549,352; resnet101_v2 = 44,549,160 - 7,680 =
  44,541,480; resnet152_v2 = 60,192,808 - 7,680 = 60,185,128.

(Keras' ``ResNet50V2``, 25,613,800 total, differs: its convolutions and projections have
biases and each stage downsamples in its last block.)

``resnet50_keras`` is Keras' ``keras.applications.ResNet50`` (v1, Caffe's layout), built from
options of the same :class:`ResNet`: convolutions with biases, the stride on the first 1x1
convolution of a block, BatchNorm ``epsilon=1.001e-5``. Its ``ZeroPadding2D(3)`` + "valid"
stem convolution is the symmetric padding 3 used here, and its ``ZeroPadding2D(1)`` + "valid"
max pool equals the ``-inf``-padded ``stem_pool`` because the pool reads ReLU outputs (``>= 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.blocks.residual import BasicBlock, Bottleneck, PreActBlock, PreActBottleneck
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.models.registry import CIFAR_INPUT, register

__all__ = [
    "ResNet", "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet18V2",
    "ResNet34V2", "ResNet50V2", "ResNet101V2", "ResNet152V2", "KERAS_RESNET_BATCH_NORM",
    "resnet50_keras", "wide_resnet",
]

ModuleDef = Any
Array = jax.Array


def _positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


def _unwrap(block_cls: ModuleDef) -> type:
    while isinstance(block_cls, partial):
        block_cls = block_cls.func
    return block_cls


class ResNet(nn.Module):
    """A residual network: stem, stages of residual blocks, global average pool, dense head.

    ``logits = head(pool(post(stages(stem(x)))))``; stage ``i`` (from 0) has
    ``stage_sizes[i]`` blocks of width ``num_filters * 2**i``, the first with stride 2
    (stride 1 in stage 0). For pre-activation blocks (``block_cls.preact``, v2) the stem has no
    norm and a final ``post_bn`` + activation precede the pool. Submodule names are listed in
    the module docstring.

    Args:
        stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        block_cls: the block, called ``block_cls(width, strides=..., conv=..., norm=...,
            act=..., zero_init_residual=..., name=...)(x, train=train)``; a ``partial`` may
            fix more options (``stride_on``, ``dropout_rate``).
        num_classes: size of the head; default 1000.
        num_filters: width of the first stage; default 64 (8 makes a fast test network).
        stem_filters: width of the stem convolution; default ``num_filters`` (Wide ResNets
            use 16 while their first stage is ``16 * k``).
        cifar_stem: 3x3 stride-1 stem convolution without max pooling, for 32x32 inputs
            (He et al. 2016, Sec. 4.2); default False (7x7 stride 2 + 3x3 max pool).
        conv: convolution factory; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory; default ``L.BatchNorm`` (``partial(L.GroupNorm,
            num_groups=...)`` works too).
        act: activation; default ``F.relu``.
        zero_init_residual: start each block as the identity (zero last-norm scale in v1,
            zero last kernel in v2; Goyal et al. 2017). Default False.
        dtype: compute dtype (e.g. ``jnp.bfloat16``) passed to the convolutions, norms and
            head; parameters stay float32. Default None (promote like Flax).

    Input ``(N, H, W, C)`` (1-D and 3-D inputs work too, with the same kernels per dim).
    ``__call__(x, train=False)`` returns logits ``(N, num_classes)``; in training pass
    ``mutable=["batch_stats"]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import jaxcnn
        >>> model = ResNet18(num_classes=1000)
        >>> x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
        >>> logits, variables = jax.eval_shape(
        ...     lambda k, x: model.init_with_output(k, x), jax.random.key(0), x)
        >>> logits.shape, jaxcnn.count_params(variables["params"])
        ((1, 1000), 11689512)
        >>> small = ResNet(stage_sizes=(2,), block_cls=BasicBlock, num_classes=3,
        ...                num_filters=4, cifar_stem=True)
        >>> variables = small.init(jax.random.key(0), jnp.ones((2, 8, 8, 3)))
        >>> small.apply(variables, jnp.ones((2, 8, 8, 3))).shape
        (2, 3)
    """

    stage_sizes: Sequence[int]
    block_cls: ModuleDef
    num_classes: int = 1000
    num_filters: int = 64
    stem_filters: int | None = None
    cifar_stem: bool = False
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu
    zero_init_residual: bool = False
    dtype: Any = None

    def _validate(self, x: Array) -> None:
        check_rank(x, "x", (3, 4, 5), "(N, *spatial, C) for ResNet")
        check_float(x, "x")
        if not isinstance(self.stage_sizes, Sequence) or not self.stage_sizes:
            raise ValueError(f"`stage_sizes` must be a non-empty sequence of positive ints, "
                             f"got {self.stage_sizes!r}.")
        for size in self.stage_sizes:
            _positive_int(size, "stage_sizes")
        _positive_int(self.num_filters, "num_filters")
        _positive_int(self.num_classes, "num_classes")

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        self._validate(x)
        typed = {} if self.dtype is None else {"dtype": self.dtype}
        conv, norm = partial(self.conv, **typed), partial(self.norm, **typed)
        preact = getattr(_unwrap(self.block_cls), "preact", False)
        stem_filters = self.num_filters if self.stem_filters is None else self.stem_filters

        if self.cifar_stem:
            x = conv(stem_filters, 3, strides=1, padding=1, name="stem_conv")(x)
        else:
            x = conv(stem_filters, 7, strides=2, padding=3, name="stem_conv")(x)
        if not preact:
            x = self.act(norm(name="stem_bn")(x, train=train))
        if not self.cifar_stem:
            x = L.MaxPool(3, strides=2, padding=1, name="stem_pool")(x)

        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                x = self.block_cls(
                    self.num_filters * 2**i, strides=2 if i > 0 and j == 0 else 1,
                    conv=conv, norm=norm, act=self.act,
                    zero_init_residual=self.zero_init_residual,
                    name=f"stage{i + 1}_block{j + 1}",
                )(x, train=train)

        if preact:
            x = self.act(norm(name="post_bn")(x, train=train))
        x = L.GlobalAvgPool(name="global_pool")(x)
        return L.Dense(self.num_classes, name="head", **typed)(x)


ResNet18 = partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet34 = partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
ResNet50 = partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck)
ResNet101 = partial(ResNet, stage_sizes=(3, 4, 23, 3), block_cls=Bottleneck)
ResNet152 = partial(ResNet, stage_sizes=(3, 8, 36, 3), block_cls=Bottleneck)
ResNet18V2 = partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=PreActBlock)
ResNet34V2 = partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=PreActBlock)
ResNet50V2 = partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=PreActBottleneck)
ResNet101V2 = partial(ResNet, stage_sizes=(3, 4, 23, 3), block_cls=PreActBottleneck)
ResNet152V2 = partial(ResNet, stage_sizes=(3, 8, 36, 3), block_cls=PreActBottleneck)


def _with_block_options(base: partial, name: str, stride_on: str | None,
                        dropout_rate: float | None) -> ModuleDef:
    """``base``'s block class with the block-level options a factory accepts."""
    block_cls = base.keywords["block_cls"]
    options = {}
    if stride_on is not None:
        if block_cls.expansion == 1:
            raise ValueError(f"`stride_on` applies to bottleneck models, not {name!r} "
                             f"({block_cls.__name__}), got stride_on={stride_on!r}.")
        options["stride_on"] = stride_on
    if dropout_rate is not None:
        if not block_cls.preact or block_cls.expansion != 1:
            raise ValueError(f"`dropout_rate` applies to pre-activation basic blocks (v2 "
                             f"18/34, Wide ResNets), not {name!r} ({block_cls.__name__}).")
        options["dropout_rate"] = dropout_rate
    return partial(block_cls, **options) if options else block_cls


_DOC = """{title} ({paper}); {count:,} parameters{source}.

    {arithmetic}``{partial_name}(num_classes=num_classes, **options)``: stages {stages} of
    :class:`~jaxcnn.blocks.{block}`. Registered as ``"{name}"``.

    Args:
        num_classes: size of the head; default 1000.
        stride_on: bottleneck models only: ``"3x3"`` (default, v1.5) or ``"1x1"`` (v1).
        dropout_rate: pre-activation basic-block models only: dropout inside each block.
        **options: any other :class:`ResNet` field: ``num_filters`` (64; 8 for a quick test
            network), ``cifar_stem``, ``norm``, ``conv``, ``act``, ``zero_init_residual``,
            ``dtype``.

    Example:
        >>> model = {name}(num_classes=10, num_filters=8, cifar_stem=True)
        >>> model.stage_sizes, type(model).__name__, model.num_filters
        ({stages}, 'ResNet', 8)
    """


def _register_depth(name: str, base: partial, count: int, paper: str, source: str,
                    arithmetic: str = "") -> Callable[..., ResNet]:
    def factory(num_classes: int = 1000, stride_on: str | None = None,
                dropout_rate: float | None = None, **options: Any) -> ResNet:
        block_cls = _with_block_options(base, name, stride_on, dropout_rate)
        return base(num_classes=num_classes, **{**options, "block_cls": block_cls})

    depth = name.removeprefix("resnet").removesuffix("_v2")
    title = f"ResNet-{depth}" + (" v2 (pre-activation)" if name.endswith("_v2") else "")
    partial_name = f"ResNet{depth}" + ("V2" if name.endswith("_v2") else "")
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = _DOC.format(
        title=title, paper=paper, count=count, source=source, name=name,
        arithmetic=f"{arithmetic}\n\n    " if arithmetic else "", partial_name=partial_name,
        stages=base.keywords["stage_sizes"], block=base.keywords["block_cls"].__name__)
    return register(name)(factory)


_V1 = "He et al. 2016, 'Deep Residual Learning'"
_V2 = "He et al. 2016, 'Identity Mappings in Deep Residual Networks'"
_TV = " (torchvision; the ``params`` collection)"
_HAND = " (hand-derived in the :mod:`jaxcnn.models.resnet` docstring)"
_BASIC_V2 = "the v1 count minus ``stem_bn`` (128) and 2,688 projection/norm parameters, " \
            "plus ``post_bn`` (1,024)."
_BOTTLE_V2 = "the v1 count minus ``stem_bn`` (128) and 11,648 norm parameters, plus " \
             "``post_bn`` (4,096)."

resnet18 = _register_depth("resnet18", ResNet18, 11_689_512, _V1, _TV)
resnet34 = _register_depth("resnet34", ResNet34, 21_797_672, _V1, _TV)
resnet50 = _register_depth("resnet50", ResNet50, 25_557_032, _V1, _TV)
resnet101 = _register_depth("resnet101", ResNet101, 44_549_160, _V1, _TV)
resnet152 = _register_depth("resnet152", ResNet152, 60_192_808, _V1, _TV)
resnet18_v2 = _register_depth("resnet18_v2", ResNet18V2, 11_689_512 - 1_792, _V2, _HAND,
                              "11,689,512 - 1,792, " + _BASIC_V2)
resnet34_v2 = _register_depth("resnet34_v2", ResNet34V2, 21_797_672 - 1_792, _V2, _HAND,
                              "21,797,672 - 1,792, " + _BASIC_V2)
resnet50_v2 = _register_depth("resnet50_v2", ResNet50V2, 25_557_032 - 7_680, _V2, _HAND,
                              "25,557,032 - 7,680, " + _BOTTLE_V2)
resnet101_v2 = _register_depth("resnet101_v2", ResNet101V2, 44_549_160 - 7_680, _V2, _HAND,
                               "44,549,160 - 7,680, " + _BOTTLE_V2)
resnet152_v2 = _register_depth("resnet152_v2", ResNet152V2, 60_192_808 - 7_680, _V2, _HAND,
                               "60,192,808 - 7,680, " + _BOTTLE_V2)


KERAS_RESNET_BATCH_NORM = partial(L.BatchNorm, momentum=0.99, epsilon=1.001e-5)
"""The BatchNorm of Keras' ``ResNet50`` and ``DenseNet121``: ``epsilon=1.001e-5`` and Keras'
default ``momentum=0.99`` (which has Flax's meaning)."""


@register("resnet50_keras")
def resnet50_keras(num_classes: int = 1000, **options: Any) -> ResNet:
    """ResNet-50 as ``keras.applications.ResNet50``; 25,583,592 parameters.

    ``ResNet50(block_cls=partial(Bottleneck, stride_on="1x1"), conv=partial(L.Conv,
    use_bias=True), norm=KERAS_RESNET_BATCH_NORM)``: Keras' ResNet-50 (the original v1 layout
    of He et al. 2016 and Caffe) differs from torchvision's ``resnet50`` in three ways, so
    Keras weights (:func:`jaxcnn.weights.from_keras`) need this structure:

    * every convolution, projections included, has a bias: one per output channel, 64 (stem)
      + 1,408 + 3,584 + 10,240 + 11,264 (stages) = 26,560 more parameters than
      ``resnet50``'s 25,557,032, i.e. **25,583,592**, Keras' trainable count (its total,
      25,636,712, adds the 53,120 BatchNorm moving means and variances, ``batch_stats`` here);
    * a downsampling block strides its first 1x1 convolution (``stride_on="1x1"``);
    * BatchNorm ``epsilon=1.001e-5`` and ``momentum=0.99`` (:data:`KERAS_RESNET_BATCH_NORM`).

    Keras' layer ``conv{s}_block{b}_{k}_conv`` is ``stage{s-1}_block{b}/conv{k}`` here
    (``_0_`` is the projection, ``downsample_conv``); ``conv1_conv`` is ``stem_conv``,
    ``predictions`` is ``head``. Registered as ``"resnet50_keras"``.

    Args:
        num_classes: size of the head; default 1000.
        **options: other :class:`ResNet` fields (``num_filters``, ``dtype``, ...).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import jaxcnn
        >>> x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
        >>> variables = jax.eval_shape(resnet50_keras().init, jax.random.key(0), x)
        >>> jaxcnn.count_params(variables["params"]), jaxcnn.count_params(variables)
        (25583592, 25636712)
    """
    config = {"block_cls": partial(Bottleneck, stride_on="1x1"),
              "conv": partial(L.Conv, use_bias=True), "norm": KERAS_RESNET_BATCH_NORM}
    return ResNet50(num_classes=num_classes, **{**config, **options})


def wide_resnet(depth: int = 28, widen_factor: int = 10, num_classes: int = 10,
                dropout_rate: float = 0.0, **options: Any) -> ResNet:
    """Wide ResNet WRN-depth-k for 32x32 inputs (Zagoruyko & Komodakis 2016, "Wide ResNets").

    Pre-activation basic blocks, ``n = (depth - 4) / 6`` per stage, widths ``16k, 32k, 64k``
    (strides 1, 2, 2), a 3x3 stem convolution with 16 filters, optional dropout between the
    two convolutions of each block, and a final norm + ReLU, global pool and dense head:
    ``ResNet((n, n, n), partial(PreActBlock, dropout_rate=...), num_filters=16k,
    stem_filters=16, cifar_stem=True)``.

    Args:
        depth: total depth ``6n + 4`` (28 in WRN-28-10; 10 = one block per stage).
        widen_factor: ``k``; default 10.
        num_classes: default 10 (CIFAR-10).
        dropout_rate: dropout inside each block (the paper uses 0.3); default 0.
        **options: other :class:`ResNet` fields (``norm``, ``dtype``, ...).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import jaxcnn
        >>> model = wide_resnet(depth=16, widen_factor=8)     # the paper's table: 11.0M
        >>> logits, variables = jax.eval_shape(model.init_with_output, jax.random.key(0),
        ...                                    jnp.ones((2, 32, 32, 3)))
        >>> logits.shape, round(jaxcnn.count_params(variables["params"]) / 1e6, 1)
        ((2, 10), 11.0)
        >>> wide_resnet(depth=27)
        Traceback (most recent call last):
        ...
        ValueError: `depth` must be 6n + 4 ...
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"`depth` must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), "
                         f"got {depth!r}.")
    _positive_int(widen_factor, "widen_factor")
    n = (depth - 4) // 6
    return ResNet(stage_sizes=(n, n, n), block_cls=partial(PreActBlock, dropout_rate=dropout_rate),
                  num_classes=num_classes, num_filters=16 * widen_factor, stem_filters=16,
                  cifar_stem=True, **options)


@register("wide_resnet28_10", input_shape=CIFAR_INPUT)
def wide_resnet28_10(num_classes: int = 10, dropout_rate: float = 0.0, **options: Any) -> ResNet:
    """WRN-28-10 for CIFAR (Zagoruyko & Komodakis 2016); 36,479,194 parameters (CIFAR-10).

    :func:`wide_resnet` with ``depth=28, widen_factor=10``: 4 pre-activation blocks per stage
    of widths 160, 320, 640. Count with 10 classes (3x3 kernels, no conv biases, norms 2C):

    * stem 3*3*3*16 = 432;
    * stage 1: first block bn 2*16 + conv 9*16*160 + bn 2*160 + conv 9*160*160 + projection
      16*160 = 256,352; three more blocks 3 * (320 + 230,400 + 320 + 230,400) = 1,384,320;
    * stage 2: 320 + 460,800 + 640 + 921,600 + 51,200 = 1,434,560; 3 * 1,844,480 = 5,533,440;
    * stage 3: 640 + 1,843,200 + 1,280 + 3,686,400 + 204,800 = 5,736,320;
      3 * 7,375,360 = 22,126,080;
    * post_bn 1,280; head 640*10 + 10 = 6,410.

    Total 432 + 1,640,672 + 6,968,000 + 27,862,400 + 1,280 + 6,410 = 36,479,194, the figure of
    the authors' code. Note ``jaxcnn.models.create`` passes ``num_classes=1000`` unless told.

    Args:
        num_classes: default 10.
        dropout_rate: dropout inside each block (0.3 in the paper); default 0.
        **options: other :class:`ResNet` fields.

    Example:
        >>> model = wide_resnet28_10(dropout_rate=0.3)
        >>> model.stage_sizes, model.num_filters, model.stem_filters
        ((4, 4, 4), 160, 16)
    """
    return wide_resnet(28, 10, num_classes=num_classes, dropout_rate=dropout_rate, **options)
