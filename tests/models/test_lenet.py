"""LeNet-5 and its modern variant against a plain-numpy forward pass, counts and training."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.models.lenet import LeNet5, scaled_tanh

from ._zoo1_helpers import (
    abstract_variables,
    call_order,
    check_dropout,
    np_conv,
    np_pool,
    numpy_variables,
    output_shape,
    param_count,
    randn,
    sgd_losses,
)

X32 = jnp.zeros((1, 32, 32, 1))

# C1 + C3 (all 6 maps) + C5 + F6 + output, LeCun et al. 1998 with full C3 connections.
LENET5_COUNT = (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (5 * 5 * 16 * 120 + 120) \
    + (120 * 84 + 84) + (84 * 10 + 10)


def np_lenet(variables, x, act, reduce):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np_pool(act(np_conv(x, p["c1"]["kernel"]) + p["c1"]["bias"]), 2, 2, reduce)
    h = np_pool(act(np_conv(h, p["c3"]["kernel"]) + p["c3"]["bias"]), 2, 2, reduce)
    h = act(np_conv(h, p["c5"]["kernel"]) + p["c5"]["bias"]).reshape(len(h), -1)
    h = act(h @ p["f6"]["kernel"] + p["f6"]["bias"])
    return h @ p["output"]["kernel"] + p["output"]["bias"]


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_parameter_count(name):
    assert LENET5_COUNT == 61_706
    model = models.create(name, num_classes=10)
    assert param_count(model, X32) == 61_706
    assert output_shape(model, jnp.zeros((3, 32, 32, 1))).shape == (3, 10)


def test_scaled_tanh():
    x = randn((50,), seed=1, scale=3.0)
    np.testing.assert_allclose(scaled_tanh(x), 1.7159 * np.tanh(2 * np.asarray(x) / 3),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scaled_tanh(jnp.array([1.0, -1.0])), [1.0, -1.0], atol=1e-4)


@pytest.mark.parametrize(
    ("options", "act", "reduce"),
    [
        ({}, np.tanh, np.mean),
        ({"activation": "scaled_tanh"}, lambda z: 1.7159 * np.tanh(2 * z / 3), np.mean),
        ({"activation": "relu", "pooling": "max"}, lambda z: np.maximum(z, 0), np.max),
    ],
    ids=["lenet5", "scaled_tanh", "modern"],
)
def test_real_forward_matches_numpy(options, act, reduce):
    model = models.create("lenet5", num_classes=10, **options)
    x = randn((3, 32, 32, 1), seed=2)
    variables = numpy_variables(model, x)
    y = jax.jit(model.apply)(variables, x)
    assert y.shape == (3, 10)
    np.testing.assert_allclose(y, np_lenet(variables, x, act, reduce), atol=1e-4, rtol=1e-4)


def test_real_init_and_forward():
    model = models.create("lenet5", num_classes=10)
    x = randn((2, 32, 32, 1), seed=3)
    variables = jax.jit(model.init)(jax.random.key(0, impl="rbg"), x)
    assert jax.tree.map(jnp.shape, variables["params"]["c5"]) == {
        "bias": (120,), "kernel": (5, 5, 16, 120)}
    _, state = jax.jit(partial(model.apply, capture_intermediates=True))(variables, x)
    assert call_order(model, x) == ["c1", "s2", "c3", "s4", "c5", "flatten", "drop5", "f6",
                                    "drop6", "output"]
    assert state["intermediates"]["s4"]["__call__"][0].shape == (2, 5, 5, 16)
    assert state["intermediates"]["c5"]["__call__"][0].shape == (2, 1, 1, 120)


def test_larger_input_flattens_a_larger_c5_map():
    # 36x36 -> C5 map 2x2x120, flattened into F6.
    variables = abstract_variables(LeNet5(), jnp.zeros((1, 36, 36, 1)))
    assert variables["params"]["f6"]["kernel"].shape == (480, 84)


def test_dropout_off_at_eval():
    model = models.create("lenet5_modern", num_classes=10, dropout_rate=0.5)
    x = randn((2, 32, 32, 1), seed=4)
    check_dropout(model, numpy_variables(model, x), x)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_one_sgd_step_reduces_loss(name):
    model = models.create(name, num_classes=10, dropout_rate=0.3)
    x = randn((8, 32, 32, 1), seed=5)
    before, after = sgd_losses(model, numpy_variables(model, x), x, jnp.arange(8), lr=0.05)
    assert after < before


def test_bfloat16():
    model = models.create("lenet5", num_classes=10, dtype=jnp.bfloat16)
    assert output_shape(model, X32).dtype == jnp.bfloat16
    params = abstract_variables(model, X32)["params"]
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"32x32.*\(1, 28, 28, 1\)"):
        output_shape(LeNet5(), jnp.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match="pooling"):
        output_shape(LeNet5(pooling="min"), X32)
    with pytest.raises(ValueError, match="`x` must have rank 4"):
        output_shape(LeNet5(), jnp.zeros((32, 32, 1)))
    with pytest.raises(TypeError, match="`x`"):
        output_shape(LeNet5(), jnp.zeros((1, 32, 32, 1), jnp.uint8))


@pytest.mark.parametrize(("width", "channels"), [(2, (12, 32, 240)), (0.5, (3, 8, 60))])
def test_width_scales_the_conv_channels(width, channels):
    model = models.create("lenet5_modern", num_classes=10, width=width)
    c1, c3, c5 = channels
    expected = (25 * c1 + c1) + (25 * c1 * c3 + c3) + (25 * c3 * c5 + c5) + (c5 * 84 + 84) \
        + (84 * 10 + 10)
    assert param_count(model, X32) == expected
    x = randn((2, 32, 32, 1), seed=6)
    variables = numpy_variables(model, x)
    np.testing.assert_allclose(jax.jit(model.apply)(variables, x),
                               np_lenet(variables, x, lambda z: np.maximum(z, 0), np.max),
                               atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="`width` must be a number > 0"):
        output_shape(LeNet5(width=0), X32)
