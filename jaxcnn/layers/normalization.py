"""Normalization layers: thin Flax linen wrappers around :mod:`jaxcnn.functional.normalization`.

Every layer here is called as ``layer(x, train=False)`` so that blocks can take any of them as
their ``norm`` argument (BatchNorm, GroupNorm, LayerNorm, ...); only :class:`BatchNorm` behaves
differently in training. Parameter names are Flax's (``scale``, ``bias``; running statistics
``mean``, ``var`` in the ``batch_stats`` collection), so weights map 1:1.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn import _layer_specs as S
from jaxcnn.layers._utils import Array, Dtype, Initializer, declare

__all__ = [
    "BatchNorm",
    "GroupNorm",
    "InstanceNorm",
    "LayerNorm",
    "LocalContrastNorm",
    "LocalResponseNorm",
]


class BatchNorm(nn.Module):
    """Batch normalization layer (Ioffe & Szegedy 2015) with running statistics.

    ``y = (x - mu) / sqrt(sigma2 + epsilon) * scale + bias`` per channel, computed by
    :func:`jaxcnn.functional.batch_norm`: ``mu, sigma2`` are the batch statistics over all axes
    but the last when ``train=True`` and the running ``mean``, ``var`` otherwise. In training the
    running statistics (collection ``batch_stats``; pass ``mutable=["batch_stats"]``) become::

        mean <- momentum * mean + (1 - momentum) * mu
        var  <- momentum * var  + (1 - momentum) * sigma2

    (Flax's convention: ``momentum=0.9`` is PyTorch's ``momentum=0.1``). As in Flax, they are
    NOT updated during ``init``, and cross-device statistics (``axis_name``) are only pooled
    outside ``init``, so a model can be initialised outside ``pmap``.

    Args:
        momentum: weight of the old running value. Default 0.9.
        epsilon: added to the variance. Default 1e-5.
        use_scale: learn a per-channel ``scale`` (gamma). Default True.
        use_bias: learn a per-channel ``bias`` (beta). Default True.
        axis_name: ``pmap``/``shard_map``/``vmap`` axis name(s) to pool the batch statistics
            over (synchronised BatchNorm), or None.
        axis_index_groups: device groups for the pooling (``pmap`` only), or None.
        dtype: output dtype; None keeps ``x``'s (statistics are float32 either way).
        param_dtype: dtype of ``scale`` and ``bias``. Default float32.
        scale_init: initializer of ``scale``; default ones.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = 3.0 + jnp.sin(jnp.arange(256.0)).reshape(8, 4, 4, 2)
        >>> bn = BatchNorm()
        >>> variables = bn.init(jax.random.key(1), x)
        >>> jax.tree.map(jnp.shape, variables)
        {'batch_stats': {'mean': (2,), 'var': (2,)}, 'params': {'bias': (2,), 'scale': (2,)}}
        >>> y, updates = bn.apply(variables, x, train=True, mutable=["batch_stats"])
        >>> updates["batch_stats"]["mean"].round(1)               # 0.9 * 0 + 0.1 * ~3
        Array([0.3, 0.3], dtype=float32)
        >>> bn.apply(variables, x).shape                          # eval: running statistics
        (8, 4, 4, 2)
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True
    axis_name: Hashable | None = None
    axis_index_groups: Sequence[Sequence[int]] | None = None
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    scale_init: Initializer = nn.initializers.ones
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        v = declare(self, S.batch_norm_vars(self, x), x)
        initializing = self.is_initializing()
        y, (mean, var) = S.batch_norm_call(self, x, v, train=train, pool=not initializing)
        if train and not initializing:
            self.put_variable("batch_stats", "mean", mean)
            self.put_variable("batch_stats", "var", var)
        return y


class LayerNorm(nn.Module):
    """Layer normalization layer (Ba, Kiros & Hinton 2016): each example standardised alone.

    ``y = (x - mu) / sqrt(sigma2 + epsilon) * scale + bias`` with ``mu, sigma2`` over ``axes``
    (default: all non-batch axes, one mean per example); per-channel ``scale``/``bias``. See
    :func:`jaxcnn.functional.layer_norm`; ``axes=-1`` is Flax's ``nn.LayerNorm()``.

    Args:
        epsilon: added to the variance. Default 1e-5.
        axes: axis or axes to normalise over; default None (all but the batch axis).
        use_scale: learn a per-channel ``scale``. Default True.
        use_bias: learn a per-channel ``bias``. Default True.
        dtype: output dtype; None keeps ``x``'s.
        param_dtype: dtype of the parameters. Default float32.
        scale_init: initializer of ``scale``; default ones.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = 5.0 + jnp.sin(jnp.arange(96.0)).reshape(2, 4, 4, 3)
        >>> ln = LayerNorm()
        >>> y = ln.apply(ln.init(jax.random.key(1), x), x, train=True)   # train is ignored
        >>> y.std(axis=(1, 2, 3)).round(2)
        Array([1., 1.], dtype=float32)
    """

    epsilon: float = 1e-5
    axes: int | Sequence[int] | None = None
    use_scale: bool = True
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    scale_init: Initializer = nn.initializers.ones
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        return S.layer_norm_call(self, x, declare(self, S.norm_vars(self, x), x))


