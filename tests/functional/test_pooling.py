"""Tests for jaxcnn.functional.pooling against plain numpy loop references.

The references re-derive PyTorch's semantics from its C++ loops (``avg_pool2d_out_frame``:
window end clipped to ``input + pad``, ``ceil_mode`` dropping a last window that starts in the
high padding) and the adaptive bins ``[floor(i W / O), ceil((i + 1) W / O))``; a few outputs
are checked against values worked out by hand from those loops (torch is not a dependency).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxcnn.functional import pooling as P

# ----------------------------------------------------------------------------- references


def ref_pads(padding, spatial, window, stride, dilation):
    n = len(spatial)
    if padding == "VALID":
        return [(0, 0)] * n
    if padding == "SAME":
        pads = []
        for size, k, s, d in zip(spatial, window, stride, dilation, strict=True):
            total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * n
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def ref_out(size, k, s, lo, hi, d, ceil_mode):
    span = size + lo + hi - (d * (k - 1) + 1)
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + lo:  # PyTorch: last window must start in input
        out -= 1
    return out


def ref_pool(x, kind, window, stride=None, padding="VALID", dilation=1, ceil_mode=False,
             count_include_pad=True, p=None):
    """Plain loops over output positions; x is (N, *spatial, C) numpy float64."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    n = len(spatial)
    window = (window,) * n if isinstance(window, int) else tuple(window)
    stride = window if stride is None else ((stride,) * n if isinstance(stride, int) else stride)
    dilation = (dilation,) * n if isinstance(dilation, int) else tuple(dilation)
    pads = ref_pads(padding, spatial, window, stride, dilation)
    outs = [ref_out(sz, k, s, lo, hi, d, ceil_mode)
            for sz, k, s, (lo, hi), d in zip(spatial, window, stride, pads, dilation, strict=True)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for pos in np.ndindex(*outs):
        taps, area = [], 1
        for o, sz, k, s, (lo, hi), d in zip(pos, spatial, window, stride, pads, dilation,
                                            strict=True):
            start = o * s - lo
            taps.append([start + j * d for j in range(k) if 0 <= start + j * d < sz])
            area *= min(start + k, sz + hi) - start
        sub = x[np.ix_(range(x.shape[0]), *taps, range(x.shape[-1]))]
        axes = tuple(range(1, n + 1))
        if kind == "max":
            val = sub.max(axis=axes)
        elif kind == "avg":
            val = sub.sum(axis=axes) / (area if count_include_pad else sub[0, ..., 0].size)
        else:
            val = (sub ** p).sum(axis=axes) ** (1.0 / p)
        y[(slice(None), *pos, slice(None))] = val
    return y


def ref_bins(size, out):
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def ref_adaptive(x, out_sizes, kind):
    x = np.asarray(x, np.float64)
    y = np.zeros((x.shape[0], *out_sizes, x.shape[-1]))
    bins = [ref_bins(sz, o) for sz, o in zip(x.shape[1:-1], out_sizes, strict=True)]
    for pos in np.ndindex(*out_sizes):
        sl = tuple(slice(*bins[d][i]) for d, i in enumerate(pos))
        sub = x[(slice(None), *sl, slice(None))]
        axes = tuple(range(1, x.ndim - 1))
        y[(slice(None), *pos, slice(None))] = (sub.max(axis=axes) if kind == "max"
                                               else sub.mean(axis=axes))
    return y


def ref_stochastic_eval(x, window, stride):
    x = np.asarray(x, np.float64)
    n = x.ndim - 2
    window = (window,) * n if isinstance(window, int) else window
    stride = window if stride is None else ((stride,) * n if isinstance(stride, int) else stride)
    outs = [(sz - k) // s + 1 for sz, k, s in zip(x.shape[1:-1], window, stride, strict=True)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for b, c in np.ndindex(x.shape[0], x.shape[-1]):
        for pos in np.ndindex(*outs):
            sl = tuple(slice(o * s, o * s + k) for o, s, k in zip(pos, stride, window,
                                                                  strict=True))
            a = x[(b, *sl, c)].ravel()
            y[(b, *pos, c)] = (a * a).sum() / a.sum() if a.sum() > 0 else 0.0
    return y


def rand(shape, seed=0, low=None):
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, 1.0, size=shape).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


# ------------------------------------------------------------- max / avg / lp vs references

SPATIAL = {1: (9,), 2: (7, 8), 3: (5, 6, 4)}
STRIDES = (None, 1, 2, 3)
PADDINGS = ("VALID", "SAME", "half", "pairs")


def _padding(form, window):
    n = len(window)
    if form == "half":  # PyTorch's largest allowed symmetric padding, one int per dim
        return [k // 2 for k in window] if n > 1 else window[0] // 2
    if form == "pairs":
        return [(k // 2, (k - 1) // 2) for k in window]
    return form


def _cases():
    for n in (1, 2, 3):
        # 1-D gets the full grid; 2-D/3-D a subset (every case costs a compilation)
        windows = (1, 2, 3, 4) if n < 3 else (2, 3)
        strides = {1: STRIDES, 2: (None, 1, 3), 3: (None, 2)}[n]
        for w, s, pad, ceil in itertools.product(windows, strides, PADDINGS, (False, True)):
            # vary the window across dims so each dim is checked with its own parameters
            window = tuple(max(1, w - d % 2) for d in range(n))
            stride = s if s is None or n == 1 else tuple(max(1, s - d % 2) for d in range(n))
            yield n, window, stride, _padding(pad, window), ceil


CASES = list(_cases())


@pytest.mark.parametrize("n,window,stride,padding,ceil_mode", CASES)
def test_max_avg_lp_match_reference(n, window, stride, padding, ceil_mode):
    x = rand((2, *SPATIAL[n], 3), seed=n)
    kw = dict(window=window, stride=stride, padding=padding)
    np.testing.assert_allclose(P.max_pool(x, ceil_mode=ceil_mode, **kw),
                               ref_pool(x, "max", ceil_mode=ceil_mode, **kw), atol=1e-5)
    for cip in (True, False):
        np.testing.assert_allclose(
            P.avg_pool(x, count_include_pad=cip, ceil_mode=ceil_mode, **kw),
            ref_pool(x, "avg", count_include_pad=cip, ceil_mode=ceil_mode, **kw),
            atol=1e-5, rtol=1e-5)
    if not ceil_mode:
        xp = np.abs(x) + 0.1
        for p in (3.5,):  # p=1, 2 in test_lp_pool_special_cases
            np.testing.assert_allclose(P.lp_pool(xp, p, **kw), ref_pool(xp, "lp", p=p, **kw),
                                       atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dilation,stride,padding,ceil_mode,grads", [
    (2, 1, "VALID", False, True), (2, 2, 1, True, False), ((1, 3), (2, 1), "SAME", False, False),
    ((2, 2), 3, [(1, 0), (2, 1)], True, True),
])
def test_max_pool_dilation_matches_reference(dilation, stride, padding, ceil_mode, grads):
    x = rand((1, 9, 8, 2), seed=3)
    kw = dict(window=(2, 3), stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode)
    np.testing.assert_allclose(P.max_pool(x, **kw), ref_pool(x, "max", **kw), atol=1e-6)
    if grads:
        with jax.enable_x64(True):
            check_grads(lambda v: P.max_pool(v, **kw), (x.astype(np.float64),), order=1,
                        modes=("rev",))


# Worked out by hand from PyTorch's avg_pool2d_out_frame / max_pool loops: what
# torch.nn.functional.{avg,max}_pool{1,2}d returns for these inputs.
def test_avg_pool_hand_computed_pytorch_values():
    x1 = np.arange(1.0, 6.0, dtype=np.float32).reshape(1, 5, 1)   # [1, 2, 3, 4, 5]
    # avg_pool1d(x, 2, ceil_mode=True): last window [5] clipped to the input, divisor 1
    np.testing.assert_allclose(P.avg_pool(x1, 2, ceil_mode=True)[0, :, 0], [1.5, 3.5, 5.0])
    np.testing.assert_allclose(P.max_pool(x1, 2, ceil_mode=True)[0, :, 0], [2.0, 4.0, 5.0])
    np.testing.assert_allclose(P.avg_pool(x1, 2)[0, :, 0], [1.5, 3.5])
    x2 = np.arange(1.0, 7.0, dtype=np.float32).reshape(1, 6, 1)   # [1, ..., 6]
    # avg_pool1d(x, 3, 2, padding=1, ceil_mode=True): windows [-1,2) [1,4) [3,6) [5,8)->[5,7)
    np.testing.assert_allclose(
        P.avg_pool(x2, 3, 2, padding=1, ceil_mode=True)[0, :, 0], [1.0, 3.0, 5.0, 3.0])
    np.testing.assert_allclose(
        P.avg_pool(x2, 3, 2, padding=1, ceil_mode=True, count_include_pad=False)[0, :, 0],
        [1.5, 3.0, 5.0, 6.0])
    x3 = np.arange(1.0, 10.0, dtype=np.float32).reshape(1, 3, 3, 1)
    np.testing.assert_allclose(P.avg_pool(x3, 2, ceil_mode=True)[0, ..., 0],
                               [[3.0, 4.5], [7.5, 9.0]])
    ones = np.ones((1, 4, 4, 1), np.float32)
    # avg_pool2d(ones, 3, 2, padding=1, ceil_mode=True): divisors 9, 9, 6 per dim pair
    np.testing.assert_allclose(
        P.avg_pool(ones, 3, 2, padding=1, ceil_mode=True)[0, ..., 0],
        [[4 / 9, 6 / 9, 2 / 6], [6 / 9, 9 / 9, 3 / 6], [2 / 6, 3 / 6, 1 / 4]], rtol=1e-6)
    np.testing.assert_allclose(
        P.avg_pool(ones, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
        np.ones((1, 3, 3, 1)))


def test_lp_pool_special_cases():
    x = rand((2, 6, 6, 3), seed=4, low=0.1)
    np.testing.assert_allclose(P.lp_pool(x, 1, 2), 4 * P.avg_pool(x, 2), rtol=1e-5)
    np.testing.assert_allclose(P.lp_pool(x, 60, 2), P.max_pool(x, 2), rtol=0.03)
    x = -rand((1, 4, 2), seed=5, low=0.1)       # even p handles negative inputs
    np.testing.assert_allclose(P.lp_pool(x, 2, 2), ref_pool(x, "lp", 2, p=2), rtol=1e-5)


# ------------------------------------------------------------------------------ gradients


def test_max_pool_gradient_routes_to_argmax():
    x = rand((2, 6, 4, 3), seed=6)
    g = rand((2, 3, 2, 3), seed=7)
    grad = np.asarray(jax.grad(lambda v: jnp.sum(P.max_pool(v, 2) * g))(x))
    expected = np.zeros_like(x)
    for b, i, j, c in np.ndindex(2, 3, 2, 3):
        win = x[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c]
        di, dj = np.unravel_index(np.argmax(win), win.shape)
        expected[b, 2 * i + di, 2 * j + dj, c] = g[b, i, j, c]
    np.testing.assert_array_equal(grad, expected)
    assert np.count_nonzero(grad) == g.size


def test_avg_pool_gradient_is_upsampled_cotangent():
    x = rand((2, 6, 9, 3), seed=8)
    g = rand((2, 3, 3, 3), seed=9)
    grad = jax.grad(lambda v: jnp.sum(P.avg_pool(v, (2, 3)) * g))(x)
    np.testing.assert_allclose(grad, np.repeat(np.repeat(g, 2, axis=1), 3, axis=2) / 6,
                               rtol=1e-6)


@pytest.mark.parametrize("name,fn", [
    ("max_ceil", lambda v: P.max_pool(v, 3, 2, padding=1, ceil_mode=True)),
    ("avg", lambda v: P.avg_pool(v, 3, 2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_incl", lambda v: P.avg_pool(v, 2, 1, padding="SAME")),
    ("lp", lambda v: P.lp_pool(v, 3, 2, 1)),
    ("lp_frac", lambda v: P.lp_pool(v, 1.5, (2, 3))),
    ("adaptive_avg", lambda v: P.adaptive_avg_pool(v, (3, 7))),
    ("adaptive_max", lambda v: P.adaptive_max_pool(v, (3, 2))),
    ("global", lambda v: P.global_avg_pool(v) + P.global_max_pool(v)),
    ("spp", lambda v: P.spatial_pyramid_pool(v, (1, 2), kind="avg")),
    ("stochastic_eval", lambda v: P.stochastic_pool(v, None, 2, 1, train=False)),
])
def test_check_grads(name, fn):
    x = rand((1, 5, 6, 2), seed=10, low=0.2).astype(np.float64)  # positive: lp/stochastic
    with jax.enable_x64(True):
        order = 2 if name in ("avg", "avg_incl", "lp", "lp_frac", "adaptive_avg") else 1
        check_grads(fn, (jnp.asarray(x),), order=order, modes=("rev",))


def test_lp_pool_gradient_wrt_learnable_p():
    x = rand((1, 4, 4, 2), seed=11, low=0.2).astype(np.float64)
    with jax.enable_x64(True):
        check_grads(lambda p: P.lp_pool(x, p, 2), (jnp.asarray(2.5),), order=1, modes=("rev",))


# ------------------------------------------------------------------- global / adaptive / SPP


@pytest.mark.parametrize("shape", [(2, 7, 3), (2, 5, 6, 3), (1, 3, 4, 2, 3)])
def test_global_pools(shape):
    x = rand(shape, seed=12)
    axes = tuple(range(1, len(shape) - 1))
    np.testing.assert_allclose(P.global_avg_pool(x), x.mean(axis=axes), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(P.global_max_pool(x), x.max(axis=axes))
    assert P.global_avg_pool(x, keepdims=True).shape == (shape[0], *[1] * len(axes), shape[-1])
    assert P.global_max_pool(x, keepdims=True).shape == (shape[0], *[1] * len(axes), shape[-1])


@pytest.mark.parametrize("in_sizes,out_sizes", [
    ((7,), (3,)), ((5,), (7,)), ((8,), (4,)), ((7, 5), (3, 7)), ((6, 6), (6, 4)),
    ((9, 10), (1, 1)), ((4, 5, 7), (2, 3, 3)), ((3, 3), (5, 5)),
])
def test_adaptive_pools_match_reference(in_sizes, out_sizes):
    x = rand((2, *in_sizes, 3), seed=13)
    np.testing.assert_allclose(P.adaptive_avg_pool(x, out_sizes),
                               ref_adaptive(x, out_sizes, "avg"), atol=1e-5)
    adaptive_max = jax.jit(P.adaptive_max_pool, static_argnames="output_size")
    np.testing.assert_array_equal(adaptive_max(x, out_sizes),
                                  ref_adaptive(x, out_sizes, "max").astype(np.float32))


def test_adaptive_int_and_none_output_size():
    x = rand((1, 7, 5, 2), seed=14)
    np.testing.assert_allclose(P.adaptive_avg_pool(x, 3), ref_adaptive(x, (3, 3), "avg"),
                               atol=1e-5)
    np.testing.assert_array_equal(P.adaptive_max_pool(x, (None, 2)),
                                  ref_adaptive(x, (7, 2), "max").astype(np.float32))
    # divisible sizes are ordinary non-overlapping pooling
    x = rand((1, 8, 6, 2), seed=15)
    np.testing.assert_allclose(P.adaptive_avg_pool(x, (4, 3)), P.avg_pool(x, 2), atol=1e-6)
    np.testing.assert_array_equal(P.adaptive_max_pool(x, (4, 3)), P.max_pool(x, 2))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_spatial_pyramid_pool(kind):
    levels = (1, 2, 4)
    spp = jax.jit(P.spatial_pyramid_pool, static_argnames=("levels", "kind"))
    lengths = set()
    for hw in ((13, 13), (32, 32), (17, 9)):
        x = rand((2, *hw, 3), seed=sum(hw))
        y = spp(x, levels, kind)
        lengths.add(y.shape)
        glob = P.global_max_pool(x) if kind == "max" else P.global_avg_pool(x)
        np.testing.assert_allclose(y[:, :3], glob, atol=1e-6)
        # documented order: per level, (l, l, C) flattened row-major
        offset = 3
        for lvl in levels[1:]:
            ref = ref_adaptive(x, (lvl, lvl), kind)
            for i, j, c in np.ndindex(lvl, lvl, 3):
                np.testing.assert_allclose(y[:, offset + (i * lvl + j) * 3 + c],
                                           ref[:, i, j, c], atol=1e-5)
            offset += lvl * lvl * 3
    assert lengths == {(2, 3 * 21)}


# ------------------------------------------------------------------------ stochastic pooling


@pytest.mark.parametrize("shape,window,stride,train", [
    ((2, 6, 3), 2, None, False), ((2, 6, 8, 3), 2, None, True), ((1, 7, 7, 2), 3, 2, True),
    ((1, 4, 6, 4, 2), 2, 1, False),
])
def test_stochastic_pool_eval_and_samples(shape, window, stride, train):
    x = np.maximum(rand(shape, seed=16), 0)      # post-ReLU: zeros and all-zero windows occur
    np.testing.assert_allclose(P.stochastic_pool(x, None, window, stride, train=False),
                               ref_stochastic_eval(x, window, stride), atol=1e-6)
    if not train:
        return
    y = np.asarray(P.stochastic_pool(x, jax.random.key(0), window, stride))
    n = x.ndim - 2
    win = (window,) * n
    st = win if stride is None else (stride,) * n
    for b, c in np.ndindex(x.shape[0], x.shape[-1]):
        for pos in np.ndindex(*y.shape[1:-1]):
            sl = tuple(slice(o * s, o * s + k) for o, s, k in zip(pos, st, win, strict=True))
            vals = x[(b, *sl, c)]
            out = y[(b, *pos, c)]
            assert (out == 0) if vals.max() <= 0 else (out in vals[vals > 0])


def test_stochastic_pool_sampling_frequencies():
    x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    keys = jax.random.split(jax.random.key(1), 4000)
    draws = jax.vmap(lambda k: P.stochastic_pool(x, k, 2)[0, 0, 0, 0])(keys)
    freq = np.array([(np.asarray(draws) == v).mean() for v in (1.0, 2.0, 3.0, 4.0)])
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    assert freq.sum() == 1.0


def test_stochastic_pool_deterministic_zero_and_negative_windows():
    x = np.maximum(rand((2, 6, 8, 3), seed=17), 0)
    key = jax.random.key(3)
    np.testing.assert_array_equal(P.stochastic_pool(x, key), P.stochastic_pool(x, key))
    assert not np.array_equal(P.stochastic_pool(x, key),
                              P.stochastic_pool(x, jax.random.key(4)))
    z = np.array([0.0, 0.0, -1.0, -2.0, 0.0, 5.0], np.float32).reshape(1, 6, 1)
    for train in (True, False):
        np.testing.assert_array_equal(P.stochastic_pool(z, key, 2, train=train)[0, :, 0],
                                      [0.0, 0.0, 5.0])


def test_stochastic_pool_train_gradient_goes_to_sampled_element():
    x = rand((2, 6, 8, 3), seed=18, low=0.1)
    key = jax.random.key(5)
    y = P.stochastic_pool(x, key)
    grad = np.asarray(jax.grad(lambda v: P.stochastic_pool(v, key).sum())(x))
    assert np.count_nonzero(grad) == y.size
    np.testing.assert_array_equal(np.sort(x[grad == 1]), np.sort(np.asarray(y).ravel()))


# ------------------------------------------------------------------ jit / vmap / dtype


FUNCS = {
    "max_pool": lambda v: P.max_pool(v, 3, 2, padding="SAME", ceil_mode=True),
    "max_pool_dilated": lambda v: P.max_pool(v, 2, dilation=2),
    "avg_pool": lambda v: P.avg_pool(v, 2, 1, padding=1, count_include_pad=False),
    "lp_pool": lambda v: P.lp_pool(v, 2, 2),
    "global_avg_pool": P.global_avg_pool,
    "global_max_pool": P.global_max_pool,
    "adaptive_avg_pool": lambda v: P.adaptive_avg_pool(v, (3, 5)),
    "adaptive_max_pool": lambda v: P.adaptive_max_pool(v, (3, 5)),
    "spatial_pyramid_pool": P.spatial_pyramid_pool,
    "stochastic_pool": lambda v: P.stochastic_pool(v, jax.random.key(0)),
    "stochastic_pool_eval": lambda v: P.stochastic_pool(v, None, train=False),
}


@pytest.mark.parametrize("name", FUNCS)
def test_jit_vmap_and_bfloat16(name):
    fn = FUNCS[name]
    x = rand((3, 2, 6, 8, 3), seed=19, low=0.0)   # same shape as the stochastic tests: shared
    eager = np.stack([np.asarray(fn(xi)) for xi in x])   # compilation caches
    assert eager.dtype == np.float32
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(x), eager, rtol=1e-6, atol=1e-6)
    xb = jnp.asarray(x[0], jnp.bfloat16)
    yb = fn(xb)
    assert yb.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(yb, np.float32), fn(xb.astype(jnp.float32)),
                               rtol=2e-2, atol=2e-2)


def test_stochastic_pool_vmap_over_keys_and_jit():
    x = rand((2, 6, 8, 3), seed=20, low=0.0)
    keys = jax.random.split(jax.random.key(6), 3)
    f = jax.jit(P.stochastic_pool, static_argnames=("window", "stride", "train"))
    ys = jax.vmap(lambda k: f(x, k, window=2))(keys)
    for k, y in zip(keys, ys, strict=True):
        np.testing.assert_array_equal(y, P.stochastic_pool(x, k))


# ---------------------------------------------------------------------------- bad inputs

X = np.ones((1, 4, 4, 2), np.float32)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: P.max_pool(X, 0), ValueError, "window"),
    (lambda: P.avg_pool(X, 2, stride=0), ValueError, "stride"),
    (lambda: P.lp_pool(X, 2, (2, 0)), ValueError, "window"),
    (lambda: P.max_pool(X, 2, dilation=0), ValueError, "dilation"),
    (lambda: P.max_pool(X, (2, 2, 2)), ValueError, "window"),
    (lambda: P.max_pool(np.ones((4, 4), np.float32)), ValueError, r"`x`.*\(4, 4\)"),
    (lambda: P.global_avg_pool(np.ones((4, 4), np.float32)), ValueError, "`x`"),
    (lambda: P.avg_pool(X, 5), ValueError, r"window.*\(4, 4\)"),
    (lambda: P.max_pool(X, 3, dilation=2), ValueError, "window"),
    (lambda: P.stochastic_pool(X, None, 5, train=False), ValueError, "window"),
    (lambda: P.max_pool(X, 2, padding="FULL"), ValueError, "padding"),
    (lambda: P.avg_pool(X, 2, padding=2), ValueError, "padding"),
    (lambda: P.max_pool(X, 2, padding=[(0, 0), (0, 3)]), ValueError, "padding"),
    (lambda: P.max_pool(X.astype(np.int32)), TypeError, "`x`"),
    (lambda: P.lp_pool(X, 0), ValueError, "`p`"),
    (lambda: P.lp_pool(X, float("inf")), ValueError, "`p`"),
    (lambda: P.adaptive_avg_pool(X, 0), ValueError, "output_size"),
    (lambda: P.adaptive_max_pool(X, (2, 2, 2)), ValueError, "output_size"),
    (lambda: P.spatial_pyramid_pool(X, kind="mean"), ValueError, "kind"),
    (lambda: P.spatial_pyramid_pool(X, levels=(1, 0)), ValueError, "levels"),
    (lambda: P.spatial_pyramid_pool(X, levels=()), ValueError, "levels"),
    (lambda: P.spatial_pyramid_pool(np.ones((1, 4, 2), np.float32)), ValueError, "`x`"),
    (lambda: P.stochastic_pool(X, None), ValueError, "key"),
])
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_errors_raise_at_trace_time_under_jit():
    with pytest.raises(ValueError, match="window"):
        jax.jit(lambda v: P.max_pool(v, 5))(X)
