"""Normalization layers as pure functions: batch, layer, group, instance, LRN and LCN.

Layout is NHWC ``(N, *spatial, C)`` with 0 to 3 spatial dimensions (rank 2 to 5). Statistics
are computed in float32 (or float64 for float64 inputs) whatever the input dtype, as Flax does:
a bfloat16 sum over a batch keeps only about 3 significant digits. Outputs have ``x``'s dtype.

``batch_norm`` is the only function with state: the running statistics go in as arguments and
the updated ones come out, so it stays pure and works under ``jit``, ``vmap`` (with an
``axis_name``), ``pmap`` and ``shard_map``.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from numbers import Real
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxcnn.functional._checks import check_float, check_rank, normalize_tuple
from jaxcnn.functional.shapes import resolve_padding

__all__ = [
    "batch_norm",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "local_contrast_norm",
    "local_response_norm",
]

_ANY_RANKS = (2, 3, 4, 5)  # (N, C) up to (N, D, H, W, C)
_SPATIAL_RANKS = (3, 4, 5)  # at least one spatial dimension
_LAYOUT = "(N, *spatial, C)"


# --------------------------------------------------------------------------- helpers


def _stat_dtype(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _check_vector(p: Any, name: str, x: Any) -> None:
    """``p`` is None or a float vector of shape ``(C,)`` matching ``x``'s last axis."""
    if p is None:
        return
    check_float(p, name)
    channels = np.shape(x)[-1]
    if np.shape(p) != (channels,):
        raise ValueError(
            f"`{name}` must have shape (C,) = ({channels},) to match the channels (last axis) of "
            f"`x` with shape {np.shape(x)}, got shape {np.shape(p)}."
        )


def _check_scalar(value: Any, name: str, low: float, high: float = np.inf,
                  low_open: bool = False) -> None:
    # Only Python/numpy numbers are checked: a traced value cannot be inspected at trace time.
    if not isinstance(value, Real | np.ndarray) or np.ndim(value) != 0:
        return
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if bad_low or value > high:
        lo = "(" if low_open else "["
        raise ValueError(f"`{name}` must lie in {lo}{low}, {high}], got {value}.")


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be a Python int, got {value!r} of type "
                        f"{type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def _moments(xf: jax.Array, axes: tuple[int, ...], axis_name: Hashable | None = None,
             axis_index_groups: Sequence[Sequence[int]] | None = None
             ) -> tuple[jax.Array, jax.Array]:
    """Mean and biased variance over ``axes`` (kept as size-1 dims), pooled over ``axis_name``."""
    mean = jnp.mean(xf, axes, keepdims=True)
    if axis_name is None:
        # Two passes: no cancellation when |mean| >> std.
        return mean, jnp.mean(jnp.square(xf - mean), axes, keepdims=True)
    # Pool the first two moments, not per-device variances: a mean of variances misses the
    # spread of the per-device means (law of total variance). One all-reduce for both.
    mean_sq = jnp.mean(jnp.square(xf), axes, keepdims=True)
    mean, mean_sq = lax.pmean((mean, mean_sq), axis_name, axis_index_groups=axis_index_groups)
    # E[x^2] - E[x]^2 can round slightly below 0.
    return mean, jnp.maximum(mean_sq - jnp.square(mean), 0)


