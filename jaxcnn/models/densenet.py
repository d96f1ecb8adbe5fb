"""DenseNet (Huang et al. 2017, "Densely Connected Convolutional Networks").

:class:`DenseNet` is the general network: a stem, dense blocks
(:class:`~jaxcnn.blocks.DenseBlock`) separated by transitions
(:class:`~jaxcnn.blocks.Transition`, compression 0.5), a final norm + ReLU, global average
pooling and a dense head. The registered factories are torchvision's ImageNet models
``densenet121``, ``densenet161``, ``densenet169``, ``densenet201`` and the CIFAR model
``densenet_bc_cifar(depth, growth_rate)``.

Submodule names are torchvision's (``conv0``, ``norm0``, ``pool0``, ``denseblock{i}`` with
``denselayer{j}`` inside, ``transition{i}``, ``norm5``) except the classifier, named like the
rest of the zoo: ``global_pool`` and ``head`` (torchvision's ``classifier``). ``norm5`` keeps
its torchvision name whatever the number of blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.blocks.dense import DenseBlock, Transition
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import CIFAR_INPUT, register

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201",
           "densenet_bc_cifar"]

ModuleDef = Any
Array = jax.Array


class DenseNet(nn.Module):
    """A densely connected network: stem, dense blocks and transitions, norm, pool, head.

    ``logits = head(pool(act(norm5(B_n(T_{n-1}(... T_1(B_1(stem(x)))))))))``: dense block
    ``i`` has ``block_config[i]`` layers adding ``growth_rate`` channels each; every
    transition multiplies the channels by ``compression`` (floored) and halves the
    resolution. Stem: ``conv0`` 7x7/2 (pad 3), ``norm0`` + ReLU, ``pool0`` 3x3/2 max pool
    (pad 1), as torchvision; with ``cifar_stem=True`` only ``conv0`` 3x3/1 (pad 1), as the
    paper's CIFAR networks (the first dense layer's norm follows it).

    Args:
        block_config: layers per dense block; default ``(6, 12, 24, 16)`` (DenseNet-121).
        growth_rate: ``k``; default 32.
        num_init_features: channels of ``conv0``; default 64 (``2k`` in DenseNet-BC).
        bn_size: bottleneck factor (1x1 conv to ``bn_size * k``); default 4; None for the
            plain DenseNet layer without bottleneck.
        drop_rate: dropout inside every dense layer; default 0.
        compression: transition factor ``theta``; default 0.5.
        num_classes: size of the head; default 1000.
        cifar_stem: the 3x3 stride-1 stem for 32x32 inputs; default False.
        conv: convolution factory; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory; default ``L.BatchNorm``.
        act: activation; default ``F.relu``.
        dtype: compute dtype (e.g. ``jnp.bfloat16``); parameters stay float32.

    Input ``(N, H, W, C)``. ``__call__(x, train=False)`` returns logits ``(N, num_classes)``;
    in training pass ``mutable=["batch_stats"]`` (and ``rngs={"dropout": key}`` when
    ``drop_rate > 0``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = DenseNet(block_config=(2, 2), growth_rate=4, num_init_features=8,
        ...                  num_classes=10, cifar_stem=True)
        >>> x = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)
        >>> logits, variables = jax.eval_shape(model.init_with_output, jax.random.key(0), x)
        >>> logits.shape
        (2, 10)
        >>> variables["params"]["head"]["kernel"].shape            # (8 + 8) // 2 + 8
        (16, 10)

    (``jax.eval_shape`` traces without computing; ``model.init`` and ``model.apply`` are called
    the same way on real arrays.)
    """

    block_config: Sequence[int] = (6, 12, 24, 16)
    growth_rate: int = 32
    num_init_features: int = 64
    bn_size: int | None = 4
    drop_rate: float = 0.0
    compression: float = 0.5
    num_classes: int = 1000
    cifar_stem: bool = False
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = L.BatchNorm
    act: Callable[[Array], Array] = F.relu
    dtype: Any = None

    def _validate(self, x: Array) -> None:
        check_rank(x, "x", 4, "(N, H, W, C) for DenseNet")
        check_float(x, "x")
        if not isinstance(self.block_config, Sequence) or not self.block_config:
            raise ValueError(f"`block_config` must be a non-empty sequence of positive ints, "
                             f"got {self.block_config!r}.")
        for n in self.block_config:
            positive_int(n, "block_config")
        positive_int(self.num_init_features, "num_init_features")
        positive_int(self.num_classes, "num_classes")

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        self._validate(x)
        typed = {} if self.dtype is None else {"dtype": self.dtype}
        parts = dict(conv=partial(self.conv, **typed), norm=partial(self.norm, **typed),
                     act=self.act)

        if self.cifar_stem:
            x = parts["conv"](self.num_init_features, 3, strides=1, padding=1, name="conv0")(x)
        else:
            x = parts["conv"](self.num_init_features, 7, strides=2, padding=3, name="conv0")(x)
            x = self.act(parts["norm"](name="norm0")(x, train=train))
            x = L.MaxPool(3, strides=2, padding=1, name="pool0")(x)

        last = len(self.block_config)
        for i, num_layers in enumerate(self.block_config, start=1):
            x = DenseBlock(num_layers, self.growth_rate, self.bn_size, self.drop_rate,
                           **parts, name=f"denseblock{i}")(x, train)
            if i != last:
                x = Transition(compression=self.compression, **parts,
                               name=f"transition{i}")(x, train)

        x = self.act(parts["norm"](name="norm5")(x, train=train))
        x = L.GlobalAvgPool(name="global_pool")(x)
        return L.Dense(self.num_classes, name="head", **typed)(x)


def _imagenet_factory(name: str, count: int, block_config: tuple[int, ...], growth_rate: int,
                      num_init_features: int) -> Callable[..., DenseNet]:
    def factory(num_classes: int = 1000, **options: Any) -> DenseNet:
        config = dict(block_config=block_config, growth_rate=growth_rate,
                      num_init_features=num_init_features)
        return DenseNet(num_classes=num_classes, **{**config, **options})

    depth = name.removeprefix("densenet")
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"""DenseNet-{depth} (Huang et al. 2017), torchvision; {count:,} parameters.

    Dense blocks {block_config}, growth rate {growth_rate}, bottleneck factor 4, compression
    0.5, {num_init_features} stem channels; input 224x224x3 (7x7 at the last block). The count
    is the ``params`` collection (BatchNorm running statistics excluded) and equals
    torchvision's ``{name}()``. Registered as ``"{name}"``.

    Args:
        num_classes: size of the head; default 1000.
        **options: any :class:`DenseNet` field, overriding the configuration
            (``growth_rate``, ``block_config`` to shrink it; ``drop_rate``, ``norm``,
            ``dtype``, ...).

    Example:
        >>> model = {name}(num_classes=10)
        >>> model.block_config, model.growth_rate, model.num_init_features
        ({block_config}, {growth_rate}, {num_init_features})
    """
    return register(name)(factory)


densenet121 = _imagenet_factory("densenet121", 7_978_856, (6, 12, 24, 16), 32, 64)
densenet161 = _imagenet_factory("densenet161", 28_681_000, (6, 12, 36, 24), 48, 96)
densenet169 = _imagenet_factory("densenet169", 14_149_480, (6, 12, 32, 32), 32, 64)
densenet201 = _imagenet_factory("densenet201", 20_013_928, (6, 12, 48, 32), 32, 64)


@register("densenet_bc_cifar", input_shape=CIFAR_INPUT)
def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, num_classes: int = 10,
                      **options: Any) -> DenseNet:
    """DenseNet-BC for 32x32 inputs (Huang et al. 2017, Sec. 4); 769,162 parameters (100, 12).

    Three dense blocks of ``n = (depth - 4) / 6`` bottleneck layers (each two convolutions;
    the other 4 layers are the stem, two transitions and the head), growth rate ``k``, a 3x3
    stem convolution with ``2k`` channels and no pooling, compression 0.5, feature maps 32,
    16, 8. Convolutions have no bias (as torchvision; the authors' Torch code has biases).

    Count of the default ``densenet_bc_cifar(100, 12)`` with 10 classes, ``n = 16``. A layer
    reading ``c`` channels has ``2c`` (norm1) ``+ 48c`` (1x1 conv to ``4k = 48``) ``+ 96``
    (norm2) ``+ 9 * 48 * 12 = 5,184`` (3x3 conv) ``= 50c + 5,280`` parameters; in a block
    starting with ``c_0`` channels ``sum_i c_i = 16 c_0 + 12 * (0 + ... + 15) = 16 c_0 +
    1,440``, so a block has ``50 (16 c_0 + 1,440) + 16 * 5,280 = 800 c_0 + 156,480``:

    * stem ``3 * 3 * 3 * 24 = 648``;
    * block 1 (``c_0 = 24``, out 216): 175,680; transition 1 ``2 * 216 + 216 * 108 = 23,760``;
    * block 2 (``c_0 = 108``, out 300): 242,880; transition 2 ``600 + 300 * 150 = 45,600``;
    * block 3 (``c_0 = 150``, out 342): 276,480; ``norm5`` ``2 * 342 = 684``;
    * head ``342 * 10 + 10 = 3,430``.

    Total 648 + 175,680 + 23,760 + 242,880 + 45,600 + 276,480 + 684 + 3,430 = 769,162 (the
    paper: "0.8M"). Note ``jaxcnn.models.create`` passes ``num_classes=1000`` unless told.

    Args:
        depth: ``6n + 4`` (100 in the paper; 40 = 6 layers per block for quick runs).
        growth_rate: ``k``; default 12 (the paper also uses 24 with depth 250 and 40 with 190).
        num_classes: default 10 (CIFAR-10).
        **options: other :class:`DenseNet` fields (``drop_rate``, ``norm``, ``dtype``, ...).

    Example:
        >>> model = densenet_bc_cifar(depth=40, growth_rate=12)
        >>> model.block_config, model.num_init_features, model.cifar_stem
        ((6, 6, 6), 24, True)
        >>> densenet_bc_cifar(depth=99)
        Traceback (most recent call last):
        ...
        ValueError: `depth` must be 6n + 4 ...
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"`depth` must be 6n + 4 with n >= 1 (10, 40, 100, 190, 250, ...) for "
                         f"DenseNet-BC, got {depth!r}.")
    k = positive_int(growth_rate, "growth_rate")
    n = (depth - 4) // 6
    config = dict(block_config=(n, n, n), growth_rate=k, num_init_features=2 * k,
                  cifar_stem=True)
    return DenseNet(num_classes=num_classes, **{**config, **options})
