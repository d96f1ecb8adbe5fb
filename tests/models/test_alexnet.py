"""AlexNet (paper, two towers) and torchvision's variant: counts, a numpy forward, training."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.models.alexnet import AlexNet

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

DENSE = (6 * 6 * 256 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
PAPER = (11 * 11 * 3 * 96 + 96) + (5 * 5 * 48 * 256 + 256) + (3 * 3 * 256 * 384 + 384) \
    + (3 * 3 * 192 * 384 + 384) + (3 * 3 * 192 * 256 + 256) + DENSE
TORCHVISION = (11 * 11 * 3 * 64 + 64) + (5 * 5 * 64 * 192 + 192) + (3 * 3 * 192 * 384 + 384) \
    + (3 * 3 * 384 * 256 + 256) + (3 * 3 * 256 * 256 + 256) + DENSE

SMALL = {"features": (8, 16, 16, 16, 16), "fc_features": 32}


def test_hand_counts_match_published():
    assert PAPER == 60_965_224
    assert TORCHVISION == 61_100_840


@pytest.mark.parametrize(
    ("name", "size", "count"),
    [("alexnet", 227, 60_965_224), ("alexnet_torchvision", 224, 61_100_840),
     ("alexnet_torchvision", 227, 61_100_840)],
)
def test_parameter_counts_native(name, size, count):
    model = models.create(name)
    x = jnp.zeros((2, size, size, 3))
    assert param_count(model, x) == count
    assert output_shape(model, x).shape == (2, 1000)


def test_paper_geometry():
    model = AlexNet()
    x = jnp.zeros((1, 227, 227, 3))
    variables = abstract_variables(model, x)
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True), variables, x)
    shapes = {k: v["__call__"][0].shape for k, v in state["intermediates"].items()
              if k != "__call__"}
    assert shapes["conv1"] == (1, 55, 55, 96)
    assert shapes["pool1"] == (1, 27, 27, 96)
    assert shapes["pool2"] == (1, 13, 13, 256)
    assert shapes["conv5"] == (1, 13, 13, 256)
    assert shapes["pool5"] == (1, 6, 6, 256)
    assert variables["params"]["conv4"]["kernel"].shape == (3, 3, 192, 384)  # 2 towers
    assert variables["params"]["conv3"]["kernel"].shape == (3, 3, 256, 384)  # both towers
    assert call_order(model, x) == ["conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3",
                            "conv4", "conv5", "pool5", "flatten", "fc6", "drop6", "fc7",
                            "drop7", "fc8"]


def test_torchvision_layer_order():
    model = models.create("alexnet_torchvision", num_classes=10, **SMALL)
    x = jnp.zeros((1, 64, 64, 3))
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True),
                              abstract_variables(model, x), x)
    assert call_order(model, x) == [
        "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "avgpool",
        "flatten", "drop6", "fc6", "drop7", "fc7", "fc8"]
    assert state["intermediates"]["avgpool"]["__call__"][0].shape == (1, 6, 6, 16)


def test_fc6_adapts_to_input_size():
    # 224x224 into the paper's net: conv1 54, pool 26, pool 12, pool5 5x5x256.
    variables = abstract_variables(AlexNet(), jnp.zeros((1, 224, 224, 3)))
    assert variables["params"]["fc6"]["kernel"].shape == (5 * 5 * 256, 4096)


def np_lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    sq = np.pad(x**2, ((0, 0),) * 3 + ((size // 2, size // 2),))
    window = sum(sq[..., i:i + x.shape[-1]] for i in range(size))
    return x / (k + alpha * window) ** beta


def np_alexnet(variables, x, groups, lrn=np_lrn):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    relu = lambda z: np.maximum(z, 0)
    conv = lambda h, i, stride, pad: relu(
        np_conv(h, p[f"conv{i}"]["kernel"], stride, pad, groups[i - 1]) + p[f"conv{i}"]["bias"])
    h = np_pool(lrn(conv(x, 1, 4, 0)), 3, 2, np.max)
    h = np_pool(lrn(conv(h, 2, 1, 2)), 3, 2, np.max)
    h = np_pool(conv(conv(conv(h, 3, 1, 1), 4, 1, 1), 5, 1, 1), 3, 2, np.max)
    h = h.reshape(len(h), -1)
    for name in ("fc6", "fc7"):
        h = relu(h @ p[name]["kernel"] + p[name]["bias"])
    return h @ p["fc8"]["kernel"] + p["fc8"]["bias"]


def test_small_paper_alexnet_matches_numpy():
    # Random biases; pixel-scaled inputs (the paper feeds mean-subtracted 0-255 values), so
    # the LRN denominators k + alpha * sum(a^2) vary instead of staying ~k.
    model = AlexNet(num_classes=5, **SMALL)
    x = randn((2, 67, 67, 3), seed=1, scale=60.0)
    variables = numpy_variables(model, x)
    assert variables["params"]["conv2"]["kernel"].shape == (5, 5, 4, 16)
    y = jax.jit(model.apply)(variables, x)
    expected = np_alexnet(variables, x, (1, 2, 1, 2, 2))
    scale = np.abs(expected).max()
    np.testing.assert_allclose(y, expected, atol=1e-4 * scale, rtol=1e-4)
    # the check would catch an LRN reduced to its constant part, and ignored biases
    constant = np_alexnet(variables, x, (1, 2, 1, 2, 2), lrn=lambda a: a / 2.0**0.75)
    assert np.abs(constant - expected).max() > 1e-2 * scale
    no_bias = jax.tree.map(np.asarray, variables)
    for layer in no_bias["params"].values():
        layer["bias"] = np.zeros_like(layer["bias"])
    assert np.abs(np_alexnet(no_bias, x, (1, 2, 1, 2, 2)) - expected).max() > 1e-2 * scale


def test_small_torchvision_real_forward():
    model = models.create("alexnet_torchvision", num_classes=5, **SMALL)
    x = randn((2, 64, 64, 3), seed=2)
    y = jax.jit(model.apply)(numpy_variables(model, x), x)
    assert y.shape == (2, 5)
    assert np.isfinite(np.asarray(y)).all()


@pytest.mark.parametrize("name", ["alexnet", "alexnet_torchvision"])
def test_dropout_off_at_eval(name):
    model = models.create(name, num_classes=5, **SMALL)
    x = randn((2, 67, 67, 3), seed=3)
    check_dropout(model, numpy_variables(model, x), x)


def test_one_sgd_step_reduces_loss():
    model = models.create("alexnet", num_classes=4, **SMALL)
    x = randn((8, 67, 67, 3), seed=4)
    before, after = sgd_losses(model, numpy_variables(model, x), x, jnp.arange(8) % 4,
                               lr=0.05)
    assert after < before


def test_bfloat16():
    model = models.create("alexnet", dtype=jnp.bfloat16)
    x = jnp.zeros((1, 227, 227, 3))
    assert output_shape(model, x).dtype == jnp.bfloat16
    params = abstract_variables(model, x)["params"]
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}


def test_bad_inputs():
    x = jnp.zeros((1, 67, 67, 3))
    with pytest.raises(ValueError, match="features"):
        output_shape(AlexNet(features=(8, 16, 16, 16)), x)
    with pytest.raises(ValueError, match="`x` must have rank 4"):
        output_shape(AlexNet(), jnp.zeros((67, 67, 3)))
    with pytest.raises(ValueError, match="fc_features"):
        output_shape(AlexNet(features=(8, 16, 16, 16, 16), fc_features=0), x)
    with pytest.raises(ValueError, match="groups"):  # 2 groups cannot split 5 channels
        output_shape(AlexNet(features=(8, 5, 16, 16, 16)), x)
