"""Inception v1 blocks against a plain-numpy reference (sliding-window conv, BN formula)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from numpy.lib.stride_tricks import sliding_window_view

from jaxcnn import layers as L
from jaxcnn.blocks import BasicConv, Inception, InceptionAux
from tests.blocks._helpers import init

EPS = 1e-3  # torchvision's BasicConv2d BatchNorm eps


# ------------------------------------------------------------------ numpy reference


def np_conv(x, k, pad):
    """NHWC x HWIO stride-1 cross-correlation, symmetric zero padding, float64."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = sliding_window_view(x, k.shape[:2], axis=(1, 2))
    return np.einsum("nhwcij,ijco->nhwo", win, k)


def np_maxpool3_same(x):
    """3x3 stride-1 max pool padded 1 with -inf."""
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    return sliding_window_view(x, (3, 3), axis=(1, 2)).max(axis=(-2, -1))


def np_unit(p, s, y):
    """conv (no bias) -> BN(eps=1e-3, running stats) -> ReLU."""
    k = p["conv"]["kernel"]
    y = np_conv(y, k, k.shape[0] // 2)
    y = (y - s["bn"]["mean"]) / np.sqrt(s["bn"]["var"] + EPS) * p["bn"]["scale"] + p["bn"]["bias"]
    return np.maximum(y, 0)


def as_np(variables):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), variables)


def reference_inception(variables, x):
    p, s = as_np(variables["params"]), as_np(variables["batch_stats"])
    unit = lambda name, y: np_unit(p[name], s[name], y)
    x = np.asarray(x, np.float64)
    b1 = unit("branch1", x)
    b2 = unit("branch2_1", unit("branch2_0", x))
    b3 = unit("branch3_1", unit("branch3_0", x))
    b4 = unit("branch4_1", np_maxpool3_same(x))
    return np.concatenate([b1, b2, b3, b4], axis=-1)




def random_x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ Inception


@pytest.mark.parametrize("kernel_5x5", [3, 5])
@pytest.mark.parametrize("size", [5, 6])
def test_inception_matches_numpy_reference(kernel_5x5, size):
    block = Inception(3, 2, 4, 2, 5, 3, kernel_5x5=kernel_5x5)
    x = random_x((2, size, size, 6))
    variables = init(block, x, seed=1)
    y = jax.jit(block.apply)(variables, x)
    assert y.shape == (2, size, size, 3 + 4 + 5 + 3)
    np.testing.assert_allclose(y, reference_inception(variables, x), atol=1e-4, rtol=1e-4)


def test_branch_order_and_torchvision_names():
    block = Inception(1, 2, 3, 4, 5, 6, kernel_5x5=3)
    x = random_x((1, 4, 4, 7))
    variables = init(block, x)
    params = variables["params"]
    assert sorted(params) == ["branch1", "branch2_0", "branch2_1", "branch3_0", "branch3_1",
                              "branch4_1"]
    shapes = {name: params[name]["conv"]["kernel"].shape for name in params}
    assert shapes == {"branch1": (1, 1, 7, 1), "branch2_0": (1, 1, 7, 2),
                      "branch2_1": (3, 3, 2, 3), "branch3_0": (1, 1, 7, 4),
                      "branch3_1": (3, 3, 4, 5), "branch4_1": (1, 1, 7, 6)}
    assert all("bias" not in p["conv"] for p in params.values())
    # Concatenation order 1x1 | 3x3 | 5x5 | pool: each slice equals its own branch's output.
    _, state = jax.jit(partial(block.apply, capture_intermediates=True,
                               mutable=["intermediates"]))(variables, x)
    inter = state["intermediates"]
    y = inter["__call__"][0]
    pieces = [inter[n]["__call__"][0] for n in ("branch1", "branch2_1", "branch3_1", "branch4_1")]
    np.testing.assert_array_equal(y, jnp.concatenate(pieces, axis=-1))
    assert inter["branch4_0"]["__call__"][0].shape == (1, 4, 4, 7)      # the max pool


def test_basic_conv_padding_and_norm_epsilon():
    unit = BasicConv(4, 5)
    x = random_x((2, 7, 7, 3), seed=2)
    variables = init(unit, x, seed=3)
    y = jax.jit(unit.apply)(variables, x)
    assert y.shape == (2, 7, 7, 4)                                       # padding k // 2
    p, s = as_np(variables["params"]), as_np(variables["batch_stats"])
    np.testing.assert_allclose(y, np_unit(p, s, np.asarray(x, np.float64)), atol=1e-4)
    strided = BasicConv(4, 7, strides=2, padding=3)
    assert jax.eval_shape(strided.init_with_output, jax.random.key(0), x)[0].shape == (2, 4, 4, 4)


