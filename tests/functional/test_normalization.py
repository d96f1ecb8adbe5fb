"""Normalization functions against plain-numpy / scipy.ndimage references."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jaxcnn.functional as F

ATOL = 1e-5


def randn(shape, seed, loc=0.0, scale=1.0, dtype=np.float32):
    return (loc + scale * np.random.default_rng(seed).normal(size=shape)).astype(dtype)


# ------------------------------------------------------------------ numpy references (float64)


def np_standardize(x, axes, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def np_group_norm(x, groups, eps=1e-5):
    x = x.astype(np.float64)
    out = np.empty_like(x)
    per = x.shape[-1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            block = x[n, ..., g * per:(g + 1) * per]
            out[n, ..., g * per:(g + 1) * per] = (block - block.mean()) / np.sqrt(
                block.var() + eps)
    return out


def np_lrn(x, size, alpha, beta, k):
    x = x.astype(np.float64)
    out = np.empty_like(x)
    channels = x.shape[-1]
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1)
        out[..., c] = x[..., c] / (k + alpha * (x[..., lo:hi] ** 2).sum(-1)) ** beta
    return out


def np_gaussian(window, sigma):
    """2-D Gaussian over ``window`` (wh, ww), centre (w - 1) / 2, summing to 1."""
    w = np.empty(window)
    for i in range(window[0]):
        for j in range(window[1]):
            di, dj = i - (window[0] - 1) / 2, j - (window[1] - 1) / 2
            w[i, j] = np.exp(-(di**2 / (2 * sigma[0] ** 2) + dj**2 / (2 * sigma[1] ** 2)))
    return w / w.sum()


def np_local_sum(a, w):
    """sum_{c, p, q} w[p, q] a[n, i + p, j + q, c] with zero 'SAME' padding (low = (w-1)//2)."""
    (wh, ww), (n, h, wd, _) = w.shape, a.shape
    lo_h, lo_w = (wh - 1) // 2, (ww - 1) // 2
    padded = np.pad(a.sum(-1), ((0, 0), (lo_h, wh - 1 - lo_h), (lo_w, ww - 1 - lo_w)))
    out = np.zeros((n, h, wd))
    for p in range(wh):
        for q in range(ww):
            out += w[p, q] * padded[:, p:p + h, q:q + wd]
    return out[..., None]


def np_lcn(x, window, sigma, eps):
    x = x.astype(np.float64)
    w = np_gaussian(window, sigma) / x.shape[-1]
    v = x - np_local_sum(x, w)
    s = np.sqrt(np_local_sum(v**2, w))
    floor = np.maximum(s.mean(axis=(1, 2), keepdims=True), eps)
    return v / np.maximum(floor, s)


# ------------------------------------------------------------------ batch norm


@pytest.mark.parametrize("shape", [(6, 5), (4, 7, 3), (3, 4, 5, 4), (2, 3, 3, 2, 3)])
@pytest.mark.parametrize("momentum", [0.9, 0.7])
def test_batch_norm_train_matches_numpy(shape, momentum):
    c = shape[-1]
    x = randn(shape, 1, loc=2.0, scale=3.0)
    scale, bias = randn(c, 2), randn(c, 3)
    mean, var = randn(c, 4), 1.0 + np.abs(randn(c, 5))
    y, (new_mean, new_var) = F.batch_norm(x, scale, bias, mean, var, train=True,
                                          momentum=momentum, eps=1e-3)
    axes = tuple(range(len(shape) - 1))
    expected = np_standardize(x, axes, 1e-3) * scale + bias
    np.testing.assert_allclose(y, expected, atol=ATOL, rtol=1e-5)
    x64 = x.astype(np.float64)
    batch_mean, batch_var = x64.mean(axes), x64.var(axes)  # biased, as Flax
    np.testing.assert_allclose(new_mean, momentum * mean + (1 - momentum) * batch_mean,
                               rtol=1e-5, atol=ATOL)
    np.testing.assert_allclose(new_var, momentum * var + (1 - momentum) * batch_var,
                               rtol=1e-5, atol=ATOL)
    assert y.dtype == new_mean.dtype == new_var.dtype == jnp.float32


def test_batch_norm_eval_uses_running_stats_and_returns_them_unchanged():
    x = randn((4, 3, 3, 5), 6)
    scale, bias = randn(5, 7), randn(5, 8)
    mean, var = jnp.asarray(randn(5, 9)), jnp.asarray(0.5 + np.abs(randn(5, 10)))
    y, (m, v) = F.batch_norm(x, scale, bias, mean, var, train=False)
    assert m is mean and v is var
    expected = (x - np.asarray(mean)) / np.sqrt(np.asarray(var) + 1e-5) * scale + bias
    np.testing.assert_allclose(y, expected, atol=ATOL, rtol=1e-5)
    # Eval output does not depend on the rest of the batch.
    y0, _ = F.batch_norm(x[:1], scale, bias, mean, var, train=False)
    np.testing.assert_allclose(y0, y[:1], atol=1e-6)


def test_batch_norm_momentum_extremes_and_no_affine():
    x = randn((8, 4, 4, 3), 11, loc=-1.0, scale=2.0)
    mean, var = randn(3, 12), 1.0 + np.abs(randn(3, 13))
    y, (m1, v1) = F.batch_norm(x, None, None, mean, var, train=True, momentum=1.0)
    np.testing.assert_allclose(m1, mean, rtol=1e-6)
    np.testing.assert_allclose(v1, var, rtol=1e-6)
    _, (m0, v0) = F.batch_norm(x, None, None, mean, var, train=True, momentum=0.0)
    np.testing.assert_allclose(m0, x.astype(np.float64).mean((0, 1, 2)), atol=ATOL)
    np.testing.assert_allclose(v0, x.astype(np.float64).var((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(y, np_standardize(x, (0, 1, 2), 1e-5), atol=ATOL, rtol=1e-5)
    y1, _ = F.batch_norm(x, np.ones(3, np.float32), np.zeros(3, np.float32), mean, var,
                         train=True)
    np.testing.assert_allclose(y, y1, atol=1e-6)
    scale = randn(3, 14)
    ys, _ = F.batch_norm(x, scale, None, mean, var, train=True)
    np.testing.assert_allclose(ys, np.asarray(y) * scale, atol=ATOL, rtol=1e-5)


def test_batch_norm_bfloat16_statistics_in_float32():
    # Mean 100 with 2048 values per channel: a bfloat16 mean is off by ~0.25 (spacing 0.5 at
    # 100); float32 statistics of the same bfloat16 values are exact to ~1e-5.
    x = jnp.asarray(randn((32, 8, 8, 2), 15, loc=100.0, scale=1.0), jnp.bfloat16)
    mean, var = jnp.zeros(2, jnp.float32), jnp.ones(2, jnp.float32)
    y, (m, v) = F.batch_norm(x, None, None, mean, var, train=True, momentum=0.0)
    assert y.dtype == jnp.bfloat16 and m.dtype == v.dtype == jnp.float32
    exact = np.asarray(x, np.float64)
    np.testing.assert_allclose(m, exact.mean((0, 1, 2)), rtol=0, atol=1e-4)
    np.testing.assert_allclose(v, exact.var((0, 1, 2)), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(y, np.float32), np_standardize(exact, (0, 1, 2), 1e-5),
                               atol=3e-2)


def test_batch_norm_jit_vmap_grad():
    x = jnp.asarray(randn((4, 3, 3, 2), 16))
    scale, bias = jnp.asarray(randn(2, 17)), jnp.asarray(randn(2, 18))
    mean, var = jnp.zeros(2), jnp.ones(2)
    f = jax.jit(F.batch_norm, static_argnames="train")
    y, stats = F.batch_norm(x, scale, bias, mean, var, train=True)
    yj, stats_j = f(x, scale, bias, mean, var, train=True)
    np.testing.assert_allclose(yj, y, atol=1e-6)
    np.testing.assert_allclose(stats_j[1], stats[1], atol=1e-6)
    # vmap with a named axis: each mapped slice is one "device"; statistics pool over it.
    yv, stats_v = jax.vmap(lambda a: F.batch_norm(a, scale, bias, mean, var, train=True,
                                                  axis_name="b"), axis_name="b")(x)
    np.testing.assert_allclose(yv, y, atol=ATOL)
    np.testing.assert_allclose(stats_v[1][0], stats[1], atol=ATOL)
    with jax.enable_x64(True):
        args = [jnp.asarray(np.asarray(a), jnp.float64) for a in (x, scale, bias)]
        # Eval mode is covered by test_every_norm_gradients.
        check_grads(jax.jit(lambda a, s, b: F.batch_norm(
            a, s, b, jnp.full(2, 0.3), jnp.full(2, 1.7), train=True)[0]), args, order=2,
            modes=("rev",))


def _autodiff_batch_norm(x, scale, bias, mean, var, momentum=0.9, eps=1e-5):
    """Training-mode batch norm in plain jnp, differentiated by JAX itself (the reference for
    batch_norm's hand-written JVP)."""
    mu, sigma2 = x.mean((0, 1, 2)), x.var((0, 1, 2))
    y = (x - mu) / jnp.sqrt(sigma2 + eps) * scale + bias
    return y, (momentum * mean + (1 - momentum) * mu, momentum * var + (1 - momentum) * sigma2)


def test_batch_norm_derivatives_match_autodiff_of_the_formula():
    # Everything under jit: the same differentiation and batching rules as eager calls, but one
    # compiled program per transformation instead of one per primitive (seconds -> tenths).
    with jax.enable_x64(True):
        x = jnp.asarray(randn((5, 4, 3, 3), 40, loc=1.5, scale=2.0), jnp.float64)
        scale, bias = (jnp.asarray(randn(3, s), jnp.float64) for s in (41, 42))
        mean, var = jnp.asarray(randn(3, 43), jnp.float64), jnp.full(3, 1.3)
        ours = jax.jit(lambda *a: F.batch_norm(*a, train=True))
        reference = jax.jit(_autodiff_batch_norm)
        primals = (x, scale, bias, mean, var)
        tangents = tuple(jnp.asarray(randn(np.shape(p), 50 + i), jnp.float64)
                         for i, p in enumerate(primals))
        out, jvp = jax.jvp(ours, primals, tangents)
        ref_out, ref_jvp = jax.jvp(reference, primals, tangents)
        for a, b in zip(jax.tree.leaves((out, jvp)), jax.tree.leaves((ref_out, ref_jvp)),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        # Reverse mode, with cotangents on the output and on both running statistics.
        cot = (jnp.asarray(randn(x.shape, 60), jnp.float64),
               (jnp.asarray(randn(3, 61), jnp.float64), jnp.asarray(randn(3, 62), jnp.float64)))
        grads = jax.vjp(ours, *primals)[1](cot)
        ref_grads = jax.vjp(reference, *primals)[1](cot)
        for a, b in zip(grads, ref_grads, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        # Second order both ways (hessian = jacfwd of jacrev), against finite differences.
        check_grads(jax.jit(lambda a, s: ours(a, s, bias, mean, var)[0]), (x, scale), order=2,
                    modes=("fwd", "rev"))
        hess = jax.jit(jax.hessian(
            lambda a: jnp.sum(ours(a, scale, bias, mean, var)[0] ** 3)))(x[:2])
        ref = jax.jit(jax.hessian(lambda a: jnp.sum(
            _autodiff_batch_norm(a, scale, bias, mean, var)[0] ** 3)))(x[:2])
        np.testing.assert_allclose(hess, ref, rtol=1e-9, atol=1e-9)
    # vmap without an axis name: independent batch norms, one per mapped slice.
    xs = jnp.asarray(randn((3, 4, 2, 2, 3), 70))
    g = jax.jit(jax.vmap(jax.grad(lambda a: jnp.sum(jnp.sin(
        F.batch_norm(a, None, None, jnp.zeros(3), jnp.ones(3), train=True)[0])))))(xs)
    ref_grad = jax.jit(jax.grad(lambda a: jnp.sum(jnp.sin(
        _autodiff_batch_norm(a, 1.0, 0.0, 0.0, 1.0)[0]))))
    g_ref = jnp.stack([ref_grad(a) for a in xs])
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)


def test_batch_norm_errors():
    x = jnp.ones((4, 3, 3, 5))
    c = jnp.ones(5)
    with pytest.raises(ValueError, match=r"`x` must have rank .* shape \(5,\)"):
        F.batch_norm(jnp.ones(5), c, c, c, c, train=True)
    with pytest.raises(ValueError, match=r"`scale` must have shape \(C,\) = \(5,\).*\(4, 3, 3, 5\)"
                       r".*got shape \(4,\)"):
        F.batch_norm(x, jnp.ones(4), c, c, c, train=True)
    with pytest.raises(ValueError, match=r"`var` must have shape .* got shape \(1, 5\)"):
        F.batch_norm(x, c, c, c, jnp.ones((1, 5)), train=True)
    with pytest.raises(ValueError, match="`mean` and `var`"):
        F.batch_norm(x, c, c, None, c, train=False)
    with pytest.raises(TypeError, match="`x` must be a floating-point"):
        F.batch_norm(jnp.ones((4, 5), jnp.int32), c, c, c, c, train=True)
    with pytest.raises(TypeError, match="`train` must be a Python bool"):
        F.batch_norm(x, c, c, c, c, train=jnp.array(True))
    with pytest.raises(ValueError, match="`momentum` must lie in"):
        F.batch_norm(x, c, c, c, c, train=True, momentum=1.5)


# ------------------------------------------------------------------ batch norm across devices


def _sharded_batch(devices=8, per_device=3):
    # Device i's examples are shifted by 3 i and scaled by (1 + i): the per-device means and
    # variances differ strongly, so only correctly pooled moments give the full-batch variance.
    chunks = [randn((per_device, 4, 4, 3), 100 + i, loc=3.0 * i, scale=1.0 + i)
              for i in range(devices)]
    return np.concatenate(chunks), np.stack(chunks)


@pytest.fixture(scope="module")
def eight_devices():
    if jax.device_count() != 8:
        pytest.skip(f"needs 8 devices (conftest.py sets XLA_FLAGS="
                    f"--xla_force_host_platform_device_count=8), found {jax.device_count()}; "
                    f"was XLA_FLAGS overridden?")
    return jax.devices()


def _bn_reference(x, scale, bias, mean, var):
    y, stats = F.batch_norm(x, scale, bias, mean, var, train=True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(stats[1], 0.9 * var + 0.1 * x64.var((0, 1, 2)), rtol=1e-5)
    return y, stats


def test_naive_mean_of_device_variances_is_wrong():
    # The sync-BN tests below would catch an implementation that averaged per-device variances.
    full, per_device = _sharded_batch()
    pooled = full.astype(np.float64).var((0, 1, 2))
    naive = per_device.astype(np.float64).var((1, 2, 3, 4)).mean(0)
    assert np.all(np.abs(naive - pooled) > 0.2 * pooled), (naive, pooled)


@pytest.mark.parametrize("mapper", ["pmap", "shard_map"])
def test_batch_norm_sync_across_devices_equals_full_batch(eight_devices, mapper):
    full, per_device = _sharded_batch()
    scale, bias = jnp.asarray(randn(3, 20)), jnp.asarray(randn(3, 21))
    mean, var = jnp.asarray(randn(3, 22)), jnp.asarray(1.0 + np.abs(randn(3, 23)))
    y_ref, (m_ref, v_ref) = _bn_reference(full, scale, bias, mean, var)

    def step(a, s, b, m, v):
        return F.batch_norm(a, s, b, m, v, train=True, axis_name="data")

    if mapper == "pmap":
        y, (m, v) = jax.pmap(step, axis_name="data", in_axes=(0, None, None, None, None))(
            per_device, scale, bias, mean, var)
        y = np.asarray(y).reshape(full.shape)
        m, v = np.asarray(m), np.asarray(v)
        np.testing.assert_allclose(m, np.broadcast_to(m[:1], m.shape), rtol=0, atol=0)
        m, v = m[0], v[0]
    else:
        mesh = Mesh(np.array(eight_devices), ("data",))
        f = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P("data"), P(), P(), P(), P()),
                                  out_specs=(P("data"), (P(), P()))))
        y, (m, v) = f(full, scale, bias, mean, var)
    np.testing.assert_allclose(y, y_ref, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(m, m_ref, atol=ATOL, rtol=1e-5)
    np.testing.assert_allclose(v, v_ref, atol=ATOL, rtol=1e-5)


def test_batch_norm_pmap_axis_index_groups(eight_devices):
    full, per_device = _sharded_batch()
    mean, var = jnp.zeros(3), jnp.ones(3)
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    y, (m, _) = jax.pmap(
        lambda a: F.batch_norm(a, None, None, mean, var, train=True, axis_name="d",
                               axis_index_groups=groups), axis_name="d")(per_device)
    half = full.shape[0] // 2
    for g, rows in enumerate((slice(0, half), slice(half, None))):
        y_ref, (m_ref, _) = F.batch_norm(full[rows], None, None, mean, var, train=True)
        np.testing.assert_allclose(np.asarray(y[4 * g:4 * g + 4]).reshape(y_ref.shape), y_ref,
                                   atol=2e-5, rtol=1e-5)
        np.testing.assert_allclose(m[4 * g], m_ref, atol=ATOL, rtol=1e-5)


# ------------------------------------------------------------------ layer / group / instance


@pytest.mark.parametrize("shape", [(3, 6), (2, 5, 6), (2, 4, 3, 6), (2, 2, 3, 2, 6)])
@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_group_norm_matches_numpy(shape, groups):
    x = randn(shape, 30 + groups, loc=1.0, scale=2.0)
    c = shape[-1]
    scale, bias = randn(c, 31), randn(c, 32)
    y = F.group_norm(x, scale, bias, num_groups=groups, eps=1e-4)
    np.testing.assert_allclose(y, np_group_norm(x, groups, 1e-4) * scale + bias, atol=ATOL,
                               rtol=1e-5)
    assert y.dtype == jnp.float32


def test_group_norm_one_group_is_layer_norm_and_instance_norm_is_c_groups():
    x = randn((2, 5, 5, 4), 33, loc=-2.0)
    scale, bias = randn(4, 34), randn(4, 35)
    np.testing.assert_allclose(F.group_norm(x, scale, bias, num_groups=1),
                               F.layer_norm(x, scale, bias), atol=1e-6)
    y = F.instance_norm(x, scale, bias, eps=1e-3)
    np.testing.assert_allclose(y, F.group_norm(x, scale, bias, num_groups=4, eps=1e-3),
                               atol=1e-6)
    np.testing.assert_allclose(y, np_standardize(x, (1, 2), 1e-3) * scale + bias, atol=ATOL,
                               rtol=1e-5)


@pytest.mark.parametrize("axes", [None, -1, (1, 2), (3, 1), 0])
def test_layer_norm_matches_numpy(axes):
    x = randn((3, 4, 5, 6), 40, loc=1.0)
    scale, bias = randn(6, 41), randn(6, 42)
    y = F.layer_norm(x, scale, bias, axes=axes)
    np_axes = (1, 2, 3) if axes is None else axes
    np.testing.assert_allclose(y, np_standardize(x, np_axes, 1e-5) * scale + bias, atol=ATOL,
                               rtol=1e-5)
    np.testing.assert_allclose(F.layer_norm(x, axes=axes), np_standardize(x, np_axes, 1e-5),
                               atol=ATOL, rtol=1e-5)


def test_layer_group_instance_errors():
    x = jnp.ones((2, 4, 4, 6))
    with pytest.raises(ValueError, match=r"`num_groups`=4 must divide .* C=6"):
        F.group_norm(x, num_groups=4)
    with pytest.raises(ValueError, match="`num_groups` must be >= 1"):
        F.group_norm(x, num_groups=0)
    with pytest.raises(TypeError, match="`num_groups` must be a Python int"):
        F.group_norm(x, num_groups=2.0)
    with pytest.raises(ValueError, match=r"`bias` must have shape \(C,\) = \(6,\).*got shape "
                                         r"\(3,\)"):
        F.group_norm(x, jnp.ones(6), jnp.ones(3), num_groups=2)
    with pytest.raises(ValueError, match=r"`scale` must have shape .*\(2, 4, 4, 6\).*\(4, 4, 6\)"):
        F.layer_norm(x, jnp.ones((4, 4, 6)))
    with pytest.raises(ValueError, match="`axes`=4 is out of range"):
        F.layer_norm(x, axes=4)
    with pytest.raises(ValueError, match="`axes`=.* names an axis twice"):
        F.layer_norm(x, axes=(1, -3))
    with pytest.raises(ValueError, match="`x` must have rank 3 or 4 or 5"):
        F.instance_norm(jnp.ones((2, 6)))
    with pytest.raises(ValueError, match="`x` must have rank"):
        F.layer_norm(jnp.ones((2, 1, 1, 1, 1, 3)))
    with pytest.raises(TypeError, match="`x` must be a floating-point"):
        F.group_norm(jnp.ones((2, 4), jnp.int32), num_groups=2)
    with pytest.raises(TypeError, match="`scale` must be a floating-point"):
        F.instance_norm(x, jnp.ones(6, jnp.int32))


# ------------------------------------------------------------------ LRN


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 12])
@pytest.mark.parametrize("shape", [(3, 8), (2, 3, 4, 6)])
def test_local_response_norm_matches_numpy_loop(size, shape):
    x = randn(shape, 50 + size, scale=4.0)
    y = F.local_response_norm(x, size, alpha=1e-2, beta=0.75, k=2.0)
    np.testing.assert_allclose(y, np_lrn(x, size, 1e-2, 0.75, 2.0), atol=ATOL, rtol=1e-5)


def test_local_response_norm_paper_defaults_and_pytorch_conversion():
    x = randn((2, 5, 5, 16), 60, scale=30.0)  # large activations so the paper's alpha matters
    np.testing.assert_allclose(F.local_response_norm(x), np_lrn(x, 5, 1e-4, 0.75, 2.0),
                               atol=ATOL, rtol=1e-5)
    # Hand example, PyTorch formula b_c = a_c / (k + alpha_torch / n * sum a^2)^beta with
    # n = 3, alpha_torch = 0.3, beta = 1, k = 1 on a = [1, 2, 3]:
    # windows {0, 1}, {0, 1, 2}, {1, 2} give sums 5, 14, 13.
    torch_out = np.array([1 / (1 + 0.1 * 5), 2 / (1 + 0.1 * 14), 3 / (1 + 0.1 * 13)])
    alpha_torch, size = 0.3, 3
    y = F.local_response_norm(jnp.array([[1.0, 2.0, 3.0]]), size, alpha=alpha_torch / size,
                              beta=1.0, k=1.0)
    np.testing.assert_allclose(y[0], torch_out, rtol=1e-6)
    # Even size: one more channel below c than above (PyTorch's padding).
    y4 = F.local_response_norm(jnp.array([[1.0, 2.0, 3.0, 4.0]]), 4, alpha=0.1, beta=1.0, k=1.0)
    sums = np.array([1 + 4, 1 + 4 + 9, 1 + 4 + 9 + 16, 4 + 9 + 16])
    np.testing.assert_allclose(y4[0], np.arange(1, 5) / (1 + 0.1 * sums), rtol=1e-6)


def test_local_response_norm_errors():
    with pytest.raises(ValueError, match="`size` must be >= 1, got 0"):
        F.local_response_norm(jnp.ones((2, 4)), 0)
    with pytest.raises(TypeError, match="`size` must be a Python int"):
        F.local_response_norm(jnp.ones((2, 4)), 2.5)
    with pytest.raises(ValueError, match="`x` must have rank"):
        F.local_response_norm(jnp.ones(4))
    with pytest.raises(TypeError, match="`x` must be a floating-point"):
        F.local_response_norm(jnp.ones((2, 4), jnp.int8))


# ------------------------------------------------------------------ LCN


@pytest.mark.parametrize("window,sigma", [(3, None), (5, 1.0), ((4, 3), (1.5, 0.8)), (9, None)])
def test_local_contrast_norm_matches_numpy(window, sigma):
    x = randn((2, 10, 11, 3), 70, loc=5.0, scale=2.0)
    win = (window, window) if isinstance(window, int) else window
    sig = tuple(w / 4 for w in win) if sigma is None else (
        (sigma, sigma) if isinstance(sigma, float) else sigma)
    y = F.local_contrast_norm(x, window, sigma)
    np.testing.assert_allclose(y, np_lcn(x, win, sig, 1e-4), atol=ATOL, rtol=1e-5)


def test_local_contrast_norm_scipy_cross_check():
    # Odd window: scipy.ndimage.correlate with zero 'constant' borders is the same filter.
    x = randn((1, 12, 12, 2), 71, scale=3.0)
    w = np_gaussian((5, 5), (1.25, 1.25)) / 2
    mean = scipy.ndimage.correlate(x[0].astype(np.float64).sum(-1), w, mode="constant")
    v = x[0] - mean[..., None]
    s = np.sqrt(scipy.ndimage.correlate((v**2).sum(-1), w, mode="constant"))[..., None]
    expected = v / np.maximum(max(s.mean(), 1e-4), s)
    np.testing.assert_allclose(F.local_contrast_norm(x, 5)[0], expected, atol=ATOL, rtol=1e-5)


def test_local_contrast_norm_constant_and_random_images():
    const = np.full((2, 12, 12, 3), 7.5, np.float32)
    y = np.asarray(F.local_contrast_norm(const, 5))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[:, 2:-2, 2:-2], 0.0, atol=1e-5)  # interior; borders see zeros
    x = randn((2, 24, 24, 3), 72, loc=10.0, scale=5.0)
    y = F.local_contrast_norm(x, 5)
    # The local (Gaussian-weighted) standard deviation of the output is at most about 1.
    w = np_gaussian((5, 5), (1.25, 1.25)) / 3
    yv = np.asarray(y, np.float64)
    local_std = np.sqrt(np_local_sum((yv - np_local_sum(yv, w)) ** 2, w))[:, 2:-2, 2:-2]
    assert 0.5 < local_std.mean() <= 1.0 and local_std.max() < 1.5, local_std.max()


def test_local_contrast_norm_errors():
    x = jnp.ones((1, 8, 8, 2))
    with pytest.raises(ValueError, match="`window` must be >= 1"):
        F.local_contrast_norm(x, 0)
    with pytest.raises(ValueError, match="`window` must be an int or a sequence of 2"):
        F.local_contrast_norm(x, (3, 3, 3))
    with pytest.raises(ValueError, match="`sigma` must be a positive float"):
        F.local_contrast_norm(x, 3, sigma=0.0)
    with pytest.raises(ValueError, match="`eps` must lie in"):
        F.local_contrast_norm(x, 3, eps=0.0)
    with pytest.raises(ValueError, match=r"`x` must have rank 3 or 4 or 5.*shape \(8, 8\)"):
        F.local_contrast_norm(jnp.ones((8, 8)))
    with pytest.raises(TypeError, match="`x` must be a floating-point"):
        F.local_contrast_norm(jnp.ones((1, 8, 8, 2), jnp.uint8))


# ------------------------------------------------------- every norm: jit, vmap, grad, bf16


NORMS = {
    "layer_norm": lambda x, s, b: F.layer_norm(x, s, b),
    "group_norm": lambda x, s, b: F.group_norm(x, s, b, num_groups=2),
    "instance_norm": lambda x, s, b: F.instance_norm(x, s, b),
    "batch_norm_eval": lambda x, s, b: F.batch_norm(
        x, s, b, jnp.full(4, 0.2, x.dtype), jnp.full(4, 1.5, x.dtype), train=False)[0],
    "local_response_norm": lambda x, s, b: F.local_response_norm(x, 3, alpha=0.1),
    "local_contrast_norm": lambda x, s, b: F.local_contrast_norm(x, 3, eps=1e-2),
}


@pytest.mark.parametrize("name", sorted(NORMS))
def test_every_norm_jit_vmap_bfloat16(name):
    f = NORMS[name]
    x = jnp.asarray(randn((2, 5, 5, 4), 80, loc=1.0, scale=2.0))
    s, b = jnp.asarray(randn(4, 81)), jnp.asarray(randn(4, 82))
    y = f(x, s, b)
    np.testing.assert_allclose(jax.jit(f)(x, s, b), y, atol=1e-5, rtol=1e-5)
    # vmap over an extra leading axis equals the per-slice results.
    xs = jnp.stack([x, 2.0 * x + 1.0])
    ys = jax.vmap(f, in_axes=(0, None, None))(xs, s, b)
    np.testing.assert_allclose(ys[1], f(xs[1], s, b), atol=1e-5, rtol=1e-5)
    yb = f(x.astype(jnp.bfloat16), s, b)
    assert yb.dtype == jnp.bfloat16 and yb.shape == x.shape
    np.testing.assert_allclose(np.asarray(yb, np.float32), y, atol=0.05, rtol=0.02)


@pytest.mark.parametrize("name", sorted(NORMS))
def test_every_norm_gradients(name):
    f = NORMS[name]
    with jax.enable_x64(True):
        x = jnp.asarray(randn((2, 3, 3, 4), 90, loc=0.5, scale=1.5, dtype=np.float64))
        s, b = jnp.asarray(randn(4, 91, dtype=np.float64)), jnp.asarray(randn(4, 92,
                                                                               dtype=np.float64))
        assert f(x, s, b).dtype == jnp.float64
        # Under jit: faster, and jit-of-grad is how training uses these. LCN's second order
        # (convolution transposes of transposes) costs seconds to compile: first order only.
        order = 1 if name == "local_contrast_norm" else 2
        check_grads(jax.jit(f), (x, s, b), order=order, modes=("rev",))


@pytest.mark.optimized_xla  # the CSE that merges the sums is one of XLA's optimisations
def test_batch_norm_train_gradient_sums_each_activation_twice_forward_and_backward():
    # A training-mode BatchNorm + ReLU and its gradient need four sums over the activations:
    # mu and sigma2 forward, sum(g) and sum(g * (x - mu)) backward, the latter two shared with
    # the gradients of bias and scale. A formulation that applies scale to g before summing
    # (so that XLA sees different sums for the input and the parameter gradients) compiles to
    # six: 1.5x the memory traffic of the layer's reductions (ResNet-18 train step, 2 cores:
    # 40 more reductions, 133 -> 84 ms of them per step).
    x = jnp.asarray(randn((8, 4, 4, 16), 80))
    scale, bias = jnp.asarray(randn(16, 81)), jnp.asarray(randn(16, 82))

    def loss(x, scale, bias):
        y, _ = F.batch_norm(x, scale, bias, jnp.zeros(16), jnp.ones(16), train=True)
        return jnp.sum(jax.nn.relu(y) * x)

    hlo = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(x, scale, bias).compile().as_text()
    sums_over_activations = re.findall(r"= f32\[16\]\{0\} reduce\(.*dimensions=\{0,1,2\}", hlo)
    assert len(sums_over_activations) == 4, hlo


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_batch_norm_float32_gradients_are_accurate_far_from_zero_mean(offset):
    # float32 gradients against float64 ones of the same function, with |mean| / std = offset.
    # Any form pays eps * |mean| / std for the rounding of the float32 mean; measured: 1e-7
    # at offset 0, 2.6e-6 (input) and 4.8e-7 (scale) at 100, 2.1e-6 and 1.2e-7 with x - mu
    # written out. A one-pass E[x^2] - E[x]^2 variance or a sum(g * x) taken over
    # uncentered activations in a lower precision would be off by orders of magnitude more.
    x = randn((64, 8, 8, 8), 90, loc=offset, scale=1.0) * 3.0
    g = randn(x.shape, 91)
    g = g + 0.3 * (x - x.mean((0, 1, 2))) / x.std((0, 1, 2))  # correlated with x, as in training
    scale, bias = randn(8, 92), randn(8, 93)

    def grads(x, scale, bias, g):
        def loss(x, scale, bias):
            y, _ = F.batch_norm(x, scale, bias, jnp.zeros(8, x.dtype), jnp.ones(8, x.dtype),
                                train=True)
            return jnp.sum(y * g)
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(x, scale, bias)

    ours = grads(*(jnp.asarray(a, jnp.float32) for a in (x, scale, bias, g)))
    with jax.enable_x64(True):
        exact = grads(*(jnp.asarray(a, jnp.float64) for a in (x, scale, bias, g)))
        for name, a, b in zip(("x", "scale", "bias"), ours, exact, strict=True):
            error = np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)
            assert error < (1e-6 if offset == 0 else 1e-5), (name, error)


