"""Conformance matrix: jaxcnn's default convolution behaves like ``lax`` under every transformation.

Each row is (transformation x convolution configuration). A row runs the same function twice,
once with ``conv_backend("auto")`` (oneDNN on CPU) and once with ``conv_backend("xla")``
(``lax.conv_general_dilated``), and asserts that the two give

* the same values, to float32 tolerance;
* the same output types: shape, dtype, ``vma`` (inside ``shard_map``) and sharding;
* the same errors, where ``lax`` raises;

and that the ``"auto"`` run really went through the oneDNN primitive (else the row would
compare XLA with itself). Shapes are small so that the whole matrix stays within the suite's
time budget.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.ad_checkpoint import saved_residuals  # print_saved_residuals' data
from jax.ad_checkpoint import checkpoint_name
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxcnn import functional as F
from jaxcnn._native import onednn

# (x shape, kernel shape, stride, padding, dilation, groups)
CONFIGS = {
    "plain": ((2, 6, 5, 3), (3, 3, 3, 4), 1, ((1, 1), (1, 1)), 1, 1),
    "stride+asym": ((2, 7, 6, 3), (3, 2, 3, 4), (2, 1), ((0, 2), (1, 0)), 1, 1),
    "dilated": ((2, 7, 7, 2), (2, 3, 2, 3), 1, ((1, 0), (2, 1)), (2, 1), 1),
    "grouped": ((2, 5, 6, 4), (3, 3, 2, 6), (1, 2), ((1, 1), (0, 1)), 1, 2),
    "depthwise": ((2, 6, 6, 3), (3, 3, 1, 6), 2, ((1, 1), (1, 1)), 1, 3),
    # a projection shortcut: oneDNN runs it at stride 1 on the rows and columns it reads
    "1x1 strided": ((2, 7, 6, 4), (1, 1, 4, 6), (2, 3), ((0, 1), (0, 0)), 1, 1),
}
BATCH8 = {name: ((8,) + cfg[0][1:],) + cfg[1:] for name, cfg in CONFIGS.items()}
NDEV = jax.device_count()
needs_8 = pytest.mark.skipif(NDEV < 8, reason="needs 8 devices: conftest.py forces 8 CPU ones")


def randn(shape, seed):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def make(cfg, seed=0):
    """(conv of x and k with cfg's parameters, x, k) with fresh random operands."""
    x_shape, k_shape, stride, padding, dilation, groups = cfg
    fn = functools.partial(F.conv, stride=stride, padding=padding, dilation=dilation,
                           groups=groups)
    return fn, randn(x_shape, seed), randn(k_shape, seed + 1)


def types(tree):
    return jax.tree.map(lambda a: (a.shape, a.dtype, a.sharding, a.mat), jax.tree.map(
        jax.typeof, tree))


def assert_close(actual, desired):
    for a, d in zip(jax.tree.leaves(actual), jax.tree.leaves(desired), strict=True):
        d = np.asarray(d)
        np.testing.assert_allclose(np.asarray(a), d, rtol=1e-4,
                                   atol=1e-4 * max(1.0, float(np.abs(d).max())))


def both(fn, *args, jaxpr=True):
    """Run ``fn(*args)`` under each backend; return {backend: (outputs, jaxpr text)}."""
    out = {}
    for backend in ("auto", "xla"):
        with F.conv_backend(backend):
            y = fn(*args)
            text = str(jax.make_jaxpr(fn)(*args)) if jaxpr else ""
        out[backend] = (y, text)
    return out


def check(fn, *args, jaxpr=True):
    """The row's assertions: oneDNN used, same values, same types."""
    res = both(fn, *args, jaxpr=jaxpr)
    (auto, auto_jaxpr), (xla, xla_jaxpr) = res["auto"], res["xla"]
    if jaxpr:
        assert "jaxcnn_onednn" in auto_jaxpr, "the auto backend did not use oneDNN"
        assert "jaxcnn_onednn" not in xla_jaxpr
    assert jax.tree.structure(auto) == jax.tree.structure(xla)
    assert types(auto) == types(xla)
    assert_close(auto, xla)
    return auto, xla


def scalar_loss(conv):
    return lambda x, k: jnp.sum(jnp.sin(conv(x, k)) * jnp.cos(0.5 * conv(x, k)))


def test_onednn_is_available_here():
    # The matrix compares oneDNN with XLA; on Linux x86-64 a missing library is a failure.
    assert onednn.available(), onednn.status()


# --- Plain transformations, on every configuration ---------------------------------------

def _jit(conv, x, k):
    return check(jax.jit(conv), x, k)


def _grad(conv, x, k):
    return check(jax.jit(jax.grad(scalar_loss(conv), argnums=(0, 1))), x, k)


def _jvp(conv, x, k):
    tx, tk = randn(x.shape, 7), randn(k.shape, 8)
    return check(lambda x, k: jax.jvp(conv, (x, k), (tx, tk)), x, k)


def _vjp(conv, x, k):
    def f(x, k):
        y, pull = jax.vjp(conv, x, k)
        return y, pull(jnp.cos(y))
    return check(f, x, k)


def _linearize(conv, x, k):
    tx, tk = randn(x.shape, 7), randn(k.shape, 8)

    def f(x, k):
        y, lin = jax.linearize(conv, x, k)
        return y, lin(tx, tk)
    return check(f, x, k)


def _linear_transpose(conv, x, k):
    def f(x, k):
        y = conv(x, k)
        t_x = jax.linear_transpose(lambda x: conv(x, k), x)(jnp.cos(y))
        t_k = jax.linear_transpose(lambda k: conv(x, k), k)(jnp.cos(y))
        return t_x, t_k
    return check(f, x, k)


def _hessian(conv, x, k):
    # Hessian in the kernel of a non-quadratic loss: second derivatives of every primitive.
    k_small = k[:2, :2]
    x_small = x[:1]
    return check(jax.jit(jax.hessian(lambda k: scalar_loss(conv)(x_small, k))), k_small)


def _vmap_x(conv, x, k):
    xs = jnp.stack([x, 2 * x[:, ::-1]], axis=2)  # the mapped axis is not the first
    return check(jax.vmap(conv, in_axes=(2, None), out_axes=1), xs, k)


def _vmap_k(conv, x, k):
    ks = jnp.stack([k, -k, 0.5 * k[::-1]])  # ensembles on one batch: no copy of x
    return check(jax.jit(jax.vmap(lambda k: conv(x, k), out_axes=3)), ks)


def _vmap_both(conv, x, k):
    xs, ks = jnp.stack([x, x[::-1] + 1]), jnp.stack([k, -k], axis=-1)
    return check(jax.vmap(conv, in_axes=(0, 4)), xs, ks)


def _vmap_nested(conv, x, k):
    xs = jnp.stack([x, 2 * x])[:, None]  # (2, 1, N, H, W, C)
    ks = jnp.stack([k, -k, k * k])        # (3, ...)
    inner = jax.vmap(conv, in_axes=(None, 0))
    return check(jax.vmap(jax.vmap(inner, in_axes=(0, None)), in_axes=(0, None)), xs, ks)


def _vmap_grad_per_example(conv, x, k):
    # per-example kernel gradients: vmap of grad, batched x and dy, shared k
    g = jax.grad(lambda k, x: scalar_loss(conv)(x[None], k))
    return check(jax.jit(jax.vmap(g, in_axes=(None, 0))), k, x)


def _vmap_grad_ensemble(conv, x, k):
    # ensemble members trained on one batch: kernel batched, x shared, grads in x and k
    g = jax.grad(scalar_loss(conv), argnums=(0, 1))
    return check(jax.jit(jax.vmap(g, in_axes=(None, 0))), x, jnp.stack([k, 2 * k]))


def _scan(conv, x, k):
    def f(x, k):
        def body(c, k):
            y = conv(x + c, k)
            return c + jnp.mean(y), y
        return jax.lax.scan(body, 0.0, jnp.stack([k, -k]))
    return check(jax.jit(jax.grad(lambda x, k: jnp.sum(f(x, k)[1] ** 2), (0, 1))), x, k)


def _cond(conv, x, k):
    def f(x, k):
        return jax.lax.cond(jnp.sum(x) > 0, lambda: conv(x, k), lambda: conv(x, -k) * 2)
    return check(jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(f(x, k))), (0, 1))), x, k)


