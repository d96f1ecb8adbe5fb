"""Pooling: max, average, L^p, global, adaptive, spatial-pyramid and stochastic pooling.

All functions take NHWC-style inputs ``(N, *spatial, C)`` with any number of spatial dims
(``spatial_pyramid_pool`` is 2-D only) and pool each channel independently. Windowed pools wrap
:func:`jax.lax.reduce_window`; sizes follow :func:`~jaxcnn.functional.shapes.pool_output_size`
and padding accepts every form of :func:`~jaxcnn.functional.shapes.resolve_padding`
(``"SAME"``, ``"VALID"``, an int, one int per dim, or ``(low, high)`` pairs). ``stride``
defaults to ``window`` (non-overlapping pooling). ``ceil_mode`` and ``count_include_pad``
follow PyTorch exactly, so results match ``torch.nn.functional`` on the same (transposed)
inputs.

Every window must contain at least one input element: padding so large that a window lies
entirely in the padding raises ``ValueError`` instead of returning ``-inf`` or ``0 / 0``
(PyTorch is stricter still: it requires padding <= window / 2).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn.functional._checks import check_float, check_rank, normalize_tuple
from jaxcnn.functional.shapes import Padding, pool_output_size, resolve_padding, spatial_params

__all__ = [
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "avg_pool",
    "global_avg_pool",
    "global_max_pool",
    "lp_pool",
    "max_pool",
    "spatial_pyramid_pool",
    "stochastic_pool",
]

IntOrSeq = int | Sequence[int]


class _Geometry(NamedTuple):
    window: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]       # as the user asked, resolved
    full_pads: tuple[tuple[int, int], ...]  # plus the high padding ceil_mode's extra windows need
    out: tuple[int, ...]


def _spatial_ndim(x: jax.Array) -> int:
    if np.ndim(x) < 3:
        raise ValueError(
            f"`x` must have rank >= 3 laid out as (N, *spatial, C), got rank {np.ndim(x)} "
            f"with shape {np.shape(x)}; add the batch and/or channel axis."
        )
    check_float(x, "x")
    return x.ndim - 2


def _geometry(x: jax.Array, window: IntOrSeq, stride: IntOrSeq | None, padding: Padding,
              dilation: IntOrSeq = 1, ceil_mode: bool = False) -> _Geometry:
    n = _spatial_ndim(x)
    window = normalize_tuple(window, n, "window")
    stride, dilation = spatial_params(window if stride is None else stride, dilation, n)
    spatial = x.shape[1:-1]
    pads = resolve_padding(padding, spatial, window, stride, dilation)
    out, full = [], []
    for dim, (size, k, s, d, (lo, hi)) in enumerate(zip(spatial, window, stride, dilation, pads,
                                                        strict=True)):
        o = pool_output_size(size, k, s, (lo, hi), d, ceil_mode)
        taps = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d
        if not ((taps >= lo) & (taps < lo + size)).any(axis=1).all():
            raise ValueError(
                f"`padding`={padding!r} gives pads {pads} that are so large that some windows lie "
                f"entirely in the padding (spatial dim {dim}: input {tuple(spatial)}, window "
                f"{window}, stride {stride}, dilation {dilation}); use less padding than the "
                f"window."
            )
        out.append(o)
        full.append((lo, max(hi, (o - 1) * s + d * (k - 1) + 1 - size - lo)))
    return _Geometry(window, stride, dilation, pads, tuple(full), tuple(out))


def _window_dims(g: _Geometry, pads: Sequence[tuple[int, int]]) -> dict:
    return dict(window_dimensions=(1, *g.window, 1), window_strides=(1, *g.stride, 1),
                padding=((0, 0), *pads, (0, 0)))


def _sum_pool(x: jax.Array, g: _Geometry) -> jax.Array:
    return lax.reduce_window(x, 0.0, lax.add, **_window_dims(g, g.full_pads))


def _window_taps(x: jax.Array, g: _Geometry, pad_value: float) -> jax.Array:
    """Every window's elements, ``(N, *out, C, prod(window))``, offsets in row-major order."""
    xp = jnp.pad(x, ((0, 0), *g.full_pads, (0, 0)), constant_values=pad_value)
    taps = []
    for offsets in itertools.product(*(range(k) for k in g.window)):
        start = [o * d for o, d in zip(offsets, g.dilation, strict=True)]
        limit = [b + (o - 1) * s + 1 for b, o, s in zip(start, g.out, g.stride, strict=True)]
        taps.append(lax.slice(xp, (0, *start, 0), (xp.shape[0], *limit, xp.shape[-1]),
                              (1, *g.stride, 1)))
    return jnp.stack(taps, axis=-1)


