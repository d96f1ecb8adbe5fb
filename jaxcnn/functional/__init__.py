"""Pure functions for convolutional networks: ``import jaxcnn.functional as F``.

Every function here is pure (no hidden state: randomness comes in as a key, running
statistics come in and go out as arrays), works under ``jit``, ``vmap`` and ``grad``, and
accepts float32 and bfloat16. Layout is NHWC ``(N, *spatial, C)``; kernels are HWIO
``(*spatial, C_in // groups, C_out)``, as in Flax.
"""

from jaxcnn.functional.activations import (
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    maxout,
    rectify,
    relu,
    sigmoid,
    softmax,
    step,
    swish,
    tanh,
)
from jaxcnn.functional.conv import (
    conv,
    conv_backend,
    conv_transpose,
    depthwise_conv,
    local_conv,
    separable_conv,
)
from jaxcnn.functional.correlate import convolve2d, correlate2d
from jaxcnn.functional.dropout import dropout, spatial_dropout
from jaxcnn.functional.linear import dense
from jaxcnn.functional.normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_contrast_norm,
    local_response_norm,
)
from jaxcnn.functional.pooling import (
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    max_pool,
    spatial_pyramid_pool,
    stochastic_pool,
)
from jaxcnn.functional.shapes import conv_output_size, pool_output_size, resolve_padding

__all__ = [
    # convolution
    "conv", "conv_backend", "conv_transpose", "depthwise_conv", "separable_conv", "local_conv",
    "correlate2d", "convolve2d", "conv_output_size", "pool_output_size", "resolve_padding",
    # pooling
    "max_pool", "avg_pool", "lp_pool", "global_avg_pool", "global_max_pool",
    "adaptive_avg_pool", "adaptive_max_pool", "spatial_pyramid_pool", "stochastic_pool",
    # normalization
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
    "local_contrast_norm",
    # activations
    "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "swish",
    "step", "rectify", "maxout",
    # regularization and dense
    "dropout", "spatial_dropout", "dense",
]
