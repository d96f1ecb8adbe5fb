"""Xception blocks against a plain-numpy reference (separable conv, TF "SAME" pooling, BN)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from numpy.lib.stride_tricks import sliding_window_view

from jaxcnn import layers as L
from jaxcnn.blocks import EntryFlowBlock, ExitFlowBlock, MiddleFlowBlock
from tests.blocks._helpers import init

EPS = 1e-3  # Keras' BatchNormalization epsilon


# ------------------------------------------------------------------ numpy reference


def tf_same_pads(size, window, stride):
    """TensorFlow's "SAME": output ceil(size / stride), the odd pixel of padding at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def np_sepconv(x, p):
    """Keras SeparableConv2D, 3x3, stride 1, "SAME", no bias: depthwise then pointwise."""
    dw = p["depthwise_kernel"][:, :, 0, :]                           # (3, 3, C)
    lo, hi = tf_same_pads(x.shape[1], 3, 1)
    xp = np.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    depthwise = np.einsum("nhwcij,ijc->nhwc", sliding_window_view(xp, (3, 3), axis=(1, 2)), dw)
    return depthwise @ p["pointwise_kernel"][0, 0]


def np_maxpool_same(x):
    """3x3 stride-2 max pool, TF "SAME" (padding never wins)."""
    (lo_h, hi_h), (lo_w, hi_w) = tf_same_pads(x.shape[1], 3, 2), tf_same_pads(x.shape[2], 3, 2)
    xp = np.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)), constant_values=-np.inf)
    return sliding_window_view(xp, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))


def np_bn(x, p, s):
    return (x - s["mean"]) / np.sqrt(s["var"] + EPS) * p["scale"] + p["bias"]


relu = partial(np.maximum, 0)


