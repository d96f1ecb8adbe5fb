"""Flax NNX front end: jaxcnn's layers as ``nnx.Module`` and
``jaxcnn.models.create(name, api="nnx", rngs=nnx.Rngs(0))``.

Every :mod:`jaxcnn.layers` layer has an NNX form here, built eagerly with ``rngs=nnx.Rngs(...)``
and the input's feature count (as ``flax.nnx.Conv``): the same variable names, shapes and
initialisers as the Linen layer (``nnx.Param`` / ``nnx.BatchStat``), the same
:mod:`jaxcnn.functional` call, and ``model.train()`` / ``model.eval()`` switching BatchNorm and
dropout as Flax NNX's own layers. :class:`ZooModel` holds a registered model's variables at the
Linen module's paths and runs the one architecture definition (see :mod:`jaxcnn.nnx._zoo`);
:func:`from_linen` / :func:`to_linen` move weights between the two front ends, and
:func:`build_layer` builds a Linen layer's NNX twin from its configuration.
"""

from jaxcnn.nnx._build import build_layer
from jaxcnn.nnx._zoo import ZooModel, register_native
from jaxcnn.nnx.conv import *  # noqa: F403
from jaxcnn.nnx.convert import from_linen, to_linen
from jaxcnn.nnx.core import *  # noqa: F403
from jaxcnn.nnx.normalization import *  # noqa: F403
from jaxcnn.nnx.pooling import *  # noqa: F403

# The layers (star-imported: each module's __all__ names its jaxcnn.layers twin's classes).
__all__ = [
    "Conv", "ConvTranspose", "DepthwiseConv", "LocalConv", "SeparableConv",  # noqa: F405
    "Activation", "Dense", "Dropout", "Maxout", "SpatialDropout",  # noqa: F405
    "BatchNorm", "GroupNorm", "InstanceNorm", "LayerNorm", "LocalContrastNorm",  # noqa: F405
    "LocalResponseNorm", "AdaptiveAvgPool", "AdaptiveMaxPool", "AvgPool",  # noqa: F405
    "GlobalAvgPool", "GlobalMaxPool", "LPPool", "MaxPool", "SpatialPyramidPool",  # noqa: F405
    "StochasticPool",  # noqa: F405
    "ZooModel", "build_layer", "from_linen", "register_native", "to_linen",
]
