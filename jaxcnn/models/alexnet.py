"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional
Neural Networks") as described in the paper, and torchvision's single-tower variant.

Registered as ``"alexnet"`` (the paper's two-tower network on 227x227 inputs; the two GPUs'
towers are grouped convolutions, ``groups=2``) and ``"alexnet_torchvision"`` (224x224,
torchvision's ``alexnet``, itself from Krizhevsky 2014, "One weird trick").

Submodule names follow Caffe's ``bvlc_alexnet``: ``conv1``, ``norm1``, ``pool1``, ``conv2``,
``norm2``, ``pool2``, ``conv3``, ``conv4``, ``conv5``, ``pool5``, (``avgpool``), ``flatten``,
``fc6``, ``drop6``, ``fc7``, ``drop7``, ``fc8`` (the classifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank, normalize_tuple
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import register
from jaxcnn.models.simple import Flatten

__all__ = ["AlexNet", "alexnet", "alexnet_torchvision"]

Array = jax.Array


class AlexNet(nn.Module):
    """AlexNet: five convolutions (11x11/4, 5x5, three 3x3), overlapping max pooling, 3 dense.

    ``conv1 (k=11, s=4) -> [LRN] -> pool -> conv2 (k=5, p=2) -> [LRN] -> pool -> conv3, conv4,
    conv5 (k=3, p=1) -> pool -> [adaptive avg pool] -> fc6 -> fc7 -> fc8``, ReLU after every
    convolution and hidden dense layer, max pooling 3x3 with stride 2 ("overlapping pooling",
    sec. 3.4), local response normalization (sec. 3.3: ``size=5, k=2, alpha=1e-4, beta=0.75``)
    after the first two ReLUs, and dropout 0.5 in the two hidden dense layers (sec. 4.2). The
    defaults are the paper's network; :func:`alexnet_torchvision` sets the other variant.

    Parameter count (default, 227x227x3 input, 1000 classes; grouped convolutions see
    ``C_in / 2`` input channels per filter):

    * conv1 11*11*3*96 + 96 = 34,944; conv2 (2 groups) 5*5*48*256 + 256 = 307,456;
    * conv3 3*3*256*384 + 384 = 885,120; conv4 (2 groups) 3*3*192*384 + 384 = 663,936;
    * conv5 (2 groups) 3*3*192*256 + 256 = 442,624 (convolutions: 2,334,080);
    * fc6 6*6*256*4096 + 4096 = 37,752,832; fc7 4096*4096 + 4096 = 16,781,312;
      fc8 4096*1000 + 1000 = 4,097,000;
    * total **60,965,224**.

    fc6 infers its input size, so smaller inputs (down to 67x67, a 1x1 ``pool5``) work too,
    with fewer fc6 parameters.

    Args:
        num_classes: size of ``fc8``; default 1000.
        features: widths of conv1..conv5; default ``(96, 256, 384, 384, 256)``.
        groups: feature groups of conv1..conv5; default ``(1, 2, 1, 2, 2)`` (the paper's two
            GPUs: conv2, conv4 and conv5 see only their own tower, conv3 and the dense layers
            see both).
        stem_padding: padding of conv1; default 0 (227 -> 55).
        local_response_norm: LRN after the first two convolutions; default True.
        adaptive_pool: output size of an adaptive average pooling before ``flatten`` (6 in
            torchvision), or None (default) for none.
        fc_features: width of fc6 and fc7; default 4096.
        dropout_rate: default 0.5.
        dropout_first: where dropout sits: False (default, the paper and Caffe) after the ReLUs
            of fc6 and fc7; True (torchvision) before fc6 and fc7.
        dtype: compute dtype; params stay float32.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = AlexNet()
        >>> x = jnp.ones((1, 227, 227, 3))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes, no memory
        >>> jaxcnn.count_params(variables["params"])
        60965224
        >>> variables["params"]["conv2"]["kernel"].shape      # 2 groups: 96 / 2 inputs each
        (5, 5, 48, 256)
        >>> jax.eval_shape(model.apply, variables, x).shape
        (1, 1000)
    """

    num_classes: int = 1000
    features: Sequence[int] = (96, 256, 384, 384, 256)
    groups: Sequence[int] = (1, 2, 1, 2, 2)
    stem_padding: int = 0
    local_response_norm: bool = True
    adaptive_pool: int | None = None
    fc_features: int = 4096
    dropout_rate: float = 0.5
    dropout_first: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", 4, "(N, H, W, C) for AlexNet")
        check_float(x, "x")
        features = normalize_tuple(self.features, 5, "features")
        groups = normalize_tuple(self.groups, 5, "groups")
        kernels, pads = (11, 5, 3, 3, 3), (self.stem_padding, 2, 1, 1, 1)
        for i, (width, group, kernel, pad) in enumerate(
                zip(features, groups, kernels, pads, strict=True), start=1):
            x = L.Conv(width, kernel, strides=4 if i == 1 else 1, padding=pad, groups=group,
                       dtype=self.dtype, name=f"conv{i}")(x)
            x = F.relu(x)
            if i <= 2 and self.local_response_norm:
                x = L.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0,
                                        name=f"norm{i}")(x)
            if i in (1, 2, 5):
                x = L.MaxPool(3, strides=2, name=f"pool{i}")(x)
        if self.adaptive_pool is not None:
            x = L.AdaptiveAvgPool(self.adaptive_pool, name="avgpool")(x)
        x = Flatten(name="flatten")(x)
        for i in (6, 7):
            drop = L.Dropout(self.dropout_rate, name=f"drop{i}")
            if self.dropout_first:
                x = drop(x, train=train)
            x = F.relu(L.Dense(positive_int(self.fc_features, "fc_features"), dtype=self.dtype,
                               name=f"fc{i}")(x))
            if not self.dropout_first:
                x = drop(x, train=train)
        return L.Dense(positive_int(self.num_classes, "num_classes"), dtype=self.dtype,
                       name="fc8")(x)


@register("alexnet", input_shape=(227, 227, 3))
def alexnet(num_classes: int = 1000, **options: Any) -> AlexNet:
    """AlexNet as in Krizhevsky et al. 2012 (two towers, LRN); 60,965,224 parameters.

    The paper's network on 227x227x3 inputs: 96-11x11/4, LRN, max pool 3/2, 256-5x5 in 2
    groups, LRN, pool, 384-3x3, 384-3x3 in 2 groups, 256-3x3 in 2 groups, pool, 4096, 4096
    (dropout 0.5), 1000: 2,334,080 convolution + 58,631,144 dense parameters (arithmetic in
    :class:`AlexNet`). Registered as ``"alexnet"``.

    Args:
        num_classes: default 1000.
        **options: :class:`AlexNet` fields (``features``, ``fc_features`` to shrink it,
            ``dropout_rate``, ``dtype``).

    Example:
        >>> alexnet().groups
        (1, 2, 1, 2, 2)
    """
    return AlexNet(num_classes=num_classes, **options)


@register("alexnet_torchvision")
def alexnet_torchvision(num_classes: int = 1000, **options: Any) -> AlexNet:
    """Torchvision's single-tower AlexNet (no LRN, 6x6 adaptive pool); 61,100,840 parameters.

    64-11x11/4 (pad 2), max pool 3/2, 192-5x5, pool, 384-3x3, 256-3x3, 256-3x3, pool, adaptive
    average pool to 6x6, dropout, 4096, dropout, 4096, 1000 (224x224x3 inputs; any size from
    63x63 thanks to the adaptive pool). Count for 1000 classes:

    * conv1 11*11*3*64 + 64 = 23,296; conv2 5*5*64*192 + 192 = 307,392;
      conv3 3*3*192*384 + 384 = 663,936; conv4 3*3*384*256 + 256 = 884,992;
      conv5 3*3*256*256 + 256 = 590,080;
    * fc6 6*6*256*4096 + 4096 = 37,752,832; fc7 16,781,312; fc8 4,097,000;
    * total **61,100,840** (torchvision's figure).

    Args:
        num_classes: default 1000.
        **options: other :class:`AlexNet` fields.

    Example:
        >>> model = alexnet_torchvision()
        >>> model.features, model.local_response_norm, model.adaptive_pool
        ((64, 192, 384, 256, 256), False, 6)
    """
    config = {"features": (64, 192, 384, 256, 256), "groups": (1, 1, 1, 1, 1),
              "stem_padding": 2, "local_response_norm": False, "adaptive_pool": 6,
              "dropout_first": True}
    return AlexNet(num_classes=num_classes, **{**config, **options})