def reference(block, variables, x):
    """Eval-mode forward written from Keras' Xception source, not from the code under test."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    s = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["batch_stats"])
    x = np.asarray(x, np.float64)
    bn = lambda name, y: np_bn(y, p[name], s[name])
    if isinstance(block, MiddleFlowBlock):
        y = x
        for i in range(1, block.num_convs + 1):
            y = bn(f"sepconv{i}_bn", np_sepconv(relu(y), p[f"sepconv{i}"]))
        return x + y
    residual = bn("residual_bn", x[:, ::2, ::2] @ p["residual_conv"]["kernel"][0, 0])
    y = relu(x) if block.first_act else x
    y = relu(bn("sepconv1_bn", np_sepconv(y, p["sepconv1"])))
    y = bn("sepconv2_bn", np_sepconv(y, p["sepconv2"]))
    return np_maxpool_same(y) + residual




def random_x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ tests

BLOCKS = [
    (EntryFlowBlock(6, first_act=False), 4),          # Keras block2: no leading ReLU
    (EntryFlowBlock(6), 6),
    (EntryFlowBlock((5, 7)), 3),                       # exit-flow widths
    (ExitFlowBlock((4, 6)), 4),
    (MiddleFlowBlock(), 5),
    (MiddleFlowBlock(4, num_convs=2), 4),
]
IDS = [f"{type(b).__name__}-{getattr(b, 'features', '')}-{getattr(b, 'first_act', '')}"
       for b, _ in BLOCKS]


@pytest.mark.parametrize(("block", "c_in"), BLOCKS, ids=IDS)
@pytest.mark.parametrize("size", [6, 7])
def test_matches_numpy_reference(block, c_in, size):
    x = random_x((2, size, size, c_in))
    variables = init(block, x, seed=1)
    y = jax.jit(block.apply)(variables, x)
    expected = reference(block, variables, x)
    if isinstance(block, MiddleFlowBlock):
        assert y.shape == x.shape
    else:
        assert y.shape == (2, (size + 1) // 2, (size + 1) // 2, np.ravel(block.features)[-1])
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)


def test_keras_names_and_shapes():
    x = jnp.ones((1, 8, 8, 4))
    params = jax.eval_shape(ExitFlowBlock().init, jax.random.key(0), x)["params"]
    shapes = jax.tree.map(lambda a: a.shape, params)
    assert shapes == {
        "residual_conv": {"kernel": (1, 1, 4, 1024)},
        "residual_bn": {"scale": (1024,), "bias": (1024,)},
        "sepconv1": {"depthwise_kernel": (3, 3, 1, 4), "pointwise_kernel": (1, 1, 4, 728)},
        "sepconv1_bn": {"scale": (728,), "bias": (728,)},
        "sepconv2": {"depthwise_kernel": (3, 3, 1, 728), "pointwise_kernel": (1, 1, 728, 1024)},
        "sepconv2_bn": {"scale": (1024,), "bias": (1024,)},
    }
    variables = jax.eval_shape(MiddleFlowBlock().init, jax.random.key(0), x)
    assert sorted(variables["params"]) == [f"sepconv{i}{s}" for i in (1, 2, 3) for s in ("", "_bn")]
    assert EntryFlowBlock(4).norm.keywords == {"momentum": 0.99, "epsilon": 1e-3}


def test_train_mode_batch_statistics_and_keras_momentum():
    block = MiddleFlowBlock()
    x = 2.0 + random_x((4, 4, 4, 3), seed=2)
    variables = init(block, x, seed=3)
    y_eval = jax.jit(block.apply)(variables, x)
    y_train, state = jax.jit(partial(block.apply, train=True, mutable=["batch_stats"]))(
        variables, x)
    assert not np.allclose(y_eval, y_train)
    old = variables["batch_stats"]["sepconv1_bn"]["mean"]
    new = state["batch_stats"]["sepconv1_bn"]["mean"]
    sep = np_sepconv(np.maximum(np.asarray(x, np.float64), 0),
                     jax.tree.map(np.asarray, variables["params"]["sepconv1"]))
    np.testing.assert_allclose(new, 0.99 * old + 0.01 * sep.mean(axis=(0, 1, 2)), atol=1e-5)


def test_groupnorm_swaps_in_and_bfloat16():
    block = EntryFlowBlock(4, norm=partial(L.GroupNorm, num_groups=2))
    x = random_x((2, 6, 6, 4), seed=4)
    variables = init(block, x)
    assert "batch_stats" not in variables
    assert jax.jit(partial(block.apply, train=True))(variables, x).shape == (2, 3, 3, 4)
    plain = EntryFlowBlock(4)
    variables = init(plain, x)
    bf16 = EntryFlowBlock(4, sepconv=partial(L.SeparableConv, use_bias=False,
                                             dtype=jnp.bfloat16),
                          conv=partial(L.Conv, use_bias=False, dtype=jnp.bfloat16))
    y16 = jax.jit(bf16.apply)(variables, x.astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(y16.astype(np.float32), jax.jit(plain.apply)(variables, x),
                               atol=0.15, rtol=0.05)


def test_vmap_matches_batched():
    block = EntryFlowBlock(3)
    x = random_x((3, 2, 5, 5, 3), seed=5)
    variables = init(block, x[0])
    y = jax.jit(jax.vmap(lambda xi: block.apply(variables, xi)))(x)
    np.testing.assert_allclose(y[2], jax.jit(block.apply)(variables, x[2]), atol=1e-5)


@pytest.mark.parametrize("block", [EntryFlowBlock(2), MiddleFlowBlock(num_convs=2)])
def test_gradients(block):
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(6).standard_normal((2, 4, 4, 2)))
        variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), init(block, x, 7))
        f = jax.jit(lambda params, x: block.apply({**variables, "params": params}, x))
        check_grads(f, (variables["params"], x), order=1, modes=("rev",), eps=1e-6,
                    atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    x = jnp.ones((1, 4, 4, 8))
    trace = lambda module, x: jax.eval_shape(module.init, jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"`features`=6 .*\(1, 4, 4, 8\)"):
        trace(MiddleFlowBlock(6), x)
    with pytest.raises(ValueError, match="features"):
        trace(EntryFlowBlock((4, 4, 4)), x)
    with pytest.raises(ValueError, match="features"):
        trace(EntryFlowBlock(0), x)
    with pytest.raises(ValueError, match="num_convs"):
        trace(MiddleFlowBlock(num_convs=0), x)
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(4, 8\)"):
        trace(EntryFlowBlock(4), jnp.ones((4, 8)))
    with pytest.raises(TypeError, match="x"):
        trace(MiddleFlowBlock(), jnp.ones((1, 4, 4, 8), jnp.int32))