def _whiten(xf: jax.Array, mean: jax.Array, var: jax.Array, eps: float) -> jax.Array:
    return (xf - mean) * lax.rsqrt(var + eps)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _batch_norm_train(xf: jax.Array, scale: jax.Array, bias: jax.Array, eps: float
                      ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(y, mu, sigma2)``, ``y = (x - mu) / sqrt(sigma2 + eps) * scale + bias``; moments over
    all axes but the last, ``scale`` and ``bias`` of shape ``(C,)``.

    The formula of :func:`_moments` + :func:`_whiten` + :func:`_affine`, with a JVP written out
    so that the backward pass XLA derives from it is the textbook one: two sums over the
    activations (``sum(g)`` and ``sum(g * (x - mu))`` of the incoming gradient ``g``, which
    are also the gradients of ``bias`` and ``scale``) and one elementwise pass for the input
    gradient. Per-channel factors multiply the sums, never the activations, and every
    full-size term enters by addition: the transposed JVP then asks for the same two sums
    three times over, which XLA's CSE computes once. Applying ``scale`` to ``g`` before
    summing (a custom JVP of the standardisation alone, the affine left to autodiff) compiles
    to six sums and two more elementwise passes per layer; ResNet-18/CIFAR train step on 2
    cores: 120 -> 80 reductions, 184 -> 84 ms per step in them and the two passes.

    The only activation-sized residual is ``x``, which the backward pass of a ReLU after the
    layer keeps anyway. ``sum(g * (x - mu))`` is taken as ``sum(g * x) - mu * sum(g)``
    and ``(x - mu) * k`` as ``x * k - mu * k``: written with ``x - mu``, XLA's CSE merges that
    term with the forward pass's ``x - mu`` (the variance's) and keeps that array alive until
    the backward pass, a third activation-sized residual per layer (ResNet-18/CIFAR, batch
    128: 952 -> 656 MiB of XLA temporaries, 244k -> 168k page faults per step at glibc's
    default ``malloc``). The rounding of the float32 ``mu`` already costs any form
    ``eps * |mu| / std`` relative error; against float64 the input gradient's error at
    ``|mu| / std = 100`` is 2.6e-6 here, 2.1e-6 with ``x - mu``
    (``tests/functional/test_normalization.py``).
    """
    y, mean, var, _ = _batch_norm_forward(xf, scale, bias, eps)
    return y, mean, var


def _batch_norm_forward(xf: jax.Array, scale: jax.Array, bias: jax.Array, eps: float
                        ) -> tuple[jax.Array, ...]:
    """``(y, mu, sigma2, rsqrt(sigma2 + eps))``; the statistics of shape ``(C,)``."""
    mean, var = (m.reshape(-1) for m in _moments(xf, tuple(range(xf.ndim - 1))))
    rstd = lax.rsqrt(var + eps)
    return (xf - mean) * (rstd * scale) + bias, mean, var, rstd


def _batch_norm_train_jvp(eps: float, primals: tuple[jax.Array, ...],
                          tangents: tuple[Any, ...]):
    (xf, scale, bias), (dx, dscale, dbias) = primals, tangents
    y, mean, var, rstd = _batch_norm_forward(xf, scale, bias, eps)
    gain = rstd * scale
    terms, dmean, dvar = [], jnp.zeros_like(mean), jnp.zeros_like(var)
    if not isinstance(dx, SymbolicZero):
        axes = tuple(range(xf.ndim - 1))
        dmean = jnp.mean(dx, axes)
        # = mean((x - mu) * dx) = dvar / 2, without x - mu (see _batch_norm_train)
        cov = jnp.mean(xf * dx, axes) - mean * dmean
        dvar = 2 * cov
        k = -gain * rstd * rstd * cov
        terms += [gain * dx, xf * k, -gain * dmean - mean * k]
    if not isinstance(dscale, SymbolicZero):
        k = rstd * dscale
        terms += [xf * k, -mean * k]
    if not isinstance(dbias, SymbolicZero):
        terms.append(jnp.broadcast_to(dbias, y.shape))
    dy = functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(y)
    return (y, mean, var), (dy, dmean, dvar)


_batch_norm_train.defjvp(_batch_norm_train_jvp, symbolic_zeros=True)


def _affine(y: jax.Array, scale: jax.Array | None, bias: jax.Array | None, dtype: Any
            ) -> jax.Array:
    if scale is not None:
        y = y * scale.astype(y.dtype)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y.astype(dtype)


def _check_input(x: Any, ranks: Sequence[int] = _ANY_RANKS) -> None:
    check_rank(x, "x", ranks, _LAYOUT)
    check_float(x, "x")


# --------------------------------------------------------------------------- batch norm


def batch_norm(x: jax.Array, scale: jax.Array | None, bias: jax.Array | None,
               mean: jax.Array, var: jax.Array, *, train: bool, momentum: float = 0.9,
               eps: float = 1e-5, axis_name: Hashable | None = None,
               axis_index_groups: Sequence[Sequence[int]] | None = None
               ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Batch normalization (Ioffe & Szegedy 2015) with explicit running statistics.

    ``y = (x - mu) / sqrt(sigma2 + eps) * scale + bias`` per channel (last axis), where
    ``mu, sigma2`` are the mean and biased variance of ``x`` over every axis but the last
    (batch and spatial) when ``train=True``, and the running ``mean, var`` when ``train=False``.

    In training the running statistics are updated as (Flax convention)::

        new_mean = momentum * mean + (1 - momentum) * mu
        new_var  = momentum * var  + (1 - momentum) * sigma2

    so ``momentum`` is the weight on the OLD value: Flax ``momentum=0.9`` equals PyTorch
    ``momentum=0.1`` (PyTorch weighs the new batch). Like Flax, and unlike PyTorch (which uses
    the unbiased ``n / (n - 1)`` estimate), the running variance is fed the biased batch
    variance. In eval mode ``mean`` and ``var`` are returned unchanged.

    Statistics are computed in float32 even for bfloat16 ``x``; ``y`` has ``x``'s dtype and the
    new running statistics keep the dtypes of ``mean`` and ``var``.

    Cross-device (sync) batch norm: with ``axis_name`` (a ``pmap``/``shard_map``/``vmap`` axis)
    the per-device ``E[x]`` and ``E[x^2]`` are averaged with ``lax.pmean`` and
    ``sigma2 = E[x^2] - E[x]^2`` (clamped at 0), which is the full-batch variance provided every
    device holds the same number of examples (a plain mean weighs devices equally).

    Args:
        x: input ``(N, *spatial, C)``, rank 2 to 5, floating dtype.
        scale: ``(C,)`` multiplier (gamma), or None for no scaling.
        bias: ``(C,)`` offset (beta), or None for no offset.
        mean: ``(C,)`` running mean (initialise with zeros).
        var: ``(C,)`` running variance (initialise with ones).
        train: keyword-only Python bool: batch statistics (and update) or running statistics.
        momentum: weight of the old running value in ``[0, 1]``; default 0.9.
        eps: added to the variance before the square root; default 1e-5.
        axis_name: mapped axis name (or tuple of names) to pool statistics over, or None.
        axis_index_groups: optional device groups for ``lax.pmean`` (each group pools only its
            own members); ``pmap`` only, ``shard_map`` does not support it.

    Returns:
        ``(y, (new_mean, new_var))`` with ``y`` of ``x``'s shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (16, 4, 4, 3))
        >>> state = (jnp.zeros(3), jnp.ones(3))
        >>> y, state = batch_norm(x, jnp.ones(3), jnp.zeros(3), *state, train=True)
        >>> y.shape, abs(round(float(y.mean()), 3)), round(float(y.std()), 3)
        ((16, 4, 4, 3), 0.0, 1.0)
        >>> [round(float(m), 1) for m in state[0]]        # 0.9 * 0 + 0.1 * ~3
        [0.3, 0.3, 0.3]
        >>> y_eval, _ = batch_norm(x, None, None, *state, train=False)
    """
    _check_input(x)
    if mean is None or var is None:
        raise ValueError("`mean` and `var` (running statistics, shape (C,)) are required; "
                         "initialise them with zeros and ones.")
    for name, p in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
        _check_vector(p, name, x)
    if not isinstance(train, bool | np.bool_):
        raise TypeError(f"`train` must be a Python bool (it is resolved at trace time; mark it "
                        f"static under jit), got {train!r}.")
    _check_scalar(momentum, "momentum", 0.0, 1.0)
    _check_scalar(eps, "eps", 0.0)

    dtype = _stat_dtype(x.dtype)
    xf = x.astype(dtype)
    if not train:
        y = _whiten(xf, mean.astype(dtype), var.astype(dtype), eps)
        return _affine(y, scale, bias, x.dtype), (mean, var)
    if axis_name is None:
        ones_or_scale = jnp.ones(x.shape[-1], dtype) if scale is None else scale.astype(dtype)
        zeros_or_bias = jnp.zeros(x.shape[-1], dtype) if bias is None else bias.astype(dtype)
        y, batch_mean, batch_var = _batch_norm_train(xf, ones_or_scale, zeros_or_bias, eps)
    else:
        axes = tuple(range(x.ndim - 1))
        batch_mean, batch_var = _moments(xf, axes, axis_name, axis_index_groups)
        batch_mean, batch_var = batch_mean.reshape(-1), batch_var.reshape(-1)
        y = _affine(_whiten(xf, batch_mean, batch_var, eps), scale, bias, dtype)
    new_mean = (momentum * mean + (1 - momentum) * batch_mean).astype(mean.dtype)
    new_var = (momentum * var + (1 - momentum) * batch_var).astype(var.dtype)
    return y.astype(x.dtype), (new_mean, new_var)