def _while(conv, x, k):
    def f(x, k):
        def body(state):
            i, acc = state
            return i + 1, acc + jnp.sum(jnp.tanh(conv(x * (i + 1), k)))
        return jax.lax.while_loop(lambda s: s[0] < 3, body, (0, 0.0))[1]
    return check(jax.jit(f), x, k)


def _eval_shape(conv, x, k):
    res = both(lambda x, k: jax.eval_shape(jax.grad(scalar_loss(conv), (0, 1)), x, k), x, k)
    assert res["auto"][0] == res["xla"][0]
    assert "jaxcnn_onednn" in str(jax.make_jaxpr(jax.grad(scalar_loss(conv), (0, 1)))(x, k))


def _aot(conv, x, k):
    g = jax.jit(jax.grad(scalar_loss(conv), (0, 1)))
    out = {}
    for backend in ("auto", "xla"):
        with F.conv_backend(backend):
            lowered = g.lower(x, k)
            assert ("jaxcnn_onednn" in lowered.as_text()) == (backend == "auto")
            compiled = lowered.compile()
            out[backend] = compiled(x, k)
            assert types(out[backend]) == types(g(x, k))
    assert_close(out["auto"], out["xla"])


def _export(platforms):
    def row(conv, x, k):
        g = jax.jit(jax.grad(scalar_loss(conv), (0, 1)))
        kw = {} if platforms is None else {"platforms": platforms}
        out = {}
        for backend in ("auto", "xla"):
            with F.conv_backend(backend):
                exp = jax.export.export(g, **kw)(x, k)
                # through bytes, as an archived model is
                exp = jax.export.deserialize(exp.serialize())
                text = exp.mlir_module()
                assert "custom_call" not in text, "the exported module is not portable"
                assert "convolution" in text
                out[backend] = exp.call(x, k)
        assert_close(out["auto"], out["xla"])
        assert_close(out["auto"], g(x, k))
    return row


