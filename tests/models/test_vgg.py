"""VGG-11/13/16/19 (+ BatchNorm): published counts, Keras names, a numpy forward, training."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.models.vgg import CONFIGS, VGG

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

X224 = jnp.zeros((1, 224, 224, 3))
X32 = jnp.zeros((2, 32, 32, 3))
WIDTHS = (64, 128, 256, 512, 512)
PUBLISHED = {  # torchvision (and Keras for vgg16: 138,357,544)
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}
SMALL = {"width": 2, "fc_features": 8}


def hand_count(depth, batch_norm, fc1_inputs=7 * 7 * 512, classes=1000):
    """Simonyan & Zisserman 2015, Table 1: 3x3 convs with bias, then 4096-4096-classes."""
    total, c_in = 0, 3
    for n_convs, width in zip(CONFIGS[depth], WIDTHS, strict=True):
        for _ in range(n_convs):
            total += 9 * c_in * width + width + (2 * width if batch_norm else 0)
            c_in = width
    return total + (fc1_inputs * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * classes + classes)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_parameter_counts(name):
    depth, batch_norm = int(name[3:5]), name.endswith("_bn")
    assert hand_count(depth, batch_norm) == PUBLISHED[name]
    model = models.create(name)
    assert param_count(model, X224) == PUBLISHED[name]
    assert output_shape(model, X224).shape == (1, 1000)


def test_keras_layer_names_and_geometry():
    model = models.create("vgg16")
    variables = abstract_variables(model, X224)
    assert list(variables["params"]) == [
        "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
        "block3_conv2", "block3_conv3", "block4_conv1", "block4_conv2", "block4_conv3",
        "block5_conv1", "block5_conv2", "block5_conv3", "fc1", "fc2", "predictions"]
    order = call_order(model, X224)
    assert order[-8:] == ["block5_conv3", "block5_pool", "flatten", "fc1", "drop1", "fc2",
                          "drop2", "predictions"]
    assert [n for n in order if n.endswith("pool")] == [f"block{i}_pool" for i in range(1, 6)]
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True), variables, X224)
    assert state["intermediates"]["block5_pool"]["__call__"][0].shape == (1, 7, 7, 512)
    assert state["intermediates"]["block3_pool"]["__call__"][0].shape == (1, 28, 28, 256)


def test_batch_norm_names():
    variables = abstract_variables(models.create("vgg11_bn"), X32)
    assert variables["params"]["block4_bn2"]["scale"].shape == (512,)
    assert variables["batch_stats"]["block1_bn1"]["mean"].shape == (64,)
    assert len(variables["batch_stats"]) == 8


def test_include_top_false_returns_features():
    model = models.create("vgg16", include_top=False)
    assert output_shape(model, X224).shape == (1, 7, 7, 512)
    assert param_count(model, X224) == 14_714_688  # Keras' VGG16(include_top=False)


def test_cifar_head_adapts_to_input():
    model = models.create("vgg16", num_classes=10)
    assert param_count(model, X32) == hand_count(16, False, fc1_inputs=512, classes=10)
    assert output_shape(model, X32).shape == (2, 10)
    light = models.create("vgg16", num_classes=10, classifier="global_pool")
    assert param_count(light, X32) == 14_714_688 + 512 * 10 + 10
    assert output_shape(light, jnp.zeros((2, 64, 48, 3))).shape == (2, 10)


def np_vgg(variables, x, depth, widths):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np.asarray(x, np.float64)
    for i, n_convs in enumerate(CONFIGS[depth], start=1):
        for j in range(1, n_convs + 1):
            layer = p[f"block{i}_conv{j}"]
            assert layer["kernel"].shape[-1] == widths[i - 1]
            h = np.maximum(np_conv(h, layer["kernel"], pad=1) + layer["bias"], 0)
        h = np_pool(h, 2, 2, np.max)
    h = h.reshape(len(h), -1)
    for name in ("fc1", "fc2"):
        h = np.maximum(h @ p[name]["kernel"] + p[name]["bias"], 0)
    return h @ p["predictions"]["kernel"] + p["predictions"]["bias"]


def test_small_vgg11_matches_numpy():
    model = models.create("vgg11", num_classes=3, **SMALL)
    x = randn((2, 32, 32, 3), seed=1)
    variables = numpy_variables(model, x)
    y = jax.jit(model.apply)(variables, x)
    np.testing.assert_allclose(y, np_vgg(variables, x, 11, (2, 4, 8, 16, 16)), atol=1e-4,
                               rtol=1e-4)


def test_batch_norm_train_vs_eval():
    model = models.create("vgg11_bn", num_classes=3, dropout_rate=0.0, **SMALL)
    x = randn((4, 32, 32, 3), seed=2, scale=2.0)
    variables = numpy_variables(model, x)
    train = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))
    y_train, updates = train(variables)
    y_eval = jax.jit(model.apply)(variables, x)
    assert not np.allclose(y_train, y_eval)
    # One step of the running mean: 0.9 * old + 0.1 * batch mean of block1_conv1's output.
    p = variables["params"]["block1_conv1"]
    conv1 = np_conv(x, p["kernel"], pad=1) + np.asarray(p["bias"])
    old = np.asarray(variables["batch_stats"]["block1_bn1"]["mean"])
    np.testing.assert_allclose(updates["batch_stats"]["block1_bn1"]["mean"],
                               0.9 * old + 0.1 * conv1.mean(axis=(0, 1, 2)), atol=1e-5)
    _, unchanged = jax.jit(lambda v: model.apply(v, x, mutable=["batch_stats"]))(variables)
    np.testing.assert_array_equal(unchanged["batch_stats"]["block1_bn1"]["mean"],
                                  variables["batch_stats"]["block1_bn1"]["mean"])


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn"])
def test_dropout_off_at_eval(name):
    model = models.create(name, num_classes=3, **SMALL)
    x = randn((2, 32, 32, 3), seed=3)
    check_dropout(model, numpy_variables(model, x), x)


def test_one_sgd_step_reduces_loss():
    model = models.create("vgg11_bn", num_classes=4, **SMALL)  # BatchNorm and dropout
    x = randn((8, 32, 32, 3), seed=4)
    before, after = sgd_losses(model, numpy_variables(model, x), x, jnp.arange(8) % 4,
                               lr=0.02)
    assert after < before


def test_bfloat16():
    model = models.create("vgg16_bn", dtype=jnp.bfloat16)
    assert output_shape(model, X32).dtype == jnp.bfloat16
    variables = abstract_variables(model, X32)
    assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def test_bad_inputs():
    with pytest.raises(ValueError, match="classifier"):
        output_shape(VGG(CONFIGS[11], classifier="mlp"), X32)
    with pytest.raises(ValueError, match=r"\(2, 16, 16, 3\) is too small.*>= 32"):
        output_shape(VGG(CONFIGS[11]), jnp.zeros((2, 16, 16, 3)))
    with pytest.raises(ValueError, match="stage_sizes"):
        output_shape(VGG(()), X32)
    with pytest.raises(ValueError, match="width"):
        output_shape(VGG(CONFIGS[11], width=0), X32)
    with pytest.raises(ValueError, match="Did you mean .*'vgg16'"):
        models.create("vgg61")
