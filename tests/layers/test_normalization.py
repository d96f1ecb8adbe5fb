"""Normalization layers: BatchNorm against a numpy reference (train/eval/init/pmap), and every
layer equal to its F function on the layer's own parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import functional as F
from jaxcnn import layers as L
from tests.layers._helpers import KEY, randn, random_variables

X = randn((4, 5, 5, 6), loc=3.0, scale=2.0)  # far from standardised, so normalising shows
EPS = 1e-5


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=tol, atol=tol)


def _np_bn(x, scale, bias, mean, var, eps=EPS):
    x = np.asarray(x, np.float64)
    return (x - mean) / np.sqrt(var + eps) * np.asarray(scale) + np.asarray(bias)


# ------------------------------------------------------------------- BatchNorm


def test_batch_norm_variables_and_init_leaves_stats_alone():
    variables = L.BatchNorm().init(KEY, X, train=True)  # train=True: init must not update
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {"scale": (6,), "bias": (6,)},
        "batch_stats": {"mean": (6,), "var": (6,)},
    }
    np.testing.assert_array_equal(variables["batch_stats"]["mean"], np.zeros(6))
    np.testing.assert_array_equal(variables["batch_stats"]["var"], np.ones(6))
    assert jax.eval_shape(L.BatchNorm(use_scale=False, use_bias=False).init, KEY, X) == {
        "batch_stats": {"mean": jax.ShapeDtypeStruct((6,), jnp.float32),
                        "var": jax.ShapeDtypeStruct((6,), jnp.float32)}}


def test_batch_norm_train_uses_batch_stats_and_updates_running_stats():
    bn = L.BatchNorm(momentum=0.8)
    variables = random_variables(bn, X)
    p, s = variables["params"], variables["batch_stats"]
    y, updates = bn.apply(variables, X, train=True, mutable=["batch_stats"])
    x64 = np.asarray(X, np.float64)
    mu, var = x64.mean((0, 1, 2)), x64.var((0, 1, 2))
    _close(y, _np_bn(X, p["scale"], p["bias"], mu, var))
    _close(updates["batch_stats"]["mean"], 0.8 * np.asarray(s["mean"]) + 0.2 * mu)
    _close(updates["batch_stats"]["var"], 0.8 * np.asarray(s["var"]) + 0.2 * var)
    want, _ = F.batch_norm(X, p["scale"], p["bias"], s["mean"], s["var"], train=True,
                           momentum=0.8)
    np.testing.assert_array_equal(y, want)  # one call into F, no second formula


def test_batch_norm_eval_uses_running_stats_and_changes_nothing():
    bn = L.BatchNorm()
    variables = random_variables(bn, X)
    p, s = variables["params"], variables["batch_stats"]
    y = bn.apply(variables, X)  # train defaults to False; batch_stats need not be mutable
    _close(y, _np_bn(X, p["scale"], p["bias"], np.asarray(s["mean"]), np.asarray(s["var"])))
    _, updates = bn.apply(variables, X, train=False, mutable=["batch_stats"])
    jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], s)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_flax(train):
    bn = L.BatchNorm()
    variables = random_variables(bn, X)
    theirs = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=EPS)
    y, upd = bn.apply(variables, X, train=train, mutable=["batch_stats"])
    y_flax, upd_flax = theirs.apply(variables, X, mutable=["batch_stats"])
    _close(y, y_flax, tol=1e-4)
    jax.tree.map(_close, upd, upd_flax)


def test_batch_norm_jit_and_bfloat16():
    bn = L.BatchNorm()
    variables = random_variables(bn, X)
    step = jax.jit(lambda v, x: bn.apply(v, x, train=True, mutable=["batch_stats"]))
    y, upd = step(variables, X)
    y_eager, upd_eager = bn.apply(variables, X, train=True, mutable=["batch_stats"])
    _close(y, y_eager)
    jax.tree.map(_close, upd, upd_eager)
    x16 = X.astype(jnp.bfloat16)
    y16, upd16 = bn.apply(variables, x16, train=True, mutable=["batch_stats"])
    assert y16.dtype == jnp.bfloat16 and upd16["batch_stats"]["mean"].dtype == jnp.float32
    _close(y16, y_eager, tol=0.1)
    assert L.BatchNorm(dtype=jnp.bfloat16).apply(variables, X).dtype == jnp.bfloat16


@pytest.fixture
def eight_devices():
    if jax.device_count() != 8:
        pytest.skip(f"needs 8 devices (conftest.py sets XLA_FLAGS), found {jax.device_count()}")
    return jax.devices()


def test_batch_norm_axis_name_under_pmap_equals_full_batch(eight_devices):
    full = randn((16, 3, 3, 4), seed=5, loc=1.0, scale=3.0)
    per_device = full.reshape(8, 2, 3, 3, 4)
    bn = L.BatchNorm(axis_name="batch")
    bn.init(KEY, per_device[0], train=True)  # init outside pmap (axis unbound) works
    variables = random_variables(bn, per_device[0])

    def step(x):
        return bn.apply(variables, x, train=True, mutable=["batch_stats"])

    y, upd = jax.pmap(step, axis_name="batch")(per_device)
    y_full, upd_full = L.BatchNorm().apply(variables, full, train=True, mutable=["batch_stats"])
    _close(np.asarray(y).reshape(full.shape), y_full, tol=2e-5)
    for name in ("mean", "var"):  # every device holds the full-batch update
        stats = np.asarray(upd["batch_stats"][name])
        _close(stats, np.broadcast_to(upd_full["batch_stats"][name], stats.shape))


# ------------------------------------------------- the other normalizations


@pytest.mark.parametrize("layer,reference", [
    (L.LayerNorm(), lambda x, p: F.layer_norm(x, p["scale"], p["bias"])),
    (L.LayerNorm(axes=-1, epsilon=1e-3),
     lambda x, p: F.layer_norm(x, p["scale"], p["bias"], eps=1e-3, axes=-1)),
    (L.LayerNorm(use_scale=False, use_bias=False), lambda x, p: F.layer_norm(x)),
    (L.GroupNorm(num_groups=3), lambda x, p: F.group_norm(x, p["scale"], p["bias"],
                                                          num_groups=3)),
    (L.GroupNorm(num_groups=2, use_bias=False),
     lambda x, p: F.group_norm(x, p["scale"], None, num_groups=2)),
    (L.InstanceNorm(epsilon=1e-3),
     lambda x, p: F.instance_norm(x, p["scale"], p["bias"], eps=1e-3)),
    (L.LocalResponseNorm(), lambda x, p: F.local_response_norm(x)),
    (L.LocalResponseNorm(3, alpha=1e-2, beta=0.5, k=1.0),
     lambda x, p: F.local_response_norm(x, 3, 1e-2, 0.5, 1.0)),
    (L.LocalContrastNorm(window=3), lambda x, p: F.local_contrast_norm(x, 3)),
    (L.LocalContrastNorm(window=(3, 5), sigma=1.0, eps=1e-3),
     lambda x, p: F.local_contrast_norm(x, (3, 5), 1.0, 1e-3)),
])
def test_norm_layer_is_f_and_ignores_train(layer, reference):
    variables = random_variables(layer, X)
    params = variables.get("params", {})
    y = layer.apply(variables, X)
    np.testing.assert_array_equal(y, reference(X, params))
    # every norm takes `train`, so blocks can swap norms; only BatchNorm depends on it
    np.testing.assert_array_equal(layer.apply(variables, X, train=True), y)


def test_param_names_and_shapes():
    shapes = jax.eval_shape(L.GroupNorm(num_groups=2).init, KEY, X)
    assert jax.tree.map(jnp.shape, shapes) == {"params": {"scale": (6,), "bias": (6,)}}
    assert jax.eval_shape(L.LocalResponseNorm().init, KEY, X) == {}


@pytest.mark.parametrize("ours,theirs", [
    (L.LayerNorm(axes=-1, epsilon=1e-6), nn.LayerNorm()),
    (L.GroupNorm(num_groups=3, epsilon=1e-6), nn.GroupNorm(num_groups=3)),
])
def test_matches_flax(ours, theirs):
    variables = random_variables(ours, X)
    _close(ours.apply(variables, X), theirs.apply(variables, X), tol=1e-4)


def test_output_dtype():
    x16 = X.astype(jnp.bfloat16)
    for layer in (L.GroupNorm(num_groups=2), L.InstanceNorm(), L.LayerNorm()):
        variables = random_variables(layer, X)
        assert layer.apply(variables, x16).dtype == jnp.bfloat16
        assert layer.clone(dtype=jnp.bfloat16).apply(variables, X).dtype == jnp.bfloat16


@pytest.mark.parametrize("layer,x,exc,match", [
    (L.GroupNorm(num_groups=4), np.ones((2, 4, 4, 6), np.float32), ValueError, "num_groups"),
    (L.BatchNorm(), np.ones((6,), np.float32), ValueError, "`x` must have rank"),
    (L.BatchNorm(), np.ones((2, 4, 4, 6), np.int32), TypeError, "`x` must be a floating"),
    (L.BatchNorm(momentum=1.5), np.ones((2, 4, 4, 6), np.float32), ValueError, "momentum"),
    (L.InstanceNorm(), np.ones((2, 6), np.float32), ValueError, "`x` must have rank"),
    (L.LocalContrastNorm(window=0), np.ones((2, 4, 4, 6), np.float32), ValueError, "window"),
    (L.LocalResponseNorm(size=0), np.ones((2, 4, 4, 6), np.float32), ValueError, "size"),
])
def test_bad_input_names_the_argument(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        jax.eval_shape(layer.init, KEY, x)
