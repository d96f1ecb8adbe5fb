"""Tests for jaxcnn.functional.conv against plain-numpy (float64) loop references."""

from __future__ import annotations

import itertools
import random
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

from jaxcnn.functional.conv import (
    conv,
    conv_transpose,
    depthwise_conv,
    local_conv,
    separable_conv,
)

# ----------------------------------------------------------------------------- references
# Written independently of jaxcnn.functional.shapes so that padding resolution is tested too.


def _eff(f, d):
    return d * (f - 1) + 1


def ref_pads(padding, sizes, window, strides, dilations):
    """Explicit (low, high) pads per dim for every padding form the library accepts."""
    n = len(sizes)
    if padding == "VALID":
        return [(0, 0)] * n
    if padding == "CAUSAL":
        return [(_eff(window[0], dilations[0]) - 1, 0)]
    if padding == "SAME":
        pads = []
        for w, f, s, d in zip(sizes, window, strides, dilations, strict=True):
            out = -(-w // s)
            total = max((out - 1) * s + _eff(f, d) - w, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * n
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def _tup(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def _window_slices(taps, dilations, strides, outs):
    """Rows of the padded input read by kernel tap ``taps`` for every output position."""
    return tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                 for t, d, s, o in zip(taps, dilations, strides, outs, strict=True))


def ref_conv(x, k, b=None, stride=1, padding="SAME", dilation=1, groups=1):
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    n = k.ndim - 2
    window = k.shape[:n]
    strides, dilations = _tup(stride, n), _tup(dilation, n)
    pads = ref_pads(padding, x.shape[1:-1], window, strides, dilations)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    outs = [(xp.shape[1 + i] - _eff(window[i], dilations[i])) // strides[i] + 1
            for i in range(n)]
    cin_g, c_out = k.shape[-2], k.shape[-1]
    cout_g = c_out // groups
    y = np.zeros((x.shape[0], *outs, c_out))
    for taps in np.ndindex(*window):
        patch = xp[(slice(None), *_window_slices(taps, dilations, strides, outs))]
        for g in range(groups):
            y[..., g * cout_g:(g + 1) * cout_g] += (
                patch[..., g * cin_g:(g + 1) * cin_g] @ k[taps][:, g * cout_g:(g + 1) * cout_g])
    return y if b is None else y + np.asarray(b, np.float64)


def ref_conv_transpose(x, k, b=None, stride=1, padding="SAME", dilation=1, output_padding=0):
    """Scatter loop: y[s*i + d*t - p_lo] += x[i] @ k[t], cropped to the output size."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    n = k.ndim - 2
    window, sizes = k.shape[:n], x.shape[1:-1]
    strides, dilations = _tup(stride, n), _tup(dilation, n)
    ops = _tup(output_padding, n)
    effs = [_eff(f, d) for f, d in zip(window, dilations, strict=True)]
    if padding == "SAME":
        pads = ref_pads("SAME", [w * s for w, s in zip(sizes, strides, strict=True)], window,
                        strides, dilations)
        outs = [w * s + op for w, s, op in zip(sizes, strides, ops, strict=True)]
    else:
        pads = ref_pads(padding, sizes, window, strides, dilations)
        outs = [(w - 1) * s - lo - hi + e + op
                for w, s, (lo, hi), e, op in zip(sizes, strides, pads, effs, ops, strict=True)]
    full = [max((w - 1) * s + e, lo + o)
            for w, s, e, (lo, _), o in zip(sizes, strides, effs, pads, outs, strict=True)]
    buf = np.zeros((x.shape[0], *full, k.shape[-1]))
    for idx in np.ndindex(*sizes):
        for taps in np.ndindex(*window):
            pos = tuple(i * s + t * d for i, t, s, d in zip(idx, taps, strides, dilations,
                                                           strict=True))
            buf[(slice(None), *pos)] += x[(slice(None), *idx)] @ k[taps]
    y = buf[(slice(None), *(slice(lo, lo + o) for (lo, _), o in zip(pads, outs, strict=True)))]
    return y if b is None else y + np.asarray(b, np.float64)


def ref_depthwise(x, k, b=None, stride=1, padding="SAME", dilation=1):
    """Per-channel loop with a Keras-layout kernel (*window, C, M); output channel c*M + m."""
    x = np.asarray(x, np.float64)
    n = x.ndim - 2
    c = x.shape[-1]
    k = np.asarray(k, np.float64).reshape(*np.shape(k)[:n], c, -1)
    window = k.shape[:n]
    strides, dilations = _tup(stride, n), _tup(dilation, n)
    pads = ref_pads(padding, x.shape[1:-1], window, strides, dilations)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    outs = [(xp.shape[1 + i] - _eff(window[i], dilations[i])) // strides[i] + 1
            for i in range(n)]
    y = np.zeros((x.shape[0], *outs, c, k.shape[-1]))
    for taps in np.ndindex(*window):
        patch = xp[(slice(None), *_window_slices(taps, dilations, strides, outs))]
        for ch in range(c):
            y[..., ch, :] += patch[..., ch, None] * k[taps][ch]
    y = y.reshape(*y.shape[:-2], -1)
    return y if b is None else y + np.asarray(b, np.float64)


def ref_separable(x, dk, pk, b=None, **kw):
    """Keras SeparableConv: depthwise loop, then a per-pixel matmul, then the bias."""
    y = ref_depthwise(x, dk, **kw)
    pk = np.asarray(pk, np.float64)
    y = y @ pk.reshape(pk.shape[-2:])
    return y if b is None else y + np.asarray(b, np.float64)


def ref_local(x, k, b=None, window=3, stride=1, padding="VALID", dilation=1):
    """Unshared weights; each patch flattened channel-major, in (C_in, *window) order."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    n = x.ndim - 2
    window, strides, dilations = _tup(window, n), _tup(stride, n), _tup(dilation, n)
    pads = ref_pads(padding, x.shape[1:-1], window, strides, dilations)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    outs = k.shape[:n]
    y = np.zeros((x.shape[0], *outs, k.shape[-1]))
    for pos in np.ndindex(*outs):
        sl = tuple(slice(p * s, p * s + _eff(f, d), d)
                   for p, s, f, d in zip(pos, strides, window, dilations, strict=True))
        patch = xp[(slice(None), *sl)]                       # (N, *window, C)
        flat = np.moveaxis(patch, -1, 1).reshape(x.shape[0], -1)
        y[(slice(None), *pos)] = flat @ k[pos]
    return y if b is None else y + np.asarray(b, np.float64)


def assert_close(out, ref, tol=1e-5):
    out = np.asarray(out, np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * scale)


def normal(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- conv grid


def _conv_cases():
    """~100 cases covering ranks, kernel sizes 2-5, strides/dilations 1-3, every padding form,
    groups 1 / 2 / C and bias on/off: every padding form x groups x bias, with the other
    factors cycled through a shuffled product."""
    rng = random.Random(0)
    cases = []
    for n in (1, 2, 3):
        forms = ["SAME", "VALID", "int", "perdim", "pairs"] + (["CAUSAL"] if n == 1 else [])
        ksd = list(itertools.product((2, 3, 4, 5), (1, 2, 3), (1, 2, 3)))
        rng.shuffle(ksd)
        for i, (form, groups, bias) in enumerate(
                itertools.product(forms, (1, 2, "C"), (False, True))):
            k, s, d = ksd[i % len(ksd)]
            window = tuple((k - 2 + j) % 4 + 2 for j in range(n))
            strides = s if n == 1 else tuple((s - 1 + j) % 3 + 1 for j in range(n))
            dilations = d if n == 1 else tuple((d - 1 + 2 * j) % 3 + 1 for j in range(n))
            if n == 3:  # keep 3-D inputs tiny
                dilations = tuple(min(v, 2) for v in _tup(dilations, n))
            effs = [_eff(f, dd) for f, dd in zip(window, _tup(dilations, n), strict=True)]
            if form == "SAME":
                sizes = tuple(rng.randint(1, e + 2) for e in effs)
            else:
                sizes = tuple(e + rng.randint(0, 3) for e in effs)
            padding = {
                "SAME": "SAME", "VALID": "VALID", "CAUSAL": "CAUSAL",
                "int": rng.randint(0, 2),
                "perdim": tuple(rng.randint(0, 2) for _ in range(n)),
                "pairs": tuple((rng.randint(0, 3), rng.randint(0, 3)) for _ in range(n)),
            }[form]
            cid = f"{n}d-k{window}-s{strides}-d{dilations}-{form}-g{groups}-b{int(bias)}"
            cases.append(pytest.param(sizes, window, strides, dilations, padding, groups, bias,
                                      id=cid))
    return cases


@pytest.mark.parametrize("sizes,window,stride,dilation,padding,groups,bias", _conv_cases())
def test_conv_matches_numpy(sizes, window, stride, dilation, padding, groups, bias):
    rng = np.random.default_rng(0)
    c_in, c_out, g = {1: (3, 5, 1), 2: (4, 6, 2), "C": (3, 6, 3)}[groups]
    x = normal(rng, (2, *sizes, c_in))
    k = normal(rng, (*window, c_in // g, c_out))
    b = normal(rng, (c_out,)) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=g)
    out = conv(x, k, b, **kw)
    assert out.dtype == jnp.float32
    assert_close(out, ref_conv(x, k, b, **kw))


def test_conv_padding_forms_agree():
    rng = np.random.default_rng(1)
    x, k = normal(rng, (1, 7, 6, 2)), normal(rng, (3, 3, 2, 4))
    ref = conv(x, k, padding=((1, 1), (1, 1)))
    for padding in ("SAME", "same", 1, (1, 1), ((1, 1), (1, 1)), ((1, 1), 1)):
        np.testing.assert_allclose(conv(x, k, padding=padding), ref, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- conv_transpose


def _transpose_cases(vjp=False):
    """Grid for conv_transpose; ``vjp=True`` keeps the output sizes that are input sizes of
    the forward conv (output_padding < stride, and none with SAME)."""
    cases = []
    for n, window, s, d, padding, op in [
        (1, (3,), 1, 1, "SAME", 0),
        (1, (3,), 2, 1, "SAME", 0),
        (1, (2,), 3, 1, "SAME", 0),      # eff < stride
        (1, (4,), 2, 2, "SAME", 1),
        (1, (3,), 2, 1, "VALID", 0),
        (1, (2,), 3, 1, "VALID", 0),     # eff < stride: differs from Flax VALID
        (1, (5,), 3, 1, 2, 1),
        (1, (3,), 2, 3, ((0, 3),), 2),   # output_padding < dilation
        (1, (3,), 1, 2, "CAUSAL", 0),
        (2, (3, 3), 2, 1, 1, 1),
        (2, (4, 3), (2, 3), (1, 2), ((1, 2), (0, 1)), (1, 0)),
        (2, (2, 2), 2, 1, "VALID", 0),
        (2, (3, 2), (3, 1), (2, 1), "SAME", 0),
        (2, (5, 5), 1, 1, (2, 1), 0),
        (3, (3, 2, 2), 2, 1, "SAME", 0),
        (3, (2, 3, 2), (1, 2, 2), (2, 1, 1), 1, (0, 1, 0)),
    ]:
        ops = _tup(op, n)
        if vjp and (any(o >= st for o, st in zip(ops, _tup(s, n), strict=True))
                    or (padding == "SAME" and any(ops))):
            continue
        cases.append(pytest.param(n, window, s, d, padding, op,
                                  id=f"{n}d-k{window}-s{s}-d{d}-p{padding}-op{op}"))
    return cases


def _transpose_data(n, window, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    sizes = (4, 3, 2)[:n] if n > 1 else (5,)
    x = normal(rng, (2, *sizes, 3))
    k = normal(rng, (*window, 3, 4))
    b = normal(rng, (4,)) if bias else None
    return x, k, b


@pytest.mark.parametrize("n,window,stride,dilation,padding,output_padding", _transpose_cases())
def test_conv_transpose_matches_numpy_scatter(n, window, stride, dilation, padding,
                                              output_padding):
    x, k, b = _transpose_data(n, window)
    kw = dict(stride=stride, padding=padding, dilation=dilation, output_padding=output_padding)
    assert_close(conv_transpose(x, k, b, **kw), ref_conv_transpose(x, k, b, **kw))


@pytest.mark.parametrize("n,window,stride,dilation,padding,output_padding",
                         _transpose_cases(vjp=True))
def test_conv_transpose_is_vjp_of_conv(n, window, stride, dilation, padding, output_padding):
    y, k, _ = _transpose_data(n, window, bias=False)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    out = conv_transpose(y, k, output_padding=output_padding, **kw)
    x0 = jnp.zeros(out.shape[:-1] + (k.shape[-1],), jnp.float32)
    y_shape, vjp = jax.vjp(lambda x: conv(x, jnp.swapaxes(k, -1, -2), **kw), x0)
    assert y_shape.shape == y.shape
    np.testing.assert_allclose(out, vjp(y)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,window,stride,dilation", [
    ("SAME", (3, 3), 2, 1), ("SAME", (2, 4), (3, 2), (1, 2)), ("SAME", (1, 1), 2, 1),
    ("VALID", (3, 3), 2, 1), ("VALID", (4, 2), (2, 2), (1, 1)),
])
def test_conv_transpose_matches_flax_lax_with_flipped_kernel(padding, window, stride, dilation):
    """Documented relation to lax.conv_transpose / Flax ConvTranspose(transpose_kernel=False)."""
    x, k, _ = _transpose_data(2, window, bias=False)
    ours = conv_transpose(x, k, stride=stride, padding=padding, dilation=dilation)
    theirs = lax.conv_transpose(x, k[::-1, ::-1], _tup(stride, 2), padding,
                                rhs_dilation=_tup(dilation, 2),
                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_conv_transpose_output_sizes():
    x, k = jnp.ones((1, 5, 1)), jnp.ones((3, 1, 1))
    assert conv_transpose(x, k, stride=2).shape[1] == 10                   # W*S
    assert conv_transpose(x, k, stride=2, padding="VALID").shape[1] == 11  # (W-1)S + F
    assert conv_transpose(x, k, stride=2, padding=1, output_padding=1).shape[1] == 10
    assert conv_transpose(x, k, stride=3, dilation=2, padding=(2,)).shape[1] == 13


# ----------------------------------------------------------------------------- depthwise/separable


@pytest.mark.parametrize("n,mult,stride,padding,dilation,bias", [
    (1, 1, 1, "SAME", 1, True), (1, 3, 2, "CAUSAL", 2, False), (2, 1, 2, "SAME", 1, True),
    (2, 2, 1, "VALID", 2, True), (2, 2, (1, 2), ((1, 0), (2, 1)), 1, False),
    (3, 2, 2, 1, 1, True),
])
def test_depthwise_conv_matches_numpy(n, mult, stride, padding, dilation, bias):
    rng = np.random.default_rng(2)
    c = 3
    x = normal(rng, (2, *(7, 6, 5)[:n], c))
    k = normal(rng, (*(3, 2, 3)[:n], 1, c * mult))
    b = normal(rng, (c * mult,)) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    out = depthwise_conv(x, k, b, **kw)
    assert_close(out, ref_depthwise(x, k, b, **kw))
    np.testing.assert_allclose(out, conv(x, k, b, groups=c, **kw), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n,mult,stride,padding,dilation,pw_full,bias", [
    (1, 1, 1, "SAME", 1, False, True), (1, 2, 2, "VALID", 1, True, False),
    (2, 1, 1, "SAME", 1, True, True), (2, 2, 2, "SAME", 2, False, True),
    (2, 3, (2, 1), ((0, 1), (1, 1)), 1, False, False), (3, 2, 1, "VALID", 1, True, True),
])
def test_separable_conv_matches_keras_semantics(n, mult, stride, padding, dilation, pw_full,
                                               bias):
    rng = np.random.default_rng(3)
    c, c_out = 3, 5
    x = normal(rng, (2, *(8, 7, 5)[:n], c))
    dk = normal(rng, (*(3, 3, 2)[:n], 1, c * mult))
    pk = normal(rng, ((1,) * n if pw_full else ()) + (c * mult, c_out))
    b = normal(rng, (c_out,)) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    assert_close(separable_conv(x, dk, pk, b, **kw), ref_separable(x, dk, pk, b, **kw))


# ----------------------------------------------------------------------------- local_conv


def _out_sizes(sizes, window, stride, padding, dilation):
    n = len(sizes)
    window, strides, dilations = _tup(window, n), _tup(stride, n), _tup(dilation, n)
    pads = ref_pads(padding, sizes, window, strides, dilations)
    return tuple((w + lo + hi - _eff(f, d)) // s + 1
                 for w, f, s, d, (lo, hi) in zip(sizes, window, strides, dilations, pads,
                                                 strict=True))


@pytest.mark.parametrize("sizes,window,stride,padding,dilation,bias", [
    ((7,), 3, 1, "VALID", 1, "shared"),
    ((8,), 2, 2, "CAUSAL", 2, "unshared"),
    ((6, 5), (3, 2), 1, "VALID", 1, "unshared"),
    ((6, 7), 3, 2, "SAME", 1, None),
    ((5, 6), (2, 3), (1, 2), ((1, 0), (2, 1)), (2, 1), "shared"),
    ((6, 6), 2, 1, 1, 2, "unshared"),
    ((4, 5, 4), (2, 3, 2), 1, "VALID", 1, "unshared"),
    ((4, 4, 5), 2, (2, 1, 2), 1, 1, None),
])
def test_local_conv_matches_numpy(sizes, window, stride, padding, dilation, bias):
    rng = np.random.default_rng(4)
    n, c_in, c_out = len(sizes), 3, 4
    x = normal(rng, (2, *sizes, c_in))
    outs = _out_sizes(sizes, window, stride, padding, dilation)
    k = normal(rng, (*outs, int(np.prod(_tup(window, n))) * c_in, c_out))
    b = {None: None, "shared": normal(rng, (c_out,)),
         "unshared": normal(rng, (*outs, c_out))}[bias]
    kw = dict(window=window, stride=stride, padding=padding, dilation=dilation)
    assert_close(local_conv(x, k, b, **kw), ref_local(x, k, b, **kw))


@pytest.mark.parametrize("sizes,window,stride,padding", [
    ((9, 8), (3, 2), 1, "VALID"), ((9, 8), (3, 2), 2, "VALID"),
    ((7, 6), 3, 1, 1), ((7, 6), (3, 3), 2, ((1, 2), (0, 1))), ((10,), 4, 2, "SAME"),
])
def test_local_conv_with_tiled_conv_kernel_equals_conv(sizes, window, stride, padding):
    rng = np.random.default_rng(5)
    n, c_in, c_out = len(sizes), 3, 4
    x = normal(rng, (2, *sizes, c_in))
    k = normal(rng, (*_tup(window, n), c_in, c_out))
    b = normal(rng, (c_out,))
    expected = conv(x, k, b, stride=stride, padding=padding)
    flat = jnp.moveaxis(k, -2, 0).reshape(-1, c_out)       # channel-major patch order
    tiled = jnp.broadcast_to(flat, expected.shape[1:-1] + flat.shape)
    out = local_conv(x, tiled, b, window=window, stride=stride, padding=padding)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- transformations


def _setup(name, rng, dtype=np.float32):
    """(function of arrays only, its array arguments) for each public function."""
    x = normal(rng, (2, 6, 5, 4), dtype)
    if name == "conv":
        return (partial(conv, stride=2, padding=1, dilation=(1, 2), groups=2),
                (x, normal(rng, (3, 2, 2, 6), dtype), normal(rng, (6,), dtype)))
    if name == "conv_transpose":
        return (partial(conv_transpose, stride=2, padding="SAME"),
                (x, normal(rng, (3, 3, 4, 3), dtype), normal(rng, (3,), dtype)))
    if name == "depthwise_conv":
        return (partial(depthwise_conv, stride=(1, 2), padding="VALID"),
                (x, normal(rng, (3, 2, 1, 8), dtype), normal(rng, (8,), dtype)))
    if name == "separable_conv":
        return (partial(separable_conv, padding="SAME", dilation=2),
                (x, normal(rng, (2, 2, 1, 4), dtype), normal(rng, (4, 3), dtype),
                 normal(rng, (3,), dtype)))
    assert name == "local_conv"
    return (partial(local_conv, window=(2, 3), stride=(2, 1), padding=((1, 0), (0, 1))),
            (x, normal(rng, (3, 4, 6 * 4, 3), dtype), normal(rng, (3, 4, 3), dtype)))


NAMES = ["conv", "conv_transpose", "depthwise_conv", "separable_conv", "local_conv"]


@pytest.mark.parametrize("name", NAMES)
def test_grads(name):
    with jax.enable_x64(True):
        f, args = _setup(name, np.random.default_rng(6), np.float64)
        check_grads(f, args, order=2, modes=("rev",))


@pytest.mark.parametrize("name", NAMES)
def test_jit_matches_eager(name):
    f, args = _setup(name, np.random.default_rng(7))
    np.testing.assert_allclose(jax.jit(f)(*args), f(*args), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_extra_leading_axis(name):
    f, (x, *params) = _setup(name, np.random.default_rng(8))
    xs = np.stack([x, x[::-1] * 2.0, -x])
    out = jax.vmap(f, in_axes=(0,) + (None,) * len(params))(xs, *params)
    expected = np.stack([f(xi, *params) for xi in xs])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16(name):
    f, args = _setup(name, np.random.default_rng(9))
    ref = np.asarray(f(*args), np.float64)
    out = f(*(jnp.asarray(a, jnp.bfloat16) for a in args))
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=0,
                               atol=3e-2 * np.abs(ref).max())


# ----------------------------------------------------------------------------- bad input

X2 = np.ones((1, 3, 3, 4), np.float32)
K2 = np.ones((3, 3, 4, 2), np.float32)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: conv(np.ones((1, 2, 8, 8, 4), np.float32), K2), ValueError,
     r"`x` must have rank 4"),
    (lambda: conv(np.ones((3, 3, 4), np.float32), K2), ValueError, r"x\[None\]"),
    (lambda: conv(X2, np.ones((3, 4), np.float32)), ValueError, r"`kernel` must have rank"),
    (lambda: conv(X2, np.ones((3, 3, 3, 2), np.float32)), ValueError,
     r"channel mismatch: `x` has 4 .*kernel"),
    (lambda: conv(X2, np.ones((3, 3, 2, 3), np.float32), groups=2), ValueError, r"`groups`=2"),
    (lambda: conv(X2, np.ones((3, 3, 4, 2), np.float32), groups=3), ValueError, r"`groups`=3"),
    (lambda: conv(X2, K2, groups=0), ValueError, r"`groups`"),
    (lambda: conv(X2, K2, stride=0), ValueError, r"`stride`"),
    (lambda: conv(X2, K2, stride=(1, 2, 3)), ValueError, r"`stride`"),
    (lambda: conv(X2, K2, dilation=0), ValueError, r"`dilation`"),
    (lambda: conv(X2, K2, padding=-1), ValueError, r"`padding` must be non-negative"),
    (lambda: conv(X2, K2, padding=((1, -1), (0, 0))), ValueError, r"`padding`"),
    (lambda: conv(X2, K2, padding="FULL"), ValueError, r"`padding` must be one of"),
    (lambda: conv(X2, K2, padding="CAUSAL"), ValueError, r"`padding`='CAUSAL'"),
    (lambda: conv(X2, np.ones((5, 5, 4, 2), np.float32), padding="VALID"), ValueError,
     r"kernel size 5 .*larger than the padded input.*\(3, 3\)"),
    (lambda: conv(X2.astype(np.int32), K2), TypeError, r"`x` must be a floating"),
    (lambda: conv(X2, K2.astype(np.int32)), TypeError, r"`kernel` must be a floating"),
    (lambda: conv(X2, K2, np.ones((3,), np.float32)), ValueError, r"`bias` must have shape"),
    (lambda: conv_transpose(X2, np.ones((3, 3, 2, 2), np.float32)), ValueError,
     r"channel mismatch: `x`.*`kernel`"),
    (lambda: conv_transpose(X2, K2, stride=2, output_padding=2), ValueError,
     r"`output_padding`"),
    (lambda: conv_transpose(X2, K2, padding=4), ValueError, r"`padding`=4 crops"),
    (lambda: conv_transpose(X2, K2, stride=0), ValueError, r"`stride`"),
    (lambda: conv_transpose(X2.astype(np.int8), K2), TypeError, r"`x`"),
    (lambda: depthwise_conv(X2, np.ones((3, 3, 2, 8), np.float32)), ValueError,
     r"`kernel` must have shape \(\*window, 1, C \* depth_multiplier\)"),
    (lambda: depthwise_conv(X2, np.ones((3, 3, 1, 6), np.float32)), ValueError, r"`kernel`"),
    (lambda: depthwise_conv(X2, np.ones((3, 3, 1, 4), np.float32), stride=0), ValueError,
     r"`stride`"),
    (lambda: separable_conv(X2, np.ones((3, 3, 1, 4), np.float32), np.ones((8, 2), np.float32)),
     ValueError, r"`pointwise_kernel`.*expects 8 .*`depthwise_kernel`"),
    (lambda: separable_conv(X2, np.ones((3, 3, 1, 4), np.float32),
                            np.ones((3, 1, 4, 2), np.float32)), ValueError,
     r"`pointwise_kernel` must have shape"),
    (lambda: separable_conv(X2, np.ones((3, 3, 1, 5), np.float32), np.ones((5, 2), np.float32)),
     ValueError, r"`depthwise_kernel` must have shape"),
    (lambda: local_conv(X2, np.ones((2, 2, 36, 2), np.float32), window=3), ValueError,
     r"`kernel`.shape\[:-2\] must equal the output spatial shape \(1, 1\)"),
    (lambda: local_conv(X2, np.ones((1, 1, 9, 2), np.float32), window=3), ValueError,
     r"`kernel`.shape\[-2\] must equal prod\(window\) \* C_in = 9 \* 4 = 36"),
    (lambda: local_conv(X2, np.ones((1, 1, 36, 2), np.float32), window=0), ValueError,
     r"`window`"),
    (lambda: local_conv(X2, np.ones((1, 1, 36, 2), np.float32), window=3,
                        bias=np.ones((2, 2), np.float32)), ValueError, r"`bias`"),
    (lambda: local_conv(X2, np.ones((1, 1, 100, 2), np.float32), window=5), ValueError,
     r"kernel size 5 .*larger than the padded input"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_errors_raise_at_trace_time():
    with pytest.raises(ValueError, match="`stride`"):
        jax.jit(partial(conv, stride=0)).lower(X2, K2)
