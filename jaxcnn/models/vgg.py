"""VGG networks (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale
Image Recognition"): configurations A, B, D, E = VGG-11, -13, -16, -19, with or without
BatchNorm.

Registered as ``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"`` and ``"vgg11_bn"`` ...
``"vgg19_bn"`` (torchvision's ``vgg*_bn``: BatchNorm between each convolution and its ReLU).

Submodule names are Keras' (``keras.applications.VGG16``), so its feature-extraction recipes
carry over: ``block{i}_conv{j}`` (3x3, pad 1, ReLU), ``block{i}_bn{j}`` (``_bn`` models),
``block{i}_pool`` (2x2 max pool, stride 2), (``avgpool``), ``flatten``, ``fc1``, ``drop1``,
``fc2``, ``drop2``, ``predictions`` (or ``global_pool``, ``predictions`` with
``classifier="global_pool"``). ``adaptive_pool=7`` adds torchvision's ``AdaptiveAvgPool2d((7,
7))`` before the classifier (the identity on 224x224 inputs), for its weights.

Parameter counts (224x224x3, 1000 classes, the ``params`` collection): convolutions
``9 * C_in * C_out + C_out``, then fc1 ``7*7*512*4096 + 4096 = 102,764,544``,
fc2 ``4096*4096 + 4096 = 16,781,312``, predictions ``4096*1000 + 1000 = 4,097,000``
(dense total 123,642,856). Convolutions: VGG-11 9,220,480; VGG-13 9,404,992; VGG-16
14,714,688; VGG-19 20,024,384 (Keras' ``include_top=False`` figures). ``_bn`` adds ``2 C``
(scale, bias) per convolution: 2 * 2,752 = 5,504 (11), 2 * 2,944 = 5,888 (13),
2 * 4,224 = 8,448 (16), 2 * 5,504 = 11,008 (19); the running mean/var are state, not
parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import register
from jaxcnn.models.simple import Flatten

__all__ = ["VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
           "vgg19_bn"]

Array = jax.Array

CONFIGS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),  # A
    13: (2, 2, 2, 2, 2),  # B
    16: (2, 2, 3, 3, 3),  # D
    19: (2, 2, 4, 4, 4),  # E
}
"""Convolutions per block for each depth (Simonyan & Zisserman 2015, Table 1)."""

_CLASSIFIERS = ("dense", "global_pool")


class VGG(nn.Module):
    """VGG: five blocks of 3x3 convolutions + ReLU, each closed by 2x2 max pooling, then a head.

    Block ``i`` (1-5) has ``stage_sizes[i-1]`` convolutions of width
    ``min(width * 2**(i-1), 8 * width)`` (64, 128, 256, 512, 512). Head (``include_top``):
    ``classifier="dense"`` is the paper's ``flatten -> fc1 (4096) -> fc2 (4096) ->
    predictions`` with ReLU and dropout 0.5 after fc1 and fc2; fc1 infers its input size, so a
    32x32 (CIFAR) input flattens a 1x1x512 map (fc1 then has 512 * 4096 + 4096 parameters)
    where torchvision would first average-pool to 7x7; ``classifier="global_pool"`` averages
    the last map and applies ``predictions`` directly (a light head for small inputs). Counts
    in the module docstring.

    Args:
        stage_sizes: convolutions per block, e.g. ``CONFIGS[16] = (2, 2, 3, 3, 3)``.
        num_classes: size of ``predictions``; default 1000.
        batch_norm: BatchNorm (``block{i}_bn{j}``) between each convolution and its ReLU
            (torchvision's ``vgg*_bn``); default False.
        norm: the normalization factory used when ``batch_norm``; default ``L.BatchNorm``.
        width: channels of the first block; default 64 (e.g. 8 for a fast test network).
        fc_features: width of fc1 and fc2; default 4096.
        dropout_rate: dropout after fc1 and fc2; default 0.5.
        include_top: add the classifier (default True); False returns the ``block5_pool``
            feature map ``(N, H/32, W/32, 8 * width)``, as Keras' ``include_top=False``.
        adaptive_pool: output size of an adaptive average pooling (``avgpool``) before the
            classifier: 7 in torchvision (fc1 then always sees 7 * 7 * 512 inputs), None
            (default, Keras) for none.
        classifier: ``"dense"`` (default) or ``"global_pool"``.
        dtype: compute dtype; params stay float32.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = VGG(CONFIGS[16], num_classes=10)
        >>> x = jnp.ones((2, 32, 32, 3))                    # CIFAR: fc1 sees 1 * 1 * 512
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes, no memory
        >>> [name for name in variables["params"] if name.startswith("block3")]
        ['block3_conv1', 'block3_conv2', 'block3_conv3']
        >>> variables["params"]["fc1"]["kernel"].shape
        (512, 4096)
        >>> jax.eval_shape(model.apply, variables, x).shape
        (2, 10)
        >>> features = VGG(CONFIGS[16], include_top=False)
        >>> jax.eval_shape(features.apply, variables, jnp.ones((2, 224, 224, 3))).shape
        (2, 7, 7, 512)
    """

    stage_sizes: Sequence[int]
    num_classes: int = 1000
    batch_norm: bool = False
    norm: Callable[..., nn.Module] = L.BatchNorm
    width: int = 64
    fc_features: int = 4096
    dropout_rate: float = 0.5
    include_top: bool = True
    classifier: str = "dense"
    adaptive_pool: int | None = None
    dtype: Any = None

    def _validate(self, x: Array) -> None:
        check_rank(x, "x", 4, "(N, H, W, C) for VGG")
        check_float(x, "x")
        if isinstance(self.stage_sizes, int) or not self.stage_sizes:
            raise ValueError(f"`stage_sizes` must be a non-empty sequence of positive ints, "
                             f"got {self.stage_sizes!r}.")
        for size in self.stage_sizes:
            positive_int(size, "stage_sizes")
        if self.classifier not in _CLASSIFIERS:
            raise ValueError(f"`classifier` must be one of {_CLASSIFIERS}, "
                             f"got {self.classifier!r}.")
        reduction = 2 ** len(self.stage_sizes)
        if x.shape[1] < reduction or x.shape[2] < reduction:
            raise ValueError(f"`x` of shape {x.shape} is too small for VGG: its "
                             f"{len(self.stage_sizes)} 2x2 poolings need H, W >= {reduction}.")

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        self._validate(x)
        width = positive_int(self.width, "width")
        for i, n_convs in enumerate(self.stage_sizes, start=1):
            features = min(width * 2 ** (i - 1), 8 * width)
            for j in range(1, n_convs + 1):
                x = L.Conv(features, 3, padding=1, dtype=self.dtype, name=f"block{i}_conv{j}")(x)
                if self.batch_norm:
                    x = self.norm(dtype=self.dtype, name=f"block{i}_bn{j}")(x, train=train)
                x = F.relu(x)
            x = L.MaxPool(2, name=f"block{i}_pool")(x)
        if not self.include_top:
            return x
        if self.adaptive_pool is not None:
            x = L.AdaptiveAvgPool(self.adaptive_pool, name="avgpool")(x)
        if self.classifier == "global_pool":
            x = L.GlobalAvgPool(name="global_pool")(x)
        else:
            x = Flatten(name="flatten")(x)
            for i in (1, 2):
                x = F.relu(L.Dense(positive_int(self.fc_features, "fc_features"),
                                   dtype=self.dtype, name=f"fc{i}")(x))
                x = L.Dropout(self.dropout_rate, name=f"drop{i}")(x, train=train)
        return L.Dense(positive_int(self.num_classes, "num_classes"), dtype=self.dtype,
                       name="predictions")(x)


_DOC = """VGG-{depth}{bn_title} (Simonyan & Zisserman 2015, config {config}); {count:,} parameters.

    ``VGG(CONFIGS[{depth}], batch_norm={bn}, num_classes=num_classes, **options)``:
    {stages} convolutions per block. Count at 224x224x3, 1000 classes: convolutions
    {convs:,}{bn_count} + dense 123,642,856 = {count:,} ({source}; arithmetic in
    :mod:`jaxcnn.models.vgg`). Registered as ``"{name}"``.

    Args:
        num_classes: default 1000.
        **options: other :class:`VGG` fields (``width``, ``fc_features``, ``include_top``,
            ``classifier``, ``adaptive_pool``, ``dropout_rate``, ``dtype``).

    Example:
        >>> model = {name}(num_classes=10, width=8)
        >>> model.stage_sizes, model.batch_norm
        ({stages}, {bn})
    """


def _register(depth: int, config: str, convs: int, bn_channels: int, batch_norm: bool,
              count: int) -> Callable[..., VGG]:
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")

    def factory(num_classes: int = 1000, **options: Any) -> VGG:
        return VGG(CONFIGS[depth], num_classes=num_classes, batch_norm=batch_norm, **options)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = _DOC.format(
        depth=depth, config=config, count=count, name=name, bn=batch_norm,
        stages=CONFIGS[depth], convs=convs,
        bn_title=" with BatchNorm" if batch_norm else "",
        bn_count=f" + BatchNorm 2 * {bn_channels:,}" if batch_norm else "",
        source="torchvision" if batch_norm else "torchvision and Keras")
    return register(name)(factory)


vgg11 = _register(11, "A", 9_220_480, 2_752, False, 132_863_336)
vgg13 = _register(13, "B", 9_404_992, 2_944, False, 133_047_848)
vgg16 = _register(16, "D", 14_714_688, 4_224, False, 138_357_544)
vgg19 = _register(19, "E", 20_024_384, 5_504, False, 143_667_240)
vgg11_bn = _register(11, "A", 9_220_480, 2_752, True, 132_868_840)
vgg13_bn = _register(13, "B", 9_404_992, 2_944, True, 133_053_736)
vgg16_bn = _register(16, "D", 14_714_688, 4_224, True, 138_365_992)
vgg19_bn = _register(19, "E", 20_024_384, 5_504, True, 143_678_248)
