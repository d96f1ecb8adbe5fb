"""Perceptron, MLP and the fully convolutional classifier: counts, numpy references, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.models.simple import MLP, FCNClassifier, Flatten, Perceptron

from ._zoo1_helpers import (
    abstract_variables,
    check_dropout,
    np_conv,
    np_pool,
    numpy_variables,
    output_shape,
    param_count,
    randn,
    sgd_losses,
)

MNIST = jnp.zeros((1, 28, 28, 1))


@pytest.mark.parametrize(
    ("name", "x", "count"),
    [
        ("perceptron", MNIST, 784 * 10 + 10),
        ("perceptron", jnp.zeros((1, 32, 32, 3)), 3072 * 10 + 10),
        ("mlp", MNIST, (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)),
        ("fcn_classifier", MNIST, (9 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128)
         + (128 * 10 + 10)),
    ],
)
def test_parameter_counts(name, x, count):
    model = models.create(name, num_classes=10)
    assert param_count(model, x) == count
    assert output_shape(model, x).shape == (1, 10)


def test_documented_counts():
    assert param_count(models.create("perceptron", num_classes=10), MNIST) == 7_850
    assert param_count(models.create("mlp", num_classes=10), MNIST) == 235_146
    assert param_count(models.create("fcn_classifier", num_classes=10), MNIST) == 93_962


def test_registered():
    assert {"perceptron", "mlp", "fcn_classifier"} <= set(models.list_models())


def test_flatten():
    x = randn((2, 3, 4, 5))
    np.testing.assert_array_equal(Flatten().apply({}, x), np.asarray(x).reshape(2, 60))


def test_perceptron_matches_numpy_and_step_gives_signs():
    x = randn((5, 4, 4, 2), seed=3)
    logits_model, step_model = Perceptron(num_classes=3), Perceptron(3, activation="step")
    variables = numpy_variables(logits_model, x)
    p = variables["params"]["dense"]
    expected = np.asarray(x).reshape(5, -1) @ np.asarray(p["kernel"]) + np.asarray(p["bias"])
    np.testing.assert_allclose(logits_model.apply(variables, x), expected, atol=1e-5)
    np.testing.assert_array_equal(step_model.apply(variables, x),
                                  np.where(expected >= 0, 1.0, -1.0))


def test_mlp_matches_numpy_at_eval():
    x = randn((4, 6, 6, 1), seed=4)
    model = MLP(num_classes=5, hidden=(7, 3), activation="tanh", dropout_rate=0.5)
    variables = numpy_variables(model, x)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np.asarray(x, np.float64).reshape(4, -1)
    for name in ("fc1", "fc2"):
        h = np.tanh(h @ p[name]["kernel"] + p[name]["bias"])
    expected = h @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(model.apply(variables, x), expected, atol=1e-5)


def test_mlp_dropout_off_at_eval():
    x = randn((4, 8, 8, 1), seed=5)
    model = MLP(num_classes=4, hidden=(16,), dropout_rate=0.5)
    check_dropout(model, numpy_variables(model, x), x)


@pytest.mark.parametrize("size", [(28, 28), (40, 52), (5, 3), (1, 1)])
def test_fcn_any_input_size(size):
    model = FCNClassifier(num_classes=6, features=(4, 8))
    variables = numpy_variables(model, jnp.zeros((1, 28, 28, 2)))  # params fixed at 28x28
    y = jax.jit(model.apply)(variables, randn((3, *size, 2), seed=6))
    assert y.shape == (3, 6)
    assert np.isfinite(np.asarray(y)).all()


def test_fcn_is_a_1x1_head_then_global_average():
    model = FCNClassifier(num_classes=3, features=(4,))
    x = randn((2, 6, 6, 1), seed=7)
    variables = numpy_variables(model, x)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np.maximum(np_conv(x, p["block1_conv"]["kernel"], pad=1) + p["block1_conv"]["bias"], 0)
    h = np_pool(h, 2, 2, np.max)
    h = np_conv(h, p["head"]["kernel"]) + p["head"]["bias"]
    np.testing.assert_allclose(model.apply(variables, x), h.mean(axis=(1, 2)), atol=1e-5)


@pytest.mark.parametrize(
    ("model", "x"),
    [
        (Perceptron(num_classes=4), randn((8, 6, 6, 1), seed=8)),
        (MLP(num_classes=4, hidden=(16, 8), dropout_rate=0.2), randn((8, 6, 6, 1), seed=9)),
        (FCNClassifier(num_classes=4, features=(4, 8)), randn((8, 12, 12, 1), seed=10)),
    ],
    ids=["perceptron", "mlp", "fcn_classifier"],
)
def test_one_sgd_step_reduces_loss(model, x):
    labels = jnp.arange(8) % 4
    before, after = sgd_losses(model, numpy_variables(model, x), x, labels, lr=0.1)
    assert after < before


@pytest.mark.parametrize("name", ["perceptron", "mlp", "fcn_classifier"])
def test_bfloat16_compute_float32_params(name):
    model = models.create(name, num_classes=10, dtype=jnp.bfloat16)
    variables = abstract_variables(model, MNIST)
    assert {a.dtype for a in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
    assert output_shape(model, MNIST).dtype == jnp.bfloat16


def test_bad_inputs():
    x = jnp.zeros((2, 8, 8, 1))
    with pytest.raises(TypeError, match="`x`"):
        output_shape(Perceptron(), jnp.zeros((2, 8, 8, 1), jnp.int32))
    with pytest.raises(ValueError, match="hidden"):
        output_shape(MLP(hidden=(8, 0)), x)
    with pytest.raises(ValueError, match="hidden"):
        output_shape(MLP(hidden=8), x)
    with pytest.raises(ValueError, match="num_classes"):
        output_shape(MLP(num_classes=0), x)
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(2, 64\)"):
        output_shape(FCNClassifier(), jnp.zeros((2, 64)))
    with pytest.raises(ValueError, match="activation"):
        output_shape(MLP(activation="rleu"), x)
    with pytest.raises(ValueError, match="Did you mean 'mlp'"):
        models.create("mpl")