ROWS = {
    "jit": _jit, "grad": _grad, "jvp": _jvp, "vjp": _vjp, "linearize": _linearize,
    "linear_transpose": _linear_transpose, "hessian": _hessian, "vmap x (axis 2, out 1)": _vmap_x,
    "vmap kernel": _vmap_k, "vmap both (kernel axis 4)": _vmap_both, "vmap nested": _vmap_nested,
    "vmap(grad) per example": _vmap_grad_per_example, "vmap(grad) ensemble": _vmap_grad_ensemble,
    "scan": _scan, "cond": _cond, "while_loop": _while, "eval_shape": _eval_shape,
    "aot lower/compile": _aot, "export cpu": _export(None),
    "export cpu+cuda+tpu": _export(("cpu", "cuda", "tpu")),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("row", ROWS)
def test_transformation_matches_lax(row, config):
    conv, x, k = make(CONFIGS[config])
    ROWS[row](lambda x, k: conv(x, k), x, k)


# --- jax.checkpoint: the conv is saved where lax's would be --------------------------------

POLICIES = {
    "everything_saveable": jax.checkpoint_policies.everything_saveable,
    "nothing_saveable": jax.checkpoint_policies.nothing_saveable,
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "checkpoint_dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_with_no_batch_dims_saveable":
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_only_these_names": jax.checkpoint_policies.save_only_these_names("y"),
    "save_any_names_but_these": jax.checkpoint_policies.save_any_names_but_these("z"),
    "save_anything_except_these_names":
        jax.checkpoint_policies.save_anything_except_these_names("y"),
    "save_from_both_policies": jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.dots_saveable,
        jax.checkpoint_policies.save_only_these_names("y")),
    "offload_dot_with_no_batch_dims":
        jax.checkpoint_policies.offload_dot_with_no_batch_dims("device", "pinned_host"),
    "save_and_offload_only_these_names":
        jax.checkpoint_policies.save_and_offload_only_these_names(
            names_which_can_be_saved=["y"], names_which_can_be_offloaded=[],
            offload_src="device", offload_dst="pinned_host"),
}