def test_train_mode_batch_statistics_and_state_update():
    block = Inception(2, 2, 2, 2, 2, 2)
    x = 2.0 + random_x((4, 4, 4, 3), seed=4)
    variables = init(block, x)
    y_eval = jax.jit(block.apply)(variables, x)
    y_train, state = jax.jit(partial(block.apply, train=True, mutable=["batch_stats"]))(
        variables, x)
    assert not np.allclose(y_eval, y_train)
    assert not np.allclose(state["batch_stats"]["branch1"]["bn"]["mean"],
                           variables["batch_stats"]["branch1"]["bn"]["mean"])


def test_groupnorm_and_localconv_swap_in():
    norm = partial(L.GroupNorm, num_groups=2)
    block = Inception(2, 2, 4, 2, 4, 2, norm=norm, conv=partial(L.LocalConv, use_bias=False,
                                                                   padding=1))
    x = random_x((2, 4, 4, 4), seed=5)
    variables = init(block, x)
    assert "batch_stats" not in variables
    assert variables["params"]["branch2_1"]["conv"]["kernel"].shape == (4, 4, 18, 4)
    assert jax.jit(partial(block.apply, train=True))(variables, x).shape == (2, 4, 4, 12)


def test_1d_input_and_vmap_jit_bfloat16():
    block = Inception(2, 2, 3, 2, 3, 2)
    x1 = random_x((2, 9, 4), seed=6)
    assert jax.eval_shape(block.init_with_output, jax.random.key(0), x1)[0].shape == (2, 9, 10)
    x = random_x((3, 2, 5, 5, 4), seed=7)
    variables = init(block, x[0])
    y = jax.jit(jax.vmap(lambda xi: block.apply(variables, xi)))(x)
    np.testing.assert_allclose(y[2], jax.jit(block.apply)(variables, x[2]), atol=1e-5)
    bf16 = Inception(2, 2, 3, 2, 3, 2, conv=partial(L.Conv, use_bias=False, dtype=jnp.bfloat16))
    y16 = jax.jit(bf16.apply)(variables, x[0].astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(y16.astype(np.float32), y[0], atol=0.1, rtol=0.05)


def test_gradients():
    block = Inception(1, 1, 2, 1, 2, 1, kernel_5x5=3)
    with jax.enable_x64(True):
        x = np.random.default_rng(8).standard_normal((2, 3, 3, 2))
        variables = init(block, jnp.asarray(x), seed=9)
        variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)
        f = jax.jit(lambda params, x: block.apply({**variables, "params": params}, x))
        check_grads(f, (variables["params"], jnp.asarray(x)), order=1, modes=("rev",),
                    eps=1e-6, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    x = jnp.ones((1, 4, 4, 3))
    trace = lambda module, x: jax.eval_shape(module.init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="kernel_5x5.*odd"):
        trace(Inception(1, 1, 1, 1, 1, 1, kernel_5x5=4), x)
    with pytest.raises(ValueError, match="pool_proj"):
        trace(Inception(1, 1, 1, 1, 1, 0), x)
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(4, 3\)"):
        trace(Inception(1, 1, 1, 1, 1, 1), jnp.ones((4, 3)))
    with pytest.raises(TypeError, match="x"):
        trace(Inception(1, 1, 1, 1, 1, 1), jnp.ones((1, 4, 4, 3), jnp.int32))
    with pytest.raises(ValueError, match="num_classes"):
        trace(InceptionAux(0), x)


# ------------------------------------------------------------------ InceptionAux


def test_aux_head_matches_numpy_reference_with_pytorch_flatten_order():
    head = InceptionAux(5, conv_features=3, hidden=6)
    x = random_x((2, 8, 8, 4), seed=10)
    variables = init(head, x, seed=11)
    y = jax.jit(head.apply)(variables, x)                  # eval: dropout off
    p, s = as_np(variables["params"]), as_np(variables["batch_stats"])
    pooled = np.asarray(x, np.float64).reshape(2, 4, 2, 4, 2, 4).mean(axis=(2, 4))
    z = np_unit(p["conv"], s["conv"], pooled)              # (2, 4, 4, 3)
    z = z.transpose(0, 3, 1, 2).reshape(2, -1)             # (N, C, H, W) flatten
    z = np.maximum(z @ p["fc1"]["kernel"] + p["fc1"]["bias"], 0)
    np.testing.assert_allclose(y, z @ p["fc2"]["kernel"] + p["fc2"]["bias"], atol=1e-4)
    assert p["fc1"]["kernel"].shape == (48, 6)


def test_aux_head_dropout_only_in_training():
    head = InceptionAux(4, conv_features=2, hidden=64, dropout_rate=0.5)
    x = random_x((2, 4, 4, 3), seed=12)
    variables = init(head, x)
    apply = jax.jit(head.apply)
    np.testing.assert_array_equal(apply(variables, x), apply(variables, x))
    train = jax.jit(partial(head.apply, train=True, mutable=["batch_stats"]))
    run = lambda k: train(variables, x, rngs={"dropout": jax.random.key(k)})[0]
    assert not np.allclose(run(1), run(2))
