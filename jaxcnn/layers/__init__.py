"""Flax linen layers: ``from jaxcnn import layers as L``.

Every layer is a thin ``flax.linen.Module`` whose math is one call into
:mod:`jaxcnn.functional` (no second copy of any formula). Parameters are declared with
``self.param`` under Flax's names (``kernel``, ``bias``, ``scale``), BatchNorm's running
statistics live in the ``batch_stats`` collection, and randomness (dropout, stochastic pooling)
comes from the ``"dropout"`` rng stream. Layers that behave differently in training take
``__call__(x, train=False)``; every normalization layer accepts ``train`` so blocks can swap
them.
"""

from jaxcnn.layers.conv import Conv, ConvTranspose, DepthwiseConv, LocalConv, SeparableConv
from jaxcnn.layers.core import (
    ACTIVATIONS,
    Activation,
    Dense,
    Dropout,
    Maxout,
    SpatialDropout,
    get_activation,
)
from jaxcnn.layers.normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LocalContrastNorm,
    LocalResponseNorm,
)
from jaxcnn.layers.pooling import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    GlobalAvgPool,
    GlobalMaxPool,
    LPPool,
    MaxPool,
    SpatialPyramidPool,
    StochasticPool,
)

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "ConvTranspose",
    "Dense",
    "DepthwiseConv",
    "Dropout",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "GroupNorm",
    "InstanceNorm",
    "LPPool",
    "LayerNorm",
    "LocalContrastNorm",
    "LocalConv",
    "LocalResponseNorm",
    "MaxPool",
    "Maxout",
    "SeparableConv",
    "SpatialDropout",
    "SpatialPyramidPool",
    "StochasticPool",
    "get_activation",
]
