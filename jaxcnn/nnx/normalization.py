"""Normalization layers as ``nnx.Module``: the :mod:`jaxcnn.layers.normalization` layers.

Signatures follow ``flax.nnx`` (``num_features`` first, options as keywords, ``rngs``); the
defaults are jaxcnn's Linen layers' (BatchNorm ``momentum=0.9``, ``epsilon=1e-5``), as are the
variable names (``scale``, ``bias``; running ``mean``, ``var`` as ``nnx.BatchStat``) and the
one :mod:`jaxcnn.functional` call (:mod:`jaxcnn._layer_specs`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import jax.numpy as jnp
from flax import nnx

from jaxcnn import _layer_specs as S
from jaxcnn.layers import normalization as L
from jaxcnn.layers._utils import Array, Dtype, Initializer
from jaxcnn.nnx._layer import Layer, Stateless, configure

__all__ = [  # the classes of jaxcnn.layers.normalization
    "BatchNorm", "GroupNorm", "InstanceNorm", "LayerNorm", "LocalContrastNorm",
    "LocalResponseNorm",
]

ones, zeros = nnx.initializers.ones, nnx.initializers.zeros


class BatchNorm(Layer):
    """Batch normalization with running statistics; the NNX form of
    :class:`jaxcnn.layers.BatchNorm` (see there for the formulas), switched as
    ``flax.nnx.BatchNorm``.

    While ``use_running_average`` is False (the default, and after ``model.train()``) a call
    normalises with the batch statistics and updates ``mean`` / ``var`` in place
    (``momentum * old + (1 - momentum) * batch``); after ``model.eval()`` it uses them.

    Args:
        num_features: channels ``C`` (the last axis).
        use_running_average: start in evaluation mode. Default False.
        momentum, epsilon, use_scale, use_bias, axis_name, axis_index_groups, dtype,
        param_dtype, scale_init, bias_init: as :class:`jaxcnn.layers.BatchNorm`.
        rngs: ``nnx.Rngs`` for the initialisers.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> x = 3.0 + jnp.sin(jnp.arange(256.0)).reshape(8, 4, 4, 2)
        >>> bn = BatchNorm(2, rngs=nnx.Rngs(0))
        >>> bn(x).shape                                   # training: batch statistics
        (8, 4, 4, 2)
        >>> bn.mean[...].round(1)                         # 0.9 * 0 + 0.1 * ~3
        Array([0.3, 0.3], dtype=float32)
        >>> bn.eval()
        >>> y = bn(x)                                     # evaluation: running statistics
        >>> bn.mean[...].round(1)                         # unchanged
        Array([0.3, 0.3], dtype=float32)
    """

    def __init__(self, num_features: int, *, use_running_average: bool = False,
                 momentum: float = 0.9, epsilon: float = 1e-5, use_scale: bool = True,
                 use_bias: bool = True, axis_name: Hashable | None = None,
                 axis_index_groups: Sequence[Sequence[int]] | None = None,
                 dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32,
                 scale_init: Initializer = ones, bias_init: Initializer = zeros,
                 rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.batch_norm_vars, num_features, rngs,
                    feature_name="num_features")

    def __call__(self, x: Array, use_running_average: bool | None = None) -> Array:
        """Normalise ``x``; ``use_running_average`` overrides the layer's for this call."""
        if use_running_average is None:
            use_running_average = self.use_running_average
        train = not use_running_average
        y, (mean, var) = S.batch_norm_call(self, x, self._values(S.batch_norm_vars, x),
                                           train=train)
        if train:
            self.mean[...], self.var[...] = mean, var
        return y

    def set_view(self, use_running_average: bool | None = None) -> None:
        """``nnx.view(model, use_running_average=...)`` support, as ``flax.nnx.BatchNorm``."""
        if use_running_average is not None:
            self.use_running_average = use_running_average


