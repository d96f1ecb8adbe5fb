"""DenseNet blocks against a plain-numpy reference (sliding-window conv, BN formula)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from numpy.lib.stride_tricks import sliding_window_view

from jaxcnn import layers as L
from jaxcnn.blocks import DenseBlock, DenseLayer, Transition
from tests.blocks._helpers import init

EPS = 1e-5  # L.BatchNorm's default epsilon, torchvision's too


# ------------------------------------------------------------------ numpy reference


def np_conv(x, k, pad):
    """NHWC x HWIO stride-1 cross-correlation, symmetric zero padding, float64."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = sliding_window_view(x, k.shape[:2], axis=(1, 2))
    return np.einsum("nhwcij,ijco->nhwo", win, k)


def np_bn_relu(x, p, s):
    return np.maximum((x - s["mean"]) / np.sqrt(s["var"] + EPS) * p["scale"] + p["bias"], 0)


def np_layer(p, s, x):
    """BN-ReLU-[1x1 conv-BN-ReLU]-3x3 conv (Huang et al. 2017, Sec. 3, "bottleneck layers")."""
    y = np_bn_relu(x, p["norm1"], s["norm1"])
    if "conv1" in p:
        y = np_bn_relu(np_conv(y, p["conv1"]["kernel"], 0), p["norm2"], s["norm2"])
    return np_conv(y, p["conv2"]["kernel"], 1)


def np_block(p, s, x):
    features = [x]
    for i in range(len(p)):
        name = f"denselayer{i + 1}"
        features.append(np_layer(p[name], s[name], np.concatenate(features, axis=-1)))
    return np.concatenate(features, axis=-1)


def np_transition(p, s, x):
    y = np_conv(np_bn_relu(x, p["norm"], s["norm"]), p["conv"]["kernel"], 0)
    n, h, w, c = y.shape
    y = y[:, : h // 2 * 2, : w // 2 * 2]                       # AvgPool2d(2, 2) floors
    return y.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))




def as_np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def random_x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("bn_size", [4, None])
def test_dense_layer_matches_numpy_reference(bn_size):
    layer = DenseLayer(3, bn_size=bn_size)
    x = random_x((2, 5, 5, 4))
    variables = init(layer, x, seed=1)
    y = jax.jit(layer.apply)(variables, x)
    assert y.shape == (2, 5, 5, 3)
    expected = np_layer(as_np(variables["params"]), as_np(variables["batch_stats"]), x)
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)
    names = ["conv1", "conv2", "norm1", "norm2"] if bn_size else ["conv2", "norm1"]
    assert sorted(variables["params"]) == names
    if bn_size:
        assert variables["params"]["conv1"]["kernel"].shape == (1, 1, 4, 12)


@pytest.mark.parametrize(("num_layers", "growth_rate", "c_in"), [(1, 2, 3), (3, 2, 4), (4, 3, 2)])
def test_dense_block_concatenates_input_then_layers(num_layers, growth_rate, c_in):
    block = DenseBlock(num_layers, growth_rate, bn_size=2)
    x = random_x((2, 4, 4, c_in), seed=2)
    variables = init(block, x, seed=3)
    y = jax.jit(block.apply)(variables, x)
    assert y.shape == (2, 4, 4, c_in + num_layers * growth_rate)
    np.testing.assert_array_equal(y[..., :c_in], x)                # input passes through first
    expected = np_block(as_np(variables["params"]), as_np(variables["batch_stats"]), x)
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)
    # layer j reads C + (j - 1) k channels
    for j in range(1, num_layers + 1):
        kernel = variables["params"][f"denselayer{j}"]["conv1"]["kernel"]
        assert kernel.shape == (1, 1, c_in + (j - 1) * growth_rate, 2 * growth_rate)


@pytest.mark.parametrize(("size", "c_in", "kwargs", "c_out"), [
    (6, 8, {}, 4),
    (5, 7, {}, 3),                                   # floor(0.5 * 7); 5 -> 2 pooled
    (4, 10, {"compression": 0.3}, 3),
    (4, 10, {"features": 6}, 6),
    (4, 3, {"compression": 1.0}, 3),
])
def test_transition_matches_numpy_reference(size, c_in, kwargs, c_out):
    transition = Transition(**kwargs)
    x = random_x((2, size, size, c_in), seed=4)
    variables = init(transition, x, seed=5)
    y = jax.jit(transition.apply)(variables, x)
    assert y.shape == (2, size // 2, size // 2, c_out)
    expected = np_transition(as_np(variables["params"]), as_np(variables["batch_stats"]), x)
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)
    assert sorted(variables["params"]) == ["conv", "norm"]