# ------------------------------------------------------------- layer / group / instance


def _normalize_axes(axes: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    items = (axes,) if isinstance(axes, int | np.integer) else tuple(axes)
    if not items:
        raise ValueError("`axes` must name at least one axis, got an empty sequence.")
    out = []
    for a in items:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"`axes`={axes!r} is out of range for `x` of rank {ndim}; every "
                             f"axis must lie in [{-ndim}, {ndim}).")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"`axes`={axes!r} names an axis twice; each axis must appear once.")
    return tuple(sorted(out))


def layer_norm(x: jax.Array, scale: jax.Array | None = None, bias: jax.Array | None = None, *,
               eps: float = 1e-5, axes: int | Sequence[int] | None = None) -> jax.Array:
    """Layer normalization (Ba, Kiros & Hinton 2016): standardise each example on its own.

    ``y = (x - mu) / sqrt(sigma2 + eps) * scale + bias`` with ``mu, sigma2`` the mean and biased
    variance over ``axes``. The default normalises over every non-batch axis (H, W and C
    together: one mean and variance per example), the usual LayerNorm for CNN feature maps
    (PyTorch ``nn.LayerNorm([C, H, W])`` without its per-element affine). ``scale``/``bias``
    are per channel, shape ``(C,)``, broadcast over the other axes. ``axes=-1`` gives the
    transformer-style per-position LayerNorm (Flax ``nn.LayerNorm()``).

    Args:
        x: input ``(N, *spatial, C)``, rank 2 to 5, floating dtype.
        scale: optional ``(C,)`` multiplier.
        bias: optional ``(C,)`` offset.
        eps: added to the variance; default 1e-5.
        axes: axis or axes to normalise over; default ``(1, ..., x.ndim - 1)``.

    Returns:
        Array of ``x``'s shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = 5.0 + jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
        >>> y = layer_norm(x)
        >>> y.shape, [abs(round(float(m), 3)) for m in y.mean((1, 2, 3))]
        ((2, 4, 4, 3), [0.0, 0.0])
        >>> layer_norm(x, axes=-1).std(-1).round(2).max()    # per position
        Array(1., dtype=float32)
    """
    _check_input(x)
    _check_vector(scale, "scale", x)
    _check_vector(bias, "bias", x)
    _check_scalar(eps, "eps", 0.0)
    axes = tuple(range(1, x.ndim)) if axes is None else _normalize_axes(axes, x.ndim)
    xf = x.astype(_stat_dtype(x.dtype))
    y = _whiten(xf, *_moments(xf, axes), eps)
    return _affine(y, scale, bias, x.dtype)