def _compute_dtype(x: jax.Array) -> jnp.dtype:
    # bfloat16/float16 are promoted to float32 where accumulation or sampling needs the precision
    return jnp.promote_types(x.dtype, jnp.float32)


def max_pool(x: jax.Array, window: IntOrSeq = 2, stride: IntOrSeq | None = None,
             padding: Padding = "VALID", dilation: IntOrSeq = 1, ceil_mode: bool = False
             ) -> jax.Array:
    """Max pooling: the largest element of each (dilated) window, per channel.

    ``y[n, i, c] = max_{j < window} x_pad[n, i * stride + j * dilation, c]`` (per spatial dim),
    where ``x_pad`` is ``x`` padded with ``-inf``, so padding never wins.

    Args:
        x: ``(N, *spatial, C)`` floating array, one or more spatial dims.
        window: window size, an int or one per spatial dim (default 2).
        stride: step between windows, an int or one per spatial dim; defaults to ``window``.
        padding: ``"VALID"`` (default), ``"SAME"``, an int, one int per dim or ``(low, high)``
            pairs; padded positions hold ``-inf``.
        dilation: spacing between window elements (default 1, as ``torch.nn.MaxPool2d``).
        ceil_mode: round the output size up as PyTorch's ``ceil_mode=True`` does: a last,
            partial window is kept when it starts inside the input or the low padding.

    Returns:
        ``(N, *out, C)`` array of ``x``'s dtype, ``out`` from ``pool_output_size``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> max_pool(x, 2)[0, ..., 0]
        Array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
        >>> max_pool(jnp.ones((2, 5, 5, 3)), 2, ceil_mode=True).shape
        (2, 3, 3, 3)
    """
    g = _geometry(x, window, stride, padding, dilation, ceil_mode)
    if all(d == 1 for d in g.dilation):
        return lax.reduce_window(x, -jnp.inf, lax.max, **_window_dims(g, g.full_pads))
    # JAX cannot differentiate reduce_window's max with window dilation (no transpose for
    # select_and_gather_add), so take the max over explicitly gathered taps instead.
    return jnp.max(_window_taps(x, g, -jnp.inf), axis=-1)


def _avg_divisor(g: _Geometry, spatial: Sequence[int], count_include_pad: bool) -> np.ndarray:
    """PyTorch's divisor per output position, ``(*out,)``; separable, so an outer product."""
    per_dim = []
    for size, k, s, o, (lo, hi) in zip(spatial, g.window, g.stride, g.out, g.pads, strict=True):
        start = np.arange(o) * s
        # as avg_pool2d_out_frame: the window is clipped to input + padding (this only bites on
        # ceil_mode's extra window), and to the input alone when padding is not counted
        end = np.minimum(start + k, lo + size + hi)
        if count_include_pad:
            per_dim.append(end - start)
        else:
            per_dim.append(np.minimum(end, lo + size) - np.maximum(start, lo))
    return functools.reduce(np.multiply.outer, per_dim)


