"""What a layer is, written once for both front ends (``jaxcnn.layers`` and ``jaxcnn.nnx``).

For every layer this module holds the two pieces of logic beyond the math:

* ``<layer>_vars(m, x)``: the variables the layer needs for the input ``x``, as :class:`Var`
  rows (collection, name, shape, initialiser, dtype), with the configuration validated on the
  way. The Linen layer declares them in its compact ``__call__``; the NNX layer creates them
  in ``__init__`` (from a stand-in input of its ``in_features``) and, at each call, checks the
  stored ones against the rows ``x`` implies, so both reject a misfitting input alike.
* ``<layer>_call(m, x, v)``: the one :mod:`jaxcnn.functional` call, given the variable values
  ``v`` (a dict by name; switched-off ones absent). Stateless layers have only this.

``m`` is the layer (either front end): both read its configuration under the Linen field
names (``features``, ``kernel_size``, ``strides``, ``padding``, ``dilation``, ...), so the
functions here never know which front end asked.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn import functional as F
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.functional.shapes import conv_output_size, resolve_padding, spatial_params
from jaxcnn.layers._utils import Array, Dtype, Initializer, positive_int, promote, window_shape

__all__ = ["Var"]


@dataclasses.dataclass(frozen=True)
class Var:
    """One variable a layer needs: ``init(key, shape, dtype)`` makes its initial value.

    Example:
        >>> import jax
        >>> v = Var("params", "bias", (3,), jax.nn.initializers.zeros, jax.numpy.float32)
        >>> v.init(jax.random.key(0), v.shape, v.dtype)
        Array([0., 0., 0.], dtype=float32)
    """

    collection: str  # "params" or "batch_stats"
    name: str
    shape: tuple[int, ...]
    init: Initializer
    dtype: Dtype


def _param(m: Any, name: str, shape: tuple[int, ...], init: Initializer) -> Var:
    return Var("params", name, tuple(int(d) for d in shape), init, m.param_dtype)


def _bias(m: Any, shape: tuple[int, ...]) -> tuple[Var, ...]:
    return (_param(m, "bias", shape, m.bias_init),) if m.use_bias else ()


def _promoted_call(fn: Any, m: Any, x: Array, v: dict[str, Array], names: tuple[str, ...],
                   **kwargs: Any) -> Array:
    """``fn(x, *params, **kwargs)`` after casting ``x`` and the params to ``m.dtype``."""
    x, *params = promote(x, *(v.get(n) for n in names), dtype=m.dtype)
    return fn(x, *params, **kwargs)


# ----------------------------------------------------------------------------- core


def dense_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """Dense: ``kernel (in_features, features)`` and ``bias (features,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxcnn.layers import Dense
        >>> [(v.name, v.shape) for v in dense_vars(Dense(10), jnp.ones((1, 84)))]
        [('kernel', (84, 10)), ('bias', (10,))]
    """
    if jnp.ndim(x) < 1:
        raise ValueError(f"`x` must have a feature axis (..., in_features), got shape "
                         f"{jnp.shape(x)}.")
    features = positive_int(m.features, "features")
    return (_param(m, "kernel", (x.shape[-1], features), m.kernel_init),
            *_bias(m, (features,)))


def dense_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """Dense: :func:`jaxcnn.functional.dense`."""
    return _promoted_call(F.dense, m, x, v, ("kernel", "bias"))


def dropout_call(m: Any, x: Array, key: Array | None, train: bool) -> Array:
    """Dropout: :func:`jaxcnn.functional.dropout`."""
    return F.dropout(x, m.rate, key, train)


def spatial_dropout_call(m: Any, x: Array, key: Array | None, train: bool) -> Array:
    """SpatialDropout: :func:`jaxcnn.functional.spatial_dropout`."""
    return F.spatial_dropout(x, m.rate, key, train)


# ----------------------------------------------------------------------------- convolutions


def conv_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """Conv: ``kernel (*window, C_in // groups, features)`` and ``bias (features,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxcnn.layers import Conv
        >>> [v.shape for v in conv_vars(Conv(16, 3, groups=2), jnp.ones((1, 8, 8, 4)))]
        [(3, 3, 2, 16), (16,)]
    """
    window = window_shape(m.kernel_size, x)
    groups = positive_int(m.groups, "groups")
    features = positive_int(m.features, "features")
    return (_param(m, "kernel", (*window, x.shape[-1] // groups, features), m.kernel_init),
            *_bias(m, (features,)))


def conv_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """Conv: :func:`jaxcnn.functional.conv`."""
    return _promoted_call(F.conv, m, x, v, ("kernel", "bias"), stride=m.strides,
                          padding=m.padding, dilation=m.dilation, groups=m.groups)


def conv_transpose_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """ConvTranspose: ``kernel (*window, C_in, features)`` and ``bias (features,)``."""
    window = window_shape(m.kernel_size, x)
    features = positive_int(m.features, "features")
    return (_param(m, "kernel", (*window, x.shape[-1], features), m.kernel_init),
            *_bias(m, (features,)))


def conv_transpose_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """ConvTranspose: :func:`jaxcnn.functional.conv_transpose`."""
    return _promoted_call(F.conv_transpose, m, x, v, ("kernel", "bias"), stride=m.strides,
                          padding=m.padding, dilation=m.dilation,
                          output_padding=m.output_padding)


def depthwise_conv_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """DepthwiseConv: ``kernel (*window, 1, C * M)`` and ``bias (C * M,)``."""
    window = window_shape(m.kernel_size, x)
    out = x.shape[-1] * positive_int(m.depth_multiplier, "depth_multiplier")
    return _param(m, "kernel", (*window, 1, out), m.kernel_init), *_bias(m, (out,))


def depthwise_conv_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """DepthwiseConv: :func:`jaxcnn.functional.depthwise_conv`."""
    return _promoted_call(F.depthwise_conv, m, x, v, ("kernel", "bias"), stride=m.strides,
                          padding=m.padding, dilation=m.dilation)


def separable_conv_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """SeparableConv (Keras names): ``depthwise_kernel (*window, 1, C * M)``,
    ``pointwise_kernel (1, ..., 1, C * M, features)`` and ``bias (features,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxcnn.layers import SeparableConv
        >>> [v.shape for v in separable_conv_vars(SeparableConv(32, 3), jnp.ones((1, 8, 8, 4)))]
        [(3, 3, 1, 4), (1, 1, 4, 32), (32,)]
    """
    window = window_shape(m.kernel_size, x)
    mid = x.shape[-1] * positive_int(m.depth_multiplier, "depth_multiplier")
    features = positive_int(m.features, "features")
    return (_param(m, "depthwise_kernel", (*window, 1, mid), m.kernel_init),
            _param(m, "pointwise_kernel", (1,) * len(window) + (mid, features), m.kernel_init),
            *_bias(m, (features,)))


def separable_conv_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """SeparableConv: :func:`jaxcnn.functional.separable_conv`."""
    return _promoted_call(F.separable_conv, m, x, v,
                          ("depthwise_kernel", "pointwise_kernel", "bias"), stride=m.strides,
                          padding=m.padding, dilation=m.dilation)


def _local_geometry(m: Any, x: Array) -> tuple[tuple[int, ...], ...]:
    """LocalConv: window, strides, dilations, explicit pads and the output's spatial size."""
    window = window_shape(m.kernel_size, x)
    strides, dilations = spatial_params(m.strides, m.dilation, len(window))
    pads = resolve_padding(m.padding, x.shape[1:-1], window, strides, dilations)
    out_spatial = tuple(conv_output_size(*args) for args in
                        zip(x.shape[1:-1], window, strides, pads, dilations, strict=True))
    return window, strides, dilations, pads, out_spatial


def local_conv_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """LocalConv: ``kernel (*out_spatial, prod(window) * C_in, features)`` and an unshared
    ``bias (*out_spatial, features)``; the default kernel initialiser is LeCun normal with the
    output positions as batch axes.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxcnn.layers import LocalConv
        >>> [v.shape for v in local_conv_vars(LocalConv(5, 3), jnp.ones((1, 6, 6, 2)))]
        [(4, 4, 18, 5), (4, 4, 5)]
    """
    window, *_, out_spatial = _local_geometry(m, x)
    features = positive_int(m.features, "features")
    init = m.kernel_init
    if init is None:
        init = nn.initializers.lecun_normal(batch_axis=tuple(range(len(window))))
    return (_param(m, "kernel", (*out_spatial, math.prod(window) * x.shape[-1], features), init),
            *_bias(m, (*out_spatial, features)))


def local_conv_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """LocalConv: :func:`jaxcnn.functional.local_conv`."""
    window, strides, dilations, pads, _ = _local_geometry(m, x)
    return _promoted_call(F.local_conv, m, x, v, ("kernel", "bias"), window=window,
                          stride=strides, padding=pads, dilation=dilations)


# ----------------------------------------------------------------------------- normalization


def norm_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """Normalization layers: per-channel ``scale`` and ``bias`` (each where switched on).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxcnn.layers import LayerNorm
        >>> [(v.name, v.shape) for v in norm_vars(LayerNorm(use_bias=False), jnp.ones((2, 3)))]
        [('scale', (3,))]
    """
    check_rank(x, "x", (2, 3, 4, 5), "(N, *spatial, C)")
    check_float(x, "x")
    shape = (x.shape[-1],)
    scale = (_param(m, "scale", shape, m.scale_init),) if m.use_scale else ()
    return (*scale, *_bias(m, shape))


def batch_norm_vars(m: Any, x: Array) -> tuple[Var, ...]:
    """BatchNorm: :func:`norm_vars` plus the running ``mean`` (zeros) and ``var`` (ones), float32
    in the ``batch_stats`` collection.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxcnn.layers import BatchNorm
        >>> [(v.collection, v.name) for v in batch_norm_vars(BatchNorm(), jnp.ones((2, 3)))]
        [('params', 'scale'), ('params', 'bias'), ('batch_stats', 'mean'), ('batch_stats', 'var')]
    """
    params = norm_vars(m, x)  # checks x first
    shape = (x.shape[-1],)
    return (*params,
            Var("batch_stats", "mean", shape, nn.initializers.zeros, jnp.float32),
            Var("batch_stats", "var", shape, nn.initializers.ones, jnp.float32))


def _cast(x: Array, dtype: Dtype | None) -> Array:
    # Statistics are float32 inside F whatever the input dtype; ``dtype`` only sets the output.
    return x if dtype is None else x.astype(dtype)


def batch_norm_call(m: Any, x: Array, v: dict[str, Array], *, train: bool, pool: bool = True
                    ) -> tuple[Array, tuple[Array, Array]]:
    """BatchNorm: :func:`jaxcnn.functional.batch_norm`, returning ``(y, (mean, var))`` (the
    updated running statistics in training). ``pool=False`` ignores ``m.axis_name``."""
    return F.batch_norm(_cast(x, m.dtype), v.get("scale"), v.get("bias"), v["mean"], v["var"],
                        train=train, momentum=m.momentum, eps=m.epsilon,
                        axis_name=m.axis_name if pool else None,
                        axis_index_groups=m.axis_index_groups if pool else None)


def layer_norm_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """LayerNorm: :func:`jaxcnn.functional.layer_norm`."""
    return F.layer_norm(_cast(x, m.dtype), v.get("scale"), v.get("bias"), eps=m.epsilon,
                        axes=m.axes)


def group_norm_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """GroupNorm: :func:`jaxcnn.functional.group_norm`."""
    return F.group_norm(_cast(x, m.dtype), v.get("scale"), v.get("bias"),
                        num_groups=m.num_groups, eps=m.epsilon)


def instance_norm_call(m: Any, x: Array, v: dict[str, Array]) -> Array:
    """InstanceNorm: :func:`jaxcnn.functional.instance_norm`."""
    return F.instance_norm(_cast(x, m.dtype), v.get("scale"), v.get("bias"), eps=m.epsilon)


def local_response_norm_call(m: Any, x: Array) -> Array:
    """LocalResponseNorm: :func:`jaxcnn.functional.local_response_norm`."""
    return F.local_response_norm(x, m.size, m.alpha, m.beta, m.k)


def local_contrast_norm_call(m: Any, x: Array) -> Array:
    """LocalContrastNorm: :func:`jaxcnn.functional.local_contrast_norm`."""
    return F.local_contrast_norm(x, m.window, m.sigma, m.eps)


# ----------------------------------------------------------------------------- pooling


def max_pool_call(m: Any, x: Array) -> Array:
    """MaxPool: :func:`jaxcnn.functional.max_pool`."""
    return F.max_pool(x, m.window, m.strides, m.padding, m.dilation, m.ceil_mode)


def avg_pool_call(m: Any, x: Array) -> Array:
    """AvgPool: :func:`jaxcnn.functional.avg_pool`."""
    return F.avg_pool(x, m.window, m.strides, m.padding, m.count_include_pad, m.ceil_mode)


def lp_pool_call(m: Any, x: Array) -> Array:
    """LPPool: :func:`jaxcnn.functional.lp_pool`."""
    return F.lp_pool(x, m.p, m.window, m.strides, m.padding)


def global_avg_pool_call(m: Any, x: Array) -> Array:
    """GlobalAvgPool: :func:`jaxcnn.functional.global_avg_pool`."""
    return F.global_avg_pool(x, m.keepdims)


def global_max_pool_call(m: Any, x: Array) -> Array:
    """GlobalMaxPool: :func:`jaxcnn.functional.global_max_pool`."""
    return F.global_max_pool(x, m.keepdims)


def adaptive_avg_pool_call(m: Any, x: Array) -> Array:
    """AdaptiveAvgPool: :func:`jaxcnn.functional.adaptive_avg_pool`."""
    return F.adaptive_avg_pool(x, m.output_size)


def adaptive_max_pool_call(m: Any, x: Array) -> Array:
    """AdaptiveMaxPool: :func:`jaxcnn.functional.adaptive_max_pool`."""
    return F.adaptive_max_pool(x, m.output_size)


def spatial_pyramid_pool_call(m: Any, x: Array) -> Array:
    """SpatialPyramidPool: :func:`jaxcnn.functional.spatial_pyramid_pool`."""
    return F.spatial_pyramid_pool(x, m.levels, m.kind)


def stochastic_pool_call(m: Any, x: Array, key: Array | None, train: bool) -> Array:
    """StochasticPool: :func:`jaxcnn.functional.stochastic_pool`."""
    return F.stochastic_pool(x, key, m.window, m.strides, train=train)