def group_norm(x: jax.Array, scale: jax.Array | None = None, bias: jax.Array | None = None, *,
               num_groups: int = 32, eps: float = 1e-5) -> jax.Array:
    """Group normalization (Wu & He 2018, "Group Normalization", ECCV).

    The ``C`` channels are split into ``num_groups`` groups of ``C // num_groups`` consecutive
    channels; each example and group is standardised with the mean and biased variance over its
    spatial positions and the group's channels::

        y[n, ..., c] = (x[n, ..., c] - mu[n, g]) / sqrt(sigma2[n, g] + eps) * scale[c] + bias[c]

    with ``g = c // (C // num_groups)``. Independent of the batch size (no running statistics).
    ``num_groups=1`` is :func:`layer_norm` over (H, W, C); ``num_groups=C`` is
    :func:`instance_norm`. The paper's default is 32 groups.

    Args:
        x: input ``(N, *spatial, C)``, rank 2 to 5, floating dtype; ``C % num_groups == 0``.
        scale: optional ``(C,)`` multiplier.
        bias: optional ``(C,)`` offset.
        num_groups: number of groups ``G``; default 32.
        eps: added to the variance; default 1e-5.

    Returns:
        Array of ``x``'s shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
        >>> y = group_norm(x, num_groups=2)
        >>> g = y.reshape(2, 4, 4, 2, 4)            # (N, H, W, G, C // G)
        >>> g.std((1, 2, 4)).round(2)
        Array([[1., 1.],
               [1., 1.]], dtype=float32)
    """
    _check_input(x)
    _check_vector(scale, "scale", x)
    _check_vector(bias, "bias", x)
    _check_scalar(eps, "eps", 0.0)
    num_groups = _check_int(num_groups, "num_groups")
    channels = x.shape[-1]
    if channels % num_groups:
        raise ValueError(
            f"`num_groups`={num_groups} must divide the number of channels C={channels} of `x` "
            f"with shape {x.shape}; choose a divisor of {channels}."
        )
    xf = x.astype(_stat_dtype(x.dtype))
    xg = xf.reshape(*x.shape[:-1], num_groups, channels // num_groups)
    axes = (*range(1, x.ndim - 1), xg.ndim - 1)
    y = _whiten(xg, *_moments(xg, axes), eps).reshape(x.shape)
    return _affine(y, scale, bias, x.dtype)


def instance_norm(x: jax.Array, scale: jax.Array | None = None, bias: jax.Array | None = None,
                  *, eps: float = 1e-5) -> jax.Array:
    """Instance normalization (Ulyanov et al. 2016): each example and channel on its own.

    ``y[n, ..., c] = (x[n, ..., c] - mu[n, c]) / sqrt(sigma2[n, c] + eps) * scale[c] + bias[c]``
    with statistics over the spatial axes only; identical to
    ``group_norm(x, scale, bias, num_groups=C, eps=eps)``.

    Args:
        x: input ``(N, *spatial, C)`` with at least one spatial axis (rank 3 to 5).
        scale: optional ``(C,)`` multiplier.
        bias: optional ``(C,)`` offset.
        eps: added to the variance; default 1e-5.

    Returns:
        Array of ``x``'s shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
        >>> instance_norm(x).std((1, 2)).round(2)
        Array([[1., 1., 1.],
               [1., 1., 1.]], dtype=float32)
    """
    # Rank 2 would standardise single numbers to 0.
    check_rank(x, "x", _SPATIAL_RANKS, _LAYOUT)
    return group_norm(x, scale, bias, num_groups=x.shape[-1], eps=eps)


# --------------------------------------------------------------------------- LRN / LCN


def local_response_norm(x: jax.Array, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 2.0) -> jax.Array:
    """Local response normalization across channels (Krizhevsky et al. 2012, AlexNet, sec. 3.3).

    ``b[..., c] = a[..., c] / (k + alpha * sum_{c'} a[..., c']^2) ** beta`` where ``c'`` runs
    over the ``size`` channels centred on ``c`` (clipped at the first and last channel). The
    defaults are the paper's ``k=2, n=5, alpha=1e-4, beta=0.75``.

    Conventions: like the paper and ``tf.nn.local_response_normalization``, ``alpha`` is used
    as is. PyTorch's ``nn.LocalResponseNorm`` divides alpha by ``size``, so
    ``torch.nn.LocalResponseNorm(size, alpha_torch, beta, k)`` equals
    ``local_response_norm(x, size, alpha_torch / size, beta, k)`` (``alpha_torch = alpha *
    size``). TensorFlow's ``depth_radius=r`` is ``size = 2 * r + 1``. An even ``size`` takes one
    more channel below ``c`` than above (channels ``c - size // 2`` to ``c + (size - 1) // 2``),
    as PyTorch does.

    Args:
        x: input ``(N, *spatial, C)``, rank 2 to 5, floating dtype.
        size: number of channels in the window (``n`` in the paper), >= 1; default 5.
        alpha: scale of the squared sum; default 1e-4.
        beta: exponent; default 0.75.
        k: additive constant (keep ``k > 0``); default 2.

    Returns:
        Array of ``x``'s shape and dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([[1.0, 2.0, 3.0]])
        >>> local_response_norm(x, size=3, alpha=0.1, beta=1.0, k=1.0).round(4)
        Array([[0.6667, 0.8333, 1.3043]], dtype=float32)
    """
    _check_input(x)
    size = _check_int(size, "size")
    xf = x.astype(_stat_dtype(x.dtype))
    lead = (1,) * (x.ndim - 1)
    # The init value must be a concrete numpy zero: a jnp one is a tracer under jit, which hides
    # the add-monoid from lax and leaves a reduce_window without a reverse-mode rule.
    sq_sum = lax.reduce_window(
        jnp.square(xf), np.array(0, xf.dtype), lax.add, (*lead, size), (*lead, 1),
        ((0, 0),) * (x.ndim - 1) + ((size // 2, (size - 1) // 2),),
    )
    return (xf * (k + alpha * sq_sum) ** -beta).astype(x.dtype)


def _gaussian(window: tuple[int, ...], sigma: tuple[float, ...]) -> np.ndarray:
    """Separable Gaussian over ``window`` centred at ``(w - 1) / 2``, normalised to sum 1."""
    w = np.ones(())
    for n, s in zip(window, sigma, strict=True):
        d = np.arange(n) - (n - 1) / 2
        w = np.multiply.outer(w, np.exp(-0.5 * (d / s) ** 2))
    return w / w.sum()


def _safe_sqrt(v: jax.Array) -> jax.Array:
    # sqrt'(0) is infinite; a flat neighbourhood (v == 0) would poison gradients with NaN.
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1)), 0)