def avg_pool(x: jax.Array, window: IntOrSeq = 2, stride: IntOrSeq | None = None,
             padding: Padding = "VALID", count_include_pad: bool = True, ceil_mode: bool = False
             ) -> jax.Array:
    """Average pooling: the mean of each window, per channel, with PyTorch's divisor rules.

    ``y[n, i, c] = sum_{j < window} x_pad[n, i * stride + j, c] / divisor[i]`` with zero
    padding. ``divisor`` is the window area when ``count_include_pad=True`` (padded zeros count),
    or the number of in-input elements when ``False``. As in PyTorch's ``avg_pool2d``, a
    ``ceil_mode`` window that runs past the padding is first clipped to input + padding, so its
    divisor is the clipped area even with ``count_include_pad=True``.

    Args:
        x: ``(N, *spatial, C)`` floating array, one or more spatial dims.
        window: window size, an int or one per spatial dim (default 2).
        stride: step between windows, an int or one per spatial dim; defaults to ``window``.
        padding: ``"VALID"`` (default), ``"SAME"``, an int, one int per dim or ``(low, high)``
            pairs, zero-padded. TF/Keras ``"SAME"`` average pooling excludes the padding: pass
            ``count_include_pad=False`` to match it.
        count_include_pad: divide by the full window (``True``, PyTorch default) or by the
            number of non-padded elements (``False``).
        ceil_mode: round the output size up as PyTorch's ``ceil_mode=True``.

    Returns:
        ``(N, *out, C)`` array of ``x``'s dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
        >>> avg_pool(x, 2, ceil_mode=True)[0, ..., 0]
        Array([[3. , 4.5],
               [7.5, 9. ]], dtype=float32)
        >>> avg_pool(x, 3, stride=1, padding=1, count_include_pad=False)[0, 0, 0, 0]
        Array(3., dtype=float32)
    """
    g = _geometry(x, window, stride, padding, 1, ceil_mode)
    divisor = _avg_divisor(g, x.shape[1:-1], count_include_pad)
    return _sum_pool(x, g) / jnp.asarray(divisor[..., None], dtype=x.dtype)


def lp_pool(x: jax.Array, p: float, window: IntOrSeq = 2, stride: IntOrSeq | None = None,
            padding: Padding = "VALID") -> jax.Array:
    """Power-average (L^p) pooling, as PyTorch's ``LPPool``: ``(sum x^p)^(1/p)`` per window.

    ``y[n, i, c] = (sum_{j < window} x_pad[n, i * stride + j, c] ** p) ** (1 / p)`` with zero
    padding: a sum, not a mean, so ``p=1`` is sum pooling and ``p -> inf`` tends to max pooling
    (Boureau et al. 2010). Meant for non-negative inputs or even ``p``: a negative window sum
    with fractional ``1/p`` gives NaN, and the gradient is infinite where a window sums to 0,
    both as in PyTorch.

    Args:
        x: ``(N, *spatial, C)`` floating array, one or more spatial dims.
        p: the norm's exponent, ``> 0`` (a Python number, or an array to learn it).
        window: window size, an int or one per spatial dim (default 2).
        stride: step between windows; defaults to ``window``.
        padding: ``"VALID"`` (default), ``"SAME"``, an int, one int per dim or ``(low, high)``
            pairs, zero-padded.

    Returns:
        ``(N, *out, C)`` array of ``x``'s dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([3.0, 4.0, 1.0, 1.0]).reshape(1, 4, 1)
        >>> lp_pool(x, 2, window=2)[0, :, 0]
        Array([5.      , 1.414...], dtype=float32)
    """
    if isinstance(p, int | float) and not (p > 0 and np.isfinite(p)):
        raise ValueError(f"`p` must be a finite number > 0, got {p!r}; use max_pool for p=inf.")
    g = _geometry(x, window, stride, padding)
    return (_sum_pool(x ** p, g) ** (1.0 / p)).astype(x.dtype)


def global_avg_pool(x: jax.Array, keepdims: bool = False) -> jax.Array:
    """Global average pooling (Lin et al. 2014, Network in Network): the mean over all spatial dims.

    ``y[n, c] = mean_i x[n, i, c]``.

    Args:
        x: ``(N, *spatial, C)`` floating array.
        keepdims: keep the spatial axes with size 1, ``(N, 1, ..., 1, C)``; default ``(N, C)``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(8.0).reshape(1, 2, 2, 2)
        >>> global_avg_pool(x)
        Array([[3., 4.]], dtype=float32)
        >>> global_avg_pool(x, keepdims=True).shape
        (1, 1, 1, 2)
    """
    return jnp.mean(x, axis=tuple(range(1, _spatial_ndim(x) + 1)), keepdims=keepdims)


def global_max_pool(x: jax.Array, keepdims: bool = False) -> jax.Array:
    """Global max pooling: the maximum over all spatial dims.

    ``y[n, c] = max_i x[n, i, c]``.

    Args:
        x: ``(N, *spatial, C)`` floating array.
        keepdims: keep the spatial axes with size 1, ``(N, 1, ..., 1, C)``; default ``(N, C)``.

    Example:
        >>> import jax.numpy as jnp
        >>> global_max_pool(jnp.arange(8.0).reshape(1, 2, 2, 2))
        Array([[6., 7.]], dtype=float32)
    """
    return jnp.max(x, axis=tuple(range(1, _spatial_ndim(x) + 1)), keepdims=keepdims)


