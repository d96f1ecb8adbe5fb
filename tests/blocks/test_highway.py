"""Highway layers against numpy (y = T * H(x) + (1 - T) * x), gate initialisation, gradients."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxcnn import layers as L
from jaxcnn.blocks import HighwayConv, HighwayDense
from tests.models._zoo1_helpers import key, np_conv, numpy_variables, randn


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_dense_matches_numpy():
    x = randn((5, 6), seed=1)
    layer = HighwayDense(act=jnp.tanh)
    variables = numpy_variables(layer, x)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    x64 = np.asarray(x, np.float64)
    h = np.tanh(x64 @ p["transform"]["kernel"] + p["transform"]["bias"])
    t = sigmoid(x64 @ p["gate"]["kernel"] + p["gate"]["bias"])
    np.testing.assert_allclose(layer.apply(variables, x), t * h + (1 - t) * x64, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_conv_matches_numpy(kernel_size):
    x = randn((2, 7, 6, 3), seed=3)
    layer = HighwayConv(kernel_size)
    variables = numpy_variables(layer, x)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    pad = kernel_size // 2
    h = np.maximum(np_conv(x, p["transform"]["kernel"], pad=pad) + p["transform"]["bias"], 0)
    t = sigmoid(np_conv(x, p["gate"]["kernel"], pad=pad) + p["gate"]["bias"])
    expected = t * h + (1 - t) * np.asarray(x, np.float64)
    np.testing.assert_allclose(jax.jit(layer.apply)(variables, x), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "x"),
    [(HighwayDense(), randn((64, 16), seed=5)),
     (HighwayConv(), randn((4, 6, 6, 8), seed=6)),
     (HighwayConv(gate_bias=-3.0), randn((4, 6, 6, 8), seed=7))],
    ids=["dense", "conv", "conv_-3"],
)
def test_gate_bias_initialised_negative_and_gates_in_unit_interval(layer, x):
    variables = jax.jit(layer.init)(key(0), x)
    np.testing.assert_array_equal(variables["params"]["gate"]["bias"], layer.gate_bias)
    assert layer.gate_bias < 0
    assert np.abs(np.asarray(variables["params"]["gate"]["kernel"])).sum() > 0
    _, state = jax.jit(partial(layer.apply, mutable=["intermediates"]))(variables, x)
    (gates,) = state["intermediates"]["gates"]
    assert gates.shape == x.shape
    gates = np.asarray(gates)
    assert ((gates > 0) & (gates < 1)).all()
    assert gates.mean() < 0.3  # carry-biased at initialisation (sigmoid(-2) = 0.12)


def test_very_negative_gate_bias_carries_the_input():
    x = randn((2, 5, 5, 4), seed=8)
    layer = HighwayConv(gate_bias=-30.0)
    variables = jax.jit(layer.init)(key(1), x)
    np.testing.assert_allclose(layer.apply(variables, x), x, atol=1e-6)


def test_gradients():
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(9).standard_normal((3, 4)))
        dense = HighwayDense(act=jnp.tanh, dense=partial(L.Dense, param_dtype=jnp.float64))
        variables = numpy_variables(dense, x)
        variables = jax.tree.map(lambda a: a.astype(jnp.float64), variables)
        check_grads(jax.jit(dense.apply), (variables, x), order=2, modes=("rev",))
        xc = jnp.asarray(np.random.default_rng(11).standard_normal((1, 4, 4, 2)))
        conv = HighwayConv(act=jnp.tanh, conv=partial(L.Conv, param_dtype=jnp.float64))
        vc = jax.tree.map(lambda a: a.astype(jnp.float64),
                          numpy_variables(conv, xc))
        check_grads(jax.jit(conv.apply), (vc, xc), order=1, modes=("rev",))


def test_jit_and_vmap_agree():
    x = randn((3, 2, 5, 5, 4), seed=13)
    layer = HighwayConv()
    variables = numpy_variables(layer, x[0])
    batched = jax.vmap(lambda xi: layer.apply(variables, xi))(x)
    for i in range(3):
        np.testing.assert_allclose(batched[i], jax.jit(layer.apply)(variables, x[i]),
                                   atol=1e-6)


def test_swappable_conv_and_norm():
    x = randn((2, 6, 6, 4), seed=14)
    local = HighwayConv(conv=partial(L.LocalConv, use_bias=False))
    variables = jax.eval_shape(local.init, key(), x)
    assert "bias" not in variables["params"]["transform"]       # conv's choice kept for H
    assert variables["params"]["gate"]["bias"].shape == (6, 6, 4)  # the gate always has one
    normed = HighwayConv(conv=partial(L.Conv, use_bias=False), norm=L.BatchNorm)
    variables = numpy_variables(normed, x)
    assert set(variables["params"]) == {"transform", "norm", "gate"}
    y, updates = normed.apply(variables, x, train=True, mutable=["batch_stats"])
    assert y.shape == x.shape and "norm" in updates["batch_stats"]
    grouped = HighwayConv(norm=partial(L.GroupNorm, num_groups=2))
    assert jax.eval_shape(grouped.apply, jax.eval_shape(grouped.init, key(), x), x).shape \
        == x.shape


def test_bfloat16():
    x = randn((2, 6, 6, 4), seed=15).astype(jnp.bfloat16)
    layer = HighwayConv(conv=partial(L.Conv, dtype=jnp.bfloat16))
    variables = jax.eval_shape(layer.init, key(), x)
    assert variables["params"]["gate"]["kernel"].dtype == jnp.float32
    assert jax.eval_shape(layer.apply, variables, x).dtype == jnp.bfloat16
    dense = HighwayDense(dense=partial(L.Dense, dtype=jnp.bfloat16))
    assert jax.eval_shape(dense.apply, jax.eval_shape(dense.init, key(), x),
                          x).dtype == jnp.bfloat16
    promoted = HighwayDense()  # float32 params, no compute dtype: promotes like Flax
    assert jax.eval_shape(promoted.apply, jax.eval_shape(promoted.init, key(), x),
                          x).dtype == jnp.float32


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(4, 4\)"):
        jax.eval_shape(HighwayConv().init, key(), jnp.zeros((4, 4)))
    with pytest.raises(TypeError, match="`x`"):
        jax.eval_shape(HighwayDense().init, key(), jnp.zeros((4, 4), jnp.int32))
    with pytest.raises(ValueError, match="feature axis"):
        jax.eval_shape(HighwayDense().init, key(), jnp.zeros(()))