@pytest.mark.parametrize("config", ["plain", "grouped"])
@pytest.mark.parametrize("policy", POLICIES)
def test_checkpoint_policy_saves_what_lax_saves(policy, config):
    conv, x, k = make(CONFIGS[config])

    def block(x, k):
        y = checkpoint_name(conv(x, k), "y")
        z = checkpoint_name(jnp.sin(y), "z")
        return jnp.sum(z * jnp.cos(y))

    f = jax.checkpoint(block, policy=POLICIES[policy])
    saved = {}
    for backend in ("auto", "xla"):
        with F.conv_backend(backend):
            saved[backend] = [(r[0].shape, r[0].dtype) for r in
                              saved_residuals(f, x, k)]
    assert saved["auto"] == saved["xla"]
    check(jax.jit(jax.grad(f, (0, 1))), x, k)


# --- Devices: shard_map, pmap, sharded jit on auto and explicit axes ---------------------

def two_layer_loss(conv):
    def loss(params, x):
        k, w = params
        y = jnp.tanh(conv(x, k))
        return jnp.mean(y.reshape(y.shape[0], -1) @ w)
    return loss


def two_layer_params(conv, x, k):
    n_out = jax.eval_shape(conv, x, k).shape
    w = randn((int(np.prod(n_out[1:])), 2), 5)
    return (k, w)


def batch_sharded(conv, x, k, axis_type):
    """An 8-device mesh of ``axis_type``, the two-layer parameters replicated on it and the
    batch split over it."""
    kind = {"auto": jax.sharding.AxisType.Auto, "explicit": jax.sharding.AxisType.Explicit}
    mesh = jax.make_mesh((8,), ("b",), axis_types=(kind[axis_type],))
    params = jax.device_put(two_layer_params(conv, x, k), NamedSharding(mesh, P()))
    return mesh, params, jax.device_put(x, NamedSharding(mesh, P("b")))


@needs_8
@pytest.mark.parametrize("axis_type", ["auto", "explicit"])
@pytest.mark.parametrize("check_vma", [True, False])
@pytest.mark.parametrize("config", BATCH8)
def test_shard_map_gradients_match_lax(config, check_vma, axis_type):
    conv, x, k = make(BATCH8[config])
    loss = two_layer_loss(conv)
    mesh, params, xs = batch_sharded(conv, x, k, axis_type)
    seen = {}

    def body(params, x):
        g = jax.grad(loss)(params, x)
        seen.setdefault(F_backend(), []).append(types(g))  # vma of the gradients
        return g

    # JAX's idiom: with check_vma, gradients of replicated parameters come back summed over
    # the mapped axis; without it, each device's own (lax's behaviour in both cases).
    f = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(P(), P("b")),
                              out_specs=P() if check_vma else P("b"), check_vma=check_vma))
    auto, xla = check(f, params, xs)
    assert seen["auto"] == seen["xla"]
    if check_vma:
        assert_close(jax.tree.map(lambda g: g / 8, auto),
                     jax.grad(loss)(two_layer_params(conv, x, k), x))


def F_backend():
    from jaxcnn.functional.conv import _backend
    return _backend.value


@needs_8
@pytest.mark.parametrize("config", ["plain", "grouped"])
def test_pmap_matches_lax(config):
    conv, x, k = make(BATCH8[config])
    loss = two_layer_loss(conv)
    params = two_layer_params(conv, x, k)

    def step(params, x):
        return jax.lax.pmean(jax.grad(loss)(params, x), "d")

    rep = jax.tree.map(lambda a: jnp.broadcast_to(a, (8,) + a.shape), params)
    auto, _ = check(jax.pmap(step, axis_name="d"), rep, x.reshape((8, 1) + x.shape[1:]))
    assert_close(jax.tree.map(lambda a: a[0], auto), jax.grad(loss)(params, x))


@needs_8
@pytest.mark.parametrize("axis_type", ["auto", "explicit"])
@pytest.mark.parametrize("config", BATCH8)
def test_sharded_jit_matches_lax(config, axis_type):
    conv, x, k = make(BATCH8[config])
    loss = two_layer_loss(conv)
    mesh, params, xs = batch_sharded(conv, x, k, axis_type)
    with jax.set_mesh(mesh):
        auto, _ = check(jax.jit(jax.value_and_grad(loss)), params, xs)
        check(jax.jit(conv), xs, params[0])
    assert_close(auto, jax.value_and_grad(loss)(two_layer_params(conv, x, k), x))