def _adaptive_sizes(x: jax.Array, output_size: int | Sequence[int | None]) -> tuple[int, ...]:
    n = _spatial_ndim(x)
    spatial = x.shape[1:-1]
    if not isinstance(output_size, int | np.integer):
        output_size = list(output_size)
        if len(output_size) == n:  # None keeps that dim's input size, as in PyTorch
            output_size = [s if o is None else o for o, s in zip(output_size, spatial, strict=True)]
    return normalize_tuple(output_size, n, "output_size")


def _bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins: ``[floor(i * size / out), ceil((i + 1) * size / out))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool(x: jax.Array, output_size: int | Sequence[int | None]) -> jax.Array:
    """Adaptive average pooling: a fixed output size whatever the input size (PyTorch bins).

    Output position ``i`` of a dim of input size ``W`` and output size ``O`` averages
    ``x[start:end]`` with ``start = floor(i * W / O)`` and ``end = ceil((i + 1) * W / O)``; bins
    overlap when ``O`` does not divide ``W`` and repeat elements when ``O > W``. The average is
    separable, so each dim is one matmul with a ``(O, W)`` averaging matrix (computed in at least
    float32, returned in ``x``'s dtype).

    Args:
        x: ``(N, *spatial, C)`` floating array.
        output_size: an int, or one per spatial dim (``None`` keeps that dim's size).

    Returns:
        ``(N, *output_size, C)`` array of ``x``'s dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(5.0).reshape(1, 5, 1)      # bins [0, 2), [1, 4), [3, 5)
        >>> adaptive_avg_pool(x, 3)[0, :, 0]
        Array([0.5, 2. , 3.5], dtype=float32)
        >>> adaptive_avg_pool(jnp.ones((2, 7, 9, 3)), (3, None)).shape
        (2, 3, 9, 3)
    """
    sizes = _adaptive_sizes(x, output_size)
    dtype = _compute_dtype(x)
    y = x.astype(dtype)
    for axis, (size, out) in enumerate(zip(x.shape[1:-1], sizes, strict=True), start=1):
        if size == out:
            continue
        mat = np.zeros((out, size))
        for i, (lo, hi) in enumerate(_bins(size, out)):
            mat[i, lo:hi] = 1.0 / (hi - lo)
        y = jnp.tensordot(y, jnp.asarray(mat, dtype), axes=((axis,), (1,)),
                          precision=lax.Precision.HIGHEST)
        y = jnp.moveaxis(y, -1, axis)
    return y.astype(x.dtype)


def adaptive_max_pool(x: jax.Array, output_size: int | Sequence[int | None]) -> jax.Array:
    """Adaptive max pooling: a fixed output size whatever the input size (PyTorch bins).

    Output position ``i`` of a dim of input size ``W`` and output size ``O`` is the max of
    ``x[floor(i * W / O):ceil((i + 1) * W / O)]``; the max over a box is separable, so the dims
    are reduced one after the other.

    Args:
        x: ``(N, *spatial, C)`` floating array.
        output_size: an int, or one per spatial dim (``None`` keeps that dim's size).

    Returns:
        ``(N, *output_size, C)`` array of ``x``'s dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([1.0, 5.0, 2.0, 0.0, 3.0]).reshape(1, 5, 1)
        >>> adaptive_max_pool(x, 3)[0, :, 0]
        Array([5., 5., 3.], dtype=float32)
    """
    sizes = _adaptive_sizes(x, output_size)
    y = x
    for axis, (size, out) in enumerate(zip(x.shape[1:-1], sizes, strict=True), start=1):
        if size == out:
            continue
        y = jnp.concatenate(
            [jnp.max(lax.slice_in_dim(y, lo, hi, axis=axis), axis=axis, keepdims=True)
             for lo, hi in _bins(size, out)], axis=axis)
    return y