def local_contrast_norm(x: jax.Array, window: int | Sequence[int] = 9,
                        sigma: float | Sequence[float] | None = None, eps: float = 1e-4
                        ) -> jax.Array:
    """Local contrast normalization (Jarrett et al. 2009, "What is the best multi-stage
    architecture for object recognition?", ICCV; layer N).

    Subtractive step, then divisive step, with a Gaussian weighting ``w`` over a spatial
    ``window`` and all ``C`` channels, normalised so that ``sum_{c, p, q} w[p, q] = 1``::

        v[n, i, j, c] = x[n, i, j, c] - sum_{c', p, q} w[p, q] x[n, i + p, j + q, c']
        s[n, i, j]    = sqrt(sum_{c', p, q} w[p, q] v[n, i + p, j + q, c'] ** 2)
        y[n, i, j, c] = v[n, i, j, c] / max(max(mean_{i, j} s[n, i, j], eps), s[n, i, j])

    The floor ``mean s`` is per image, as in the paper; ``eps`` also guards a flat image
    (``s == 0``) against ``0 / 0``. Borders use plain zero "SAME" padding (XLA's: an even window
    puts its extra pixel after the centre), without renormalising the weights, so near the
    border the local mean is pulled towards 0 and a constant image gives non-zero output within
    ``window // 2`` pixels of the edge (exactly 0 further in).

    Args:
        x: input ``(N, *spatial, C)`` with 1 to 3 spatial axes (rank 3 to 5), floating dtype.
        window: spatial window size, an int or one per spatial axis; the paper uses 9.
        sigma: Gaussian standard deviation in pixels, a float or one per spatial axis; default
            ``window / 4`` (2.25 for the paper's 9; the paper does not state it; torch7's
            ``image.gaussian(n)`` uses the same quarter-width default).
        eps: lower bound of the divisor; default 1e-4.

    Returns:
        Array of ``x``'s shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = 10.0 + 5.0 * jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
        >>> y = local_contrast_norm(x, window=5)
        >>> y.shape, abs(round(float(y[:, 4:-4, 4:-4].mean()), 1))
        ((2, 16, 16, 3), 0.0)
        >>> float(local_contrast_norm(jnp.ones((1, 9, 9, 1)), 3)[0, 1:-1, 1:-1].max())
        0.0
    """
    _check_input(x, _SPATIAL_RANKS)
    n = x.ndim - 2
    window = normalize_tuple(window, n, "window")
    if sigma is None:
        sigma = tuple(w / 4 for w in window)
    else:
        sigma = (sigma,) * n if isinstance(sigma, Real) else tuple(sigma)
        if len(sigma) != n or any(not s > 0 for s in sigma):
            raise ValueError(f"`sigma` must be a positive float or {n} positive floats (one per "
                             f"spatial axis), got {sigma!r}.")
    _check_scalar(eps, "eps", 0.0, low_open=True)

    dtype = _stat_dtype(x.dtype)
    channels = x.shape[-1]
    kernel = np.broadcast_to((_gaussian(window, sigma) / channels)[..., None, None],
                             (*window, channels, 1))
    kernel = jnp.asarray(kernel, dtype)
    ones = (1,) * n
    pads = resolve_padding("SAME", x.shape[1:-1], window, ones, ones, name="window")
    spec = (0, n + 1, *range(1, n + 1))  # N, C, *spatial for both lhs and out
    dn = lax.ConvDimensionNumbers(spec, (n + 1, n, *range(n)), spec)

    def local_mean(a):  # weighted sum over window and channels -> (N, *spatial, 1)
        # HIGHEST: accelerators' default conv precision is bf16-like and x - mean cancels.
        return lax.conv_general_dilated(a, kernel, ones, pads, dimension_numbers=dn,
                                        precision=lax.Precision.HIGHEST)

    xf = x.astype(dtype)
    v = xf - local_mean(xf)
    s = _safe_sqrt(local_mean(jnp.square(v)))
    floor = jnp.maximum(jnp.mean(s, tuple(range(1, n + 1)), keepdims=True), eps)
    return (v / jnp.maximum(floor, s)).astype(x.dtype)