@needs_8
def test_explicit_axes_reshard_matches_lax():
    conv, x, k = make(BATCH8["plain"])
    mesh = jax.make_mesh((4, 2), ("b", "m"))  # jax.make_mesh's default: explicit axes
    with jax.set_mesh(mesh):
        xs = jax.device_put(x, P(("b", "m")))
        kr = jax.device_put(k, P())

        def f(x, k):
            y = conv(jax.sharding.reshard(x, P("b")), k)
            return jnp.sum(jnp.sin(y)), y

        check(jax.jit(jax.grad(f, (0, 1), has_aux=True)), xs, kr)


@needs_8
def test_explicit_axes_same_error_as_lax():
    # A kernel that is not on the mesh: lax asks for an out_sharding, and so does the oneDNN path.
    conv, x, k = make(BATCH8["plain"])
    mesh = jax.make_mesh((8,), ("b",))
    errors = {}
    with jax.set_mesh(mesh):
        xs = jax.device_put(x, P("b"))
        for backend in ("auto", "xla"):
            with F.conv_backend(backend), pytest.raises(Exception) as e:
                jax.jit(jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2), 1))(xs, k)
            errors[backend] = (type(e.value), str(e.value).splitlines()[0])
    assert errors["auto"] == errors["xla"]


def test_vmap_mismatched_sizes_same_error_as_lax():
    conv, x, k = make(CONFIGS["plain"])
    errors = {}
    for backend in ("auto", "xla"):
        with F.conv_backend(backend), pytest.raises(ValueError) as e:
            jax.vmap(conv)(jnp.stack([x] * 2), jnp.stack([k] * 3))
        errors[backend] = str(e.value)
    assert errors["auto"] == errors["xla"]


# --- The choice of backend is part of the trace ---------------------------------------------

def test_backend_choice_is_not_replayed_from_jax_caches():
    conv, x, k = make(CONFIGS["plain"])
    loss = jax.checkpoint(scalar_loss(conv))
    jitted = jax.jit(loss)
    with F.conv_backend("xla"):
        assert "jaxcnn_onednn" not in str(jax.make_jaxpr(jax.grad(loss))(x, k))
        jitted(x, k)
    assert "jaxcnn_onednn" in str(jax.make_jaxpr(jax.grad(loss))(x, k))
    assert "jaxcnn_onednn" in jitted.trace(x, k).jaxpr.pretty_print()


def test_non_cpu_placement_uses_lax():
    # A program placed on another platform sees plain conv_general_dilated in its jaxpr.
    conv, x, k = make(CONFIGS["plain"])
    with jax.default_device("gpu"):  # a platform name; nothing is placed while tracing
        text = str(jax.make_jaxpr(conv)(x, k))
    assert "conv_general_dilated" in text and "jaxcnn_onednn" not in text


# --- Compiled programs read back in a fresh process ---------------------------------------

FRESH = textwrap.dedent("""
    import sys, numpy as np, jax, jax.numpy as jnp
    from jaxcnn import functional as F
    x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
    k = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    f = jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(F.conv(x, k, stride=(2, 1)))), (0, 1)))
    with F.conv_backend("xla"):
        want = f(x, k)
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "cache":
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        lowered = f.lower(x, k)
        assert "jaxcnn_onednn" in lowered.as_text()
        got = lowered.compile()(x, k)
    else:
        from jax.experimental import serialize_executable as se
        if mode == "save":
            import pickle
            compiled = f.lower(x, k).compile()
            with open(path, "wb") as fh:
                pickle.dump(se.serialize(compiled), fh)
            got = compiled(x, k)
        else:
            import pickle
            with open(path, "rb") as fh:
                payload, in_tree, out_tree = pickle.load(fh)
            got = se.deserialize_and_load(payload, in_tree, out_tree)(x, k)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    print("ok")
""")


def _fresh(*args):
    # one CPU device, as a serving process has (serialize_executable is per device set)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    out = subprocess.run([sys.executable, "-c", FRESH, *args], capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_serialized_executable_runs_in_a_fresh_process(tmp_path):
    path = str(tmp_path / "exe.pkl")
    _fresh("save", path)
    _fresh("load", path)


def test_persistent_compilation_cache_is_read_back_in_a_fresh_process(tmp_path):
    cache = tmp_path / "cache"
    _fresh("cache", str(cache))
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "nothing was written to the compilation cache"
    _fresh("cache", str(cache))
    assert sorted(p.name for p in cache.iterdir()) == entries  # read back, not recompiled