def spatial_pyramid_pool(x: jax.Array, levels: Sequence[int] = (1, 2, 4), kind: str = "max"
                         ) -> jax.Array:
    """Spatial pyramid pooling (He et al. 2014, SPP-net): a fixed-length vector for any H, W.

    ``y = concat_l flatten(adaptive_pool(x, (l, l)))``: each level ``l`` pools the map into an
    ``l x l`` grid of adaptive bins (PyTorch's, see :func:`adaptive_max_pool`) and flattens it
    row-major as ``(l, l, C)``, i.e. bin ``(i, j)`` channel ``c`` lands at offset
    ``(i * l + j) * C + c`` within its level; levels follow the order of ``levels``.

    Args:
        x: ``(N, H, W, C)`` floating array (2-D only).
        levels: grid sizes, positive ints (default ``(1, 2, 4)``: 21 bins).
        kind: ``"max"`` (as in the paper, default) or ``"avg"``.

    Returns:
        ``(N, C * sum(l * l for l in levels))`` array of ``x``'s dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> spatial_pyramid_pool(jnp.ones((2, 13, 9, 8))).shape
        (2, 168)
    """
    pools = {"max": adaptive_max_pool, "avg": adaptive_avg_pool}
    if kind not in pools:
        raise ValueError(f"`kind` must be one of {tuple(pools)}, got {kind!r}.")
    check_rank(x, "x", 4, "(N, H, W, C)")
    levels = tuple(levels)
    if not levels:
        raise ValueError("`levels` must contain at least one grid size, got ().")
    levels = normalize_tuple(levels, len(levels), "levels")
    return jnp.concatenate([pools[kind](x, lvl).reshape(x.shape[0], -1)
                            for lvl in levels], axis=-1)


def stochastic_pool(x: jax.Array, key: jax.Array | None, window: IntOrSeq = 2,
                    stride: IntOrSeq | None = None, train: bool = True) -> jax.Array:
    """Stochastic pooling (Zeiler & Fergus 2013): sample one activation per window.

    Within each window, with activations ``a_j`` and ``p_j = a_j / sum_k a_k``: in training the
    output is ``a_J`` with ``J ~ Categorical(p)``; at test time it is the probability-weighted
    average ``sum_j p_j a_j``. Activations are assumed non-negative (after ReLU); negative ones
    get probability 0, and a window with no positive activation outputs 0, as in the paper. The
    gradient flows to the sampled element only (training) or through the weighted average
    (evaluation). No padding: windows must fit the input.

    Args:
        x: ``(N, *spatial, C)`` floating array, one or more spatial dims.
        key: a ``jax.random`` key; may be ``None`` when ``train=False``. Split or ``fold_in``
            it per layer and per step, or every call samples the same positions.
        window: window size, an int or one per spatial dim (default 2).
        stride: step between windows; defaults to ``window`` (the paper's 3x3 stride-2
            overlapping pooling is ``window=3, stride=2``).
        train: sample (``True``, default) or return the weighted average (``False``).

    Returns:
        ``(N, *out, C)`` array of ``x``'s dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.array([1.0, 3.0, 0.0, 0.0]).reshape(1, 4, 1)
        >>> stochastic_pool(x, None, 2, train=False)[0, :, 0]     # (1*1 + 3*3) / 4
        Array([2.5, 0. ], dtype=float32)
        >>> y = stochastic_pool(x, jax.random.key(0), 2)
        >>> bool(y[0, 0, 0] in (1.0, 3.0)), float(y[0, 1, 0])
        (True, 0.0)
    """
    g = _geometry(x, window, stride, "VALID")
    if train and key is None:
        raise ValueError("`key` must be a jax.random key when train=True (sampling); pass "
                         "key=None only with train=False.")
    taps = _window_taps(x, g, 0.0)
    a = jnp.maximum(taps.astype(_compute_dtype(x)), 0)
    total = a.sum(axis=-1)
    positive = total > 0
    if not train:
        # the inner where keeps the gradient of all-zero windows finite
        mean = (a * a).sum(axis=-1) / jnp.where(positive, total, 1)
        return jnp.where(positive, mean, 0).astype(x.dtype)
    # log 0 = -inf: non-positive activations are never drawn; sampling itself has no gradient
    idx = jax.random.categorical(key, jnp.log(lax.stop_gradient(a)), axis=-1)
    picked = jnp.take_along_axis(taps, idx[..., None], axis=-1)[..., 0]
    return jnp.where(positive, picked, jnp.zeros_like(picked))