class _Norm(Layer):
    """LayerNorm, GroupNorm and InstanceNorm: per-channel ``scale`` and ``bias``, one call.

    The options (keywords) are the Linen layers': ``epsilon`` (1e-5), ``use_scale``,
    ``use_bias`` (True), ``dtype`` (None: ``x``'s), ``param_dtype`` (float32), ``scale_init``
    (ones), ``bias_init`` (zeros); ``rngs`` feeds the initialisers.
    """

    _call: ClassVar[Any]

    def __init__(self, num_features: int, *, epsilon: float = 1e-5, use_scale: bool = True,
                 use_bias: bool = True, dtype: Dtype | None = None,
                 param_dtype: Dtype = jnp.float32, scale_init: Initializer = ones,
                 bias_init: Initializer = zeros, rngs: nnx.Rngs):
        configure(self, locals())
        self._build(S.norm_vars, num_features, rngs, feature_name="num_features")

    def __call__(self, x: Array) -> Array:
        return self._call(self, x, self._values(S.norm_vars, x))


class LayerNorm(_Norm):
    """Layer normalization: each example standardised alone (over ``axes``, default all but
    the batch axis); the NNX form of :class:`jaxcnn.layers.LayerNorm`, with its options.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> x = 5.0 + jnp.sin(jnp.arange(96.0)).reshape(2, 4, 4, 3)
        >>> LayerNorm(3, rngs=nnx.Rngs(0))(x).std(axis=(1, 2, 3)).round(2)
        Array([1., 1.], dtype=float32)
    """

    _call = staticmethod(S.layer_norm_call)

    def __init__(self, num_features: int, *, axes: int | Sequence[int] | None = None,
                 **options: Any):
        self.axes = axes
        super().__init__(num_features, **options)


class GroupNorm(_Norm):
    """Group normalization: statistics per example and group of channels; the NNX form of
    :class:`jaxcnn.layers.GroupNorm`, with its options (``num_groups`` must divide
    ``num_features``).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> gn = GroupNorm(8, num_groups=2, rngs=nnx.Rngs(0))
        >>> gn(jnp.sin(jnp.arange(256.0)).reshape(2, 4, 4, 8)).shape
        (2, 4, 4, 8)
    """

    _call = staticmethod(S.group_norm_call)

    def __init__(self, num_features: int, num_groups: int = 32, **options: Any):
        self.num_groups = num_groups
        super().__init__(num_features, **options)


class InstanceNorm(_Norm):
    """Instance normalization: statistics per example and channel; the NNX form of
    :class:`jaxcnn.layers.InstanceNorm`, with its options.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> x = jnp.sin(jnp.arange(384.0)).reshape(2, 8, 8, 3)
        >>> InstanceNorm(3, rngs=nnx.Rngs(0))(x).std(axis=(1, 2)).round(2)
        Array([[1., 1., 1.],
               [1., 1., 1.]], dtype=float32)
    """

    _call = staticmethod(S.instance_norm_call)


class LocalResponseNorm(Stateless, linen=L.LocalResponseNorm, call=S.local_response_norm_call):
    """Local response normalization across channels (no variables); the NNX form of
    :class:`jaxcnn.layers.LocalResponseNorm`, same arguments ``(size, alpha, beta, k)``.

    Example:
        >>> import jax.numpy as jnp
        >>> LocalResponseNorm(3, alpha=0.1, beta=1.0, k=1.0)(jnp.array([[1.0, 2.0, 3.0]])).round(4)
        Array([[0.6667, 0.8333, 1.3043]], dtype=float32)
    """


class LocalContrastNorm(Stateless, linen=L.LocalContrastNorm, call=S.local_contrast_norm_call):
    """Local contrast normalization (no variables); the NNX form of
    :class:`jaxcnn.layers.LocalContrastNorm`, same arguments ``(window, sigma, eps)``.

    Example:
        >>> import jax.numpy as jnp
        >>> LocalContrastNorm(window=5)(jnp.sin(jnp.arange(1536.0)).reshape(2, 16, 16, 3)).shape
        (2, 16, 16, 3)
    """