@pytest.mark.optimized_xla  # buffer assignment after XLA's fusion and CSE
def test_batch_norm_relu_stack_keeps_two_activations_per_layer_for_the_backward_pass():
    # conv -> BatchNorm -> ReLU, four times. The backward pass needs, per layer, the
    # BatchNorm input x (its own gradient and the ReLU's mask) and the ReLU output (the next
    # kernel's gradient). Writing x - mu into the JVP lets XLA's CSE merge it with the
    # forward pass's x - mu and keep that array too: 3 activations per layer. ResNet-18/
    # CIFAR, batch 128: 952 -> 656 MiB of temporaries (page faults per step at glibc's
    # default malloc: 244k -> 168k).
    n, hw, c, layers = 16, 16, 16, 4
    x = jnp.asarray(randn((n, hw, hw, c), 94))
    kernels = [jnp.asarray(randn((3, 3, c, c), 95 + i, scale=0.2)) for i in range(layers)]

    def loss(kernels, x):
        for k in kernels:
            y = F.conv(x, k, padding="SAME")
            y, _ = F.batch_norm(y, None, None, jnp.zeros(c), jnp.ones(c), train=True)
            x = jax.nn.relu(y)
        return jnp.sum(x ** 2)

    compiled = jax.jit(jax.grad(loss)).lower(kernels, x).compile()
    activation = x.size * x.dtype.itemsize
    temps = compiled.memory_analysis().temp_size_in_bytes / activation
    assert 2 * layers <= temps < 2.5 * layers, temps  # 8.0; 12.0 with x - mu written out