def test_dropout_only_in_training():
    layer = DenseLayer(16, drop_rate=0.5)
    x = random_x((2, 4, 4, 3), seed=6)
    variables = init(layer, x, seed=7)
    plain = DenseLayer(16)
    np.testing.assert_allclose(jax.jit(layer.apply)(variables, x),
                               jax.jit(plain.apply)(variables, x), atol=1e-6)
    y, _ = jax.jit(partial(layer.apply, train=True, mutable=["batch_stats"]))(
        variables, x, rngs={"dropout": jax.random.key(0)})
    assert 0.3 < float(jnp.mean(y == 0)) < 0.7


def test_train_mode_batch_statistics_and_state_update():
    block = DenseBlock(2, 2)
    x = 2.0 + random_x((4, 4, 4, 3), seed=8)
    variables = init(block, x, seed=9)
    y_eval = jax.jit(block.apply)(variables, x)
    y_train, state = jax.jit(partial(block.apply, train=True, mutable=["batch_stats"]))(
        variables, x)
    assert not np.allclose(y_eval, y_train)
    old = variables["batch_stats"]["denselayer1"]["norm1"]["mean"]
    np.testing.assert_allclose(state["batch_stats"]["denselayer1"]["norm1"]["mean"],
                               0.9 * old + 0.1 * x.mean(axis=(0, 1, 2)), atol=1e-5)


def test_groupnorm_swaps_in():
    block = DenseBlock(2, 4, norm=partial(L.GroupNorm, num_groups=2))
    x = random_x((2, 4, 4, 4), seed=10)
    variables = init(block, x)
    assert "batch_stats" not in variables
    y = jax.jit(partial(block.apply, train=True))(variables, x)
    # per-example statistics: example 0 does not depend on example 1
    np.testing.assert_allclose(y[:1], jax.jit(block.apply)(variables, x[:1]), atol=1e-5)


def test_1d_3d_vmap_and_bfloat16():
    block = DenseBlock(2, 2)
    for shape in [(2, 7, 3), (1, 4, 3, 4, 3)]:
        y = jax.eval_shape(block.init_with_output, jax.random.key(0), jnp.ones(shape))[0]
        assert y.shape == (*shape[:-1], 7)
    x = random_x((3, 2, 4, 4, 3), seed=11)
    variables = init(block, x[0])
    y = jax.jit(jax.vmap(lambda xi: block.apply(variables, xi)))(x)
    np.testing.assert_allclose(y[1], jax.jit(block.apply)(variables, x[1]), atol=1e-5)
    bf16 = DenseBlock(2, 2, conv=partial(L.Conv, use_bias=False, dtype=jnp.bfloat16))
    y16 = jax.jit(bf16.apply)(variables, x[0].astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(y16.astype(np.float32), y[0], atol=0.1, rtol=0.05)


@pytest.mark.parametrize("module", [DenseBlock(2, 2, bn_size=1), Transition()])
def test_gradients(module):
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(12).standard_normal((2, 4, 4, 2)))
        variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), init(module, x, 13))
        f = jax.jit(lambda params, x: module.apply({**variables, "params": params}, x))
        check_grads(f, (variables["params"], x), order=1, modes=("rev",), eps=1e-6,
                    atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    x = jnp.ones((1, 4, 4, 8))
    trace = lambda module, x: jax.eval_shape(module.init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="compression"):
        trace(Transition(compression=0.0), x)
    with pytest.raises(ValueError, match=r"compression.*\(1, 4, 4, 8\)"):
        trace(Transition(compression=0.1), x)          # floor(0.8) = 0 channels
    with pytest.raises(ValueError, match="features"):
        trace(Transition(features=0), x)
    with pytest.raises(ValueError, match="num_layers"):
        trace(DenseBlock(0, 4), x)
    with pytest.raises(ValueError, match="growth_rate"):
        trace(DenseLayer(-1), x)
    with pytest.raises(ValueError, match="bn_size"):
        trace(DenseLayer(4, bn_size=0), x)
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(4, 8\)"):
        trace(DenseBlock(2, 4), jnp.ones((4, 8)))
    with pytest.raises(TypeError, match="x"):
        trace(DenseLayer(4), jnp.ones((1, 4, 4, 8), jnp.int32))