class GroupNorm(nn.Module):
    """Group normalization layer (Wu & He 2018): statistics per example and channel group.

    ``y[n, ..., c] = (x - mu[n, g]) / sqrt(sigma2[n, g] + epsilon) * scale[c] + bias[c]`` with
    ``g = c // (C // num_groups)``; see :func:`jaxcnn.functional.group_norm`. Independent of
    the batch size, a drop-in replacement for :class:`BatchNorm` in blocks.

    Args:
        num_groups: number of groups; must divide ``C``. Default 32 (the paper's).
        epsilon: added to the variance. Default 1e-5.
        use_scale: learn a per-channel ``scale``. Default True.
        use_bias: learn a per-channel ``bias``. Default True.
        dtype: output dtype; None keeps ``x``'s.
        param_dtype: dtype of the parameters. Default float32.
        scale_init: initializer of ``scale``; default ones.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.sin(jnp.arange(256.0)).reshape(2, 4, 4, 8)
        >>> gn = GroupNorm(num_groups=2)
        >>> gn.apply(gn.init(jax.random.key(1), x), x).shape
        (2, 4, 4, 8)
    """

    num_groups: int = 32
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    scale_init: Initializer = nn.initializers.ones
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        return S.group_norm_call(self, x, declare(self, S.norm_vars(self, x), x))


class InstanceNorm(nn.Module):
    """Instance normalization layer (Ulyanov et al. 2016): statistics per example and channel.

    ``y[n, ..., c] = (x - mu[n, c]) / sqrt(sigma2[n, c] + epsilon) * scale[c] + bias[c]`` over
    the spatial axes; see :func:`jaxcnn.functional.instance_norm`.

    Args:
        epsilon: added to the variance. Default 1e-5.
        use_scale: learn a per-channel ``scale``. Default True.
        use_bias: learn a per-channel ``bias``. Default True.
        dtype: output dtype; None keeps ``x``'s.
        param_dtype: dtype of the parameters. Default float32.
        scale_init: initializer of ``scale``; default ones.
        bias_init: initializer of ``bias``; default zeros.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.sin(jnp.arange(384.0)).reshape(2, 8, 8, 3)
        >>> inorm = InstanceNorm()
        >>> inorm.apply(inorm.init(jax.random.key(1), x), x).std(axis=(1, 2)).round(2)
        Array([[1., 1., 1.],
               [1., 1., 1.]], dtype=float32)
    """

    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    scale_init: Initializer = nn.initializers.ones
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        return S.instance_norm_call(self, x, declare(self, S.norm_vars(self, x), x))


class LocalResponseNorm(nn.Module):
    """Local response normalization layer across channels (Krizhevsky et al. 2012, sec. 3.3).

    ``y[..., c] = x[..., c] / (k + alpha * sum_{c'} x[..., c']^2) ** beta`` over the ``size``
    channels centred on ``c``; see :func:`jaxcnn.functional.local_response_norm` (``alpha`` is
    used as is, as in the paper and TensorFlow; PyTorch's equals ``alpha_torch / size``).
    No parameters.

    Args:
        size: channels in the window (``n`` in the paper). Default 5.
        alpha: scale of the squared sum. Default 1e-4.
        beta: exponent. Default 0.75.
        k: additive constant. Default 2.0 (the paper's values throughout).

    Example:
        >>> import jax.numpy as jnp
        >>> LocalResponseNorm(3, alpha=0.1, beta=1.0, k=1.0).apply(
        ...     {}, jnp.array([[1.0, 2.0, 3.0]])).round(4)
        Array([[0.6667, 0.8333, 1.3043]], dtype=float32)
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        return S.local_response_norm_call(self, x)


class LocalContrastNorm(nn.Module):
    """Local contrast normalization layer (Jarrett et al. 2009): subtractive then divisive.

    With a Gaussian weighting ``w`` over a spatial ``window`` and all channels::

        v = x - sum w * x,   s = sqrt(sum w * v^2),   y = v / max(mean(s), s, eps)

    see :func:`jaxcnn.functional.local_contrast_norm`. No parameters.

    Args:
        window: spatial window, an int or one per spatial dim. Default 9 (the paper's).
        sigma: Gaussian standard deviation in pixels; default (None) ``window / 4``.
        eps: lower bound of the divisor. Default 1e-4.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.sin(jnp.arange(1536.0)).reshape(2, 16, 16, 3)
        >>> LocalContrastNorm(window=5).apply({}, x).shape
        (2, 16, 16, 3)
    """

    window: int | Sequence[int] = 9
    sigma: float | Sequence[float] | None = None
    eps: float = 1e-4

    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        return S.local_contrast_norm_call(self, x)
