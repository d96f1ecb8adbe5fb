"""Core layers: Dense (vs F and flax.linen.Dense), Maxout, Dropout / SpatialDropout (off at
eval, "dropout" rng in training) and named activations."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import functional as F
from jaxcnn import layers as L
from tests.layers._helpers import KEY, randn, random_variables

X = randn((4, 6))
MAPS = randn((4, 5, 5, 8), seed=2)


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=tol, atol=tol)


# ---------------------------------------------------------------------- Dense


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_is_f_and_matches_flax(use_bias):
    layer = L.Dense(3, use_bias=use_bias)
    variables = random_variables(layer, X)
    assert jax.tree.map(jnp.shape, variables["params"]) == (
        {"kernel": (6, 3), "bias": (3,)} if use_bias else {"kernel": (6, 3)})
    y = layer.apply(variables, X)
    p = variables["params"]
    np.testing.assert_array_equal(y, F.dense(X, p["kernel"], p.get("bias")))
    _close(y, nn.Dense(3, use_bias=use_bias).apply(variables, X))
    _close(y, np.asarray(X) @ np.asarray(p["kernel"]) + np.asarray(p.get("bias", 0.0)))


def test_dense_over_last_axis_jit_vmap_grad_bf16():
    layer = L.Dense(3)
    variables = random_variables(layer, MAPS)
    y = layer.apply(variables, MAPS)
    assert y.shape == (4, 5, 5, 3)
    _close(jax.jit(layer.apply)(variables, MAPS), y)
    _close(jax.vmap(lambda xi: layer.apply(variables, xi))(MAPS), y)
    p = variables["params"]
    g = jax.grad(lambda p: layer.apply({"params": p}, MAPS).sum())(p)
    g_ref = jax.grad(lambda p: F.dense(MAPS, p["kernel"], p["bias"]).sum())(p)
    jax.tree.map(_close, g, g_ref)
    assert L.Dense(3, dtype=jnp.bfloat16).apply(variables, MAPS).dtype == jnp.bfloat16


@pytest.mark.parametrize("layer,x,exc,match", [
    (L.Dense(3), np.ones((4, 6), np.int32), TypeError, "`x` must be a floating"),
    (L.Dense(3), np.ones((), np.float32), ValueError, "`x` must have a feature axis"),
    (L.Maxout(3, pieces=0), np.ones((4, 6), np.float32), ValueError, "pieces"),
    (L.Dropout(1.5), np.ones((4, 6), np.float32), ValueError, "rate"),
    (L.SpatialDropout(0.5), np.ones((4, 6), np.float32), ValueError, "spatial"),
])
def test_bad_input_names_the_argument(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer.apply(random_variables(layer, jnp.ones(x.shape, jnp.float32)), x)


# --------------------------------------------------------------------- Maxout


def test_maxout_is_dense_then_f_maxout():
    layer = L.Maxout(4, pieces=3)
    variables = random_variables(layer, X)
    dense = variables["params"]["dense"]
    assert jax.tree.map(jnp.shape, dense) == {"kernel": (6, 12), "bias": (12,)}
    z = np.asarray(X) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
    y = layer.apply(variables, X)
    np.testing.assert_array_equal(y, F.maxout(F.dense(X, dense["kernel"], dense["bias"]), 3))
    _close(y, z.reshape(4, 4, 3).max(-1))


# -------------------------------------------------------------------- Dropout


@pytest.mark.parametrize("layer_cls", [L.Dropout, L.SpatialDropout])
def test_dropout_off_at_eval_and_needs_rng_in_training(layer_cls):
    layer = layer_cls(0.5)
    assert layer.init(KEY, MAPS) == {}
    np.testing.assert_array_equal(layer.apply({}, MAPS), MAPS)
    np.testing.assert_array_equal(layer.apply({}, MAPS, train=False), MAPS)
    with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
        layer.apply({}, MAPS, train=True)
    np.testing.assert_array_equal(layer_cls(0.0).apply({}, MAPS, train=True), MAPS)


def test_dropout_in_training_under_jit():
    # one jitted function for every training call: random sampling compiles once
    step = jax.jit(lambda x, k: L.Dropout(0.25).apply({}, x, train=True, rngs={"dropout": k}))
    y = step(MAPS, jax.random.key(3))
    kept = np.asarray(y) != 0
    _close(np.asarray(y)[kept], np.asarray(MAPS)[kept] / 0.75)
    assert 0.6 < kept.mean() < 0.9
    np.testing.assert_array_equal(step(MAPS, jax.random.key(3)), y)
    assert not np.array_equal(step(MAPS, jax.random.key(4)), y)


def test_spatial_dropout_drops_whole_channels():
    y = L.SpatialDropout(0.5).apply({}, MAPS, train=True, rngs={"dropout": jax.random.key(3)})
    dropped = np.all(np.asarray(y) == 0, axis=(1, 2))  # (N, C)
    assert 0 < dropped.mean() < 1
    _close(np.asarray(y)[~np.broadcast_to(dropped[:, None, None], y.shape)],
           2 * np.asarray(MAPS)[~np.broadcast_to(dropped[:, None, None], y.shape)])


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name,fn", [
    ("relu", F.relu), ("tanh", F.tanh), ("sigmoid", F.sigmoid), ("elu", F.elu),
    ("leaky_relu", F.leaky_relu), ("gelu", F.gelu), ("swish", F.swish), ("step", F.step),
    ("rectify", F.rectify), ("identity", lambda x: x), ("linear", lambda x: x),
    ("ReLU", F.relu),
])
def test_activation_names(name, fn):
    np.testing.assert_array_equal(L.get_activation(name)(X), fn(X))
    np.testing.assert_array_equal(L.Activation(name).apply({}, X), fn(X))


def test_activation_module_has_a_name_in_the_tree():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return L.Activation("tanh", name="act")(x)

    _, state = Net().apply({}, X, capture_intermediates=True)
    np.testing.assert_array_equal(state["intermediates"]["act"]["__call__"][0], F.tanh(X))


def test_get_activation_passes_callables_and_suggests_names():
    assert L.get_activation(F.relu) is F.relu
    with pytest.raises(ValueError, match="Did you mean 'relu'"):
        L.get_activation("rleu")
    with pytest.raises(ValueError, match="Did you mean 'sigmoid'"):
        L.get_activation("sigmod")
    with pytest.raises(ValueError, match="unknown activation name 'zzz'"):
        L.Activation("zzz").apply({}, X)
    with pytest.raises(TypeError, match="name"):
        L.get_activation(3)
