"""Residual blocks against a plain-numpy reference (sliding-window convolution, BN formula)."""

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxcnn import layers as L
from jaxcnn.blocks import BasicBlock, Bottleneck, PreActBlock, PreActBottleneck
from tests.blocks._helpers import init as randomize
from tests.models import _numpy_reference as ref

# ------------------------------------------------------------------ numpy reference


def reference(block, variables, x, strided_pad=1):
    """Eval-mode forward of ``block`` re-derived from the papers and torchvision (pad 1 on
    both sides for every 3x3 convolution), not from the code: ``ref.residual_block``."""
    return ref.residual_block(
        ref.as_np(variables["params"]), ref.as_np(variables["batch_stats"]),
        np.asarray(x, np.float64), stride=block.strides,
        preact=isinstance(block, PreActBlock | PreActBottleneck),
        bottleneck=isinstance(block, Bottleneck | PreActBottleneck),
        stride_on=getattr(block, "stride_on", "3x3"), strided_pad=strided_pad)


BLOCKS = [
    (BasicBlock(8), 8),                              # identity shortcut
    (BasicBlock(8, strides=2), 8),                   # projection for the stride
    (BasicBlock(12), 8),                             # projection for the width
    (Bottleneck(4), 16),
    (Bottleneck(4, strides=2), 8),
    (Bottleneck(4, strides=2, stride_on="1x1"), 16),
    (PreActBlock(8), 8),
    (PreActBlock(8, strides=2), 4),
    (PreActBottleneck(4), 16),
    (PreActBottleneck(4, strides=2), 8),
    (PreActBottleneck(4, strides=2, stride_on="1x1"), 8),
]
# Strided blocks at an odd size (the output rounds up) and an even one, where torchvision's
# padding=1 pads (1, 1) but "SAME" would pad (0, 1).
CASES = [(b, c, size) for b, c in BLOCKS for size in ((7, 8) if b.strides == 2 else (6,))]
IDS = [f"{type(b).__name__}-f{b.filters}-s{b.strides}-{getattr(b, 'stride_on', '')}-c{c}-{n}"
       for b, c, n in CASES]


@pytest.mark.parametrize(("block", "c_in", "size"), CASES, ids=IDS)
def test_matches_numpy_reference(block, c_in, size):
    x = np.random.default_rng(0).standard_normal((2, size, size, c_in)).astype(np.float32)
    variables = randomize(block, x, seed=1)       # random biases and running statistics
    y = block.apply(variables, x)
    out = -(-size // block.strides)
    assert y.shape == (2, out, out, block.filters * block.expansion)
    expected = reference(block, variables, x)
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)
    if block.strides == 2 and size % 2 == 0 and getattr(block, "stride_on", "3x3") == "3x3":
        # the even size tells torchvision's padding from "SAME"
        assert not np.allclose(y, reference(block, variables, x, strided_pad=(0, 1)),
                               atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(("block", "c_in", "names"), [
    (BasicBlock(8), 8, ["bn1", "bn2", "conv1", "conv2"]),
    (Bottleneck(4, strides=2), 8,
     ["bn1", "bn2", "bn3", "conv1", "conv2", "conv3", "downsample_bn", "downsample_conv"]),
    (PreActBlock(8, strides=2), 8, ["bn1", "bn2", "conv1", "conv2", "downsample_conv"]),
    (PreActBottleneck(4), 16, ["bn1", "bn2", "bn3", "conv1", "conv2", "conv3"]),
])
def test_torchvision_names_and_no_conv_bias(block, c_in, names):
    variables = jax.eval_shape(block.init, jax.random.key(0), jnp.ones((1, 4, 4, c_in)))
    assert sorted(variables["params"]) == names
    assert all("bias" not in p for k, p in variables["params"].items() if "conv" in k)


@pytest.mark.parametrize("stride_on, conv1_hw, conv2_hw", [("3x3", 8, 4), ("1x1", 4, 4)])
@pytest.mark.parametrize("cls", [Bottleneck, PreActBottleneck])
def test_stride_placement_v1_vs_v15(cls, stride_on, conv1_hw, conv2_hw):
    block = cls(4, strides=2, stride_on=stride_on)
    x = jnp.ones((1, 8, 8, 16))
    variables = jax.eval_shape(block.init, jax.random.key(0), x)
    _, state = jax.eval_shape(partial(block.apply, capture_intermediates=True,
                                      mutable=["intermediates"]), variables, x)
    inter = state["intermediates"]
    assert inter["conv1"]["__call__"][0].shape == (1, conv1_hw, conv1_hw, 4)
    assert inter["conv2"]["__call__"][0].shape == (1, conv2_hw, conv2_hw, 4)
    assert variables["params"]["conv1"]["kernel"].shape == (1, 1, 16, 4)


def test_groupnorm_swaps_in():
    block = BasicBlock(8, strides=2, norm=partial(L.GroupNorm, num_groups=4))
    x = np.random.default_rng(2).standard_normal((2, 6, 6, 8)).astype(np.float32)
    variables = randomize(block, x, seed=0)
    assert "batch_stats" not in variables
    y = block.apply(variables, x, train=True)
    assert y.shape == (2, 3, 3, 8)
    # per-example statistics: example 0 does not depend on example 1
    y0 = block.apply(variables, x[:1], train=True)
    np.testing.assert_allclose(y[:1], y0, atol=1e-5)


def test_localconv_swaps_in():
    block = BasicBlock(8, conv=partial(L.LocalConv, use_bias=False))
    x = np.random.default_rng(3).standard_normal((2, 5, 5, 8)).astype(np.float32)
    variables = randomize(block, x, seed=0)
    # unshared kernels: one (3 * 3 * 8, 8) matrix per output position
    assert variables["params"]["conv1"]["kernel"].shape == (5, 5, 72, 8)
    assert block.apply(variables, x).shape == (2, 5, 5, 8)


@pytest.mark.parametrize("shape", [(2, 9, 8), (1, 4, 5, 4, 8)])
@pytest.mark.parametrize("cls", [BasicBlock, PreActBottleneck])
def test_1d_and_3d_inputs(cls, shape):
    block = cls(4, strides=2)
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    y = block.apply(randomize(block, x, seed=0), x)
    assert y.shape == (shape[0], *((s + 1) // 2 for s in shape[1:-1]), 4 * block.expansion)


def test_zero_init_residual_starts_as_identity():
    # v1: zero last-norm scale, so relu(0 + x); v2: zero last kernel, so 0 + x
    x = np.random.default_rng(4).standard_normal((2, 4, 4, 8)).astype(np.float32)
    for block, expected in [(BasicBlock(8, zero_init_residual=True), np.maximum(x, 0)),
                            (PreActBottleneck(2, zero_init_residual=True), x)]:
        variables = block.init(jax.random.key(0), x)
        np.testing.assert_allclose(block.apply(variables, x), expected, atol=1e-6)


def test_train_mode_uses_batch_statistics_and_updates_state():
    block = BasicBlock(8)
    x = 2.0 + np.random.default_rng(5).standard_normal((4, 4, 4, 8)).astype(np.float32)
    variables = randomize(block, x, seed=0)
    y_eval, state = block.apply(variables, x, mutable=["batch_stats"])
    assert jax.tree.all(jax.tree.map(jnp.array_equal, state["batch_stats"],
                                     variables["batch_stats"]))
    y_train, state = block.apply(variables, x, train=True, mutable=["batch_stats"])
    assert not np.allclose(y_eval, y_train)
    assert not np.allclose(state["batch_stats"]["bn1"]["mean"],
                           variables["batch_stats"]["bn1"]["mean"])


def test_jit_vmap_and_bfloat16():
    block = PreActBlock(8, strides=2)
    x = np.random.default_rng(6).standard_normal((3, 2, 6, 6, 8)).astype(np.float32)
    variables = randomize(block, x[0], seed=0)
    y = jax.jit(jax.vmap(lambda xi: block.apply(variables, xi)))(x)
    np.testing.assert_allclose(y[1], block.apply(variables, x[1]), atol=1e-5)
    block16 = PreActBlock(8, strides=2, conv=partial(L.Conv, use_bias=False, dtype=jnp.bfloat16))
    y16 = block16.apply(variables, x[0].astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    assert jax.tree.all(jax.tree.map(lambda p: p.dtype == jnp.float32, variables["params"]))
    np.testing.assert_allclose(y16.astype(np.float32), y[0], atol=0.1, rtol=0.05)


@pytest.mark.parametrize(("block", "c_in"), [(BasicBlock(3, strides=2), 2),
                                             (PreActBottleneck(1, strides=2), 2)])
def test_gradients(block, c_in):
    with jax.enable_x64(True):
        x = np.random.default_rng(7).standard_normal((2, 4, 4, c_in))
        variables = randomize(block, jnp.asarray(x), seed=8)
        variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)
        f = jax.jit(lambda params, x: block.apply({**variables, "params": params}, x))
        check_grads(f, (variables["params"], jnp.asarray(x)), order=1, modes=("rev",),
                    eps=1e-6, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    x = jnp.ones((1, 4, 4, 8))
    trace = lambda block, x: jax.eval_shape(block.init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="stride_on"):
        trace(Bottleneck(4, stride_on="5x5"), x)
    with pytest.raises(ValueError, match="stride_on"):
        trace(PreActBottleneck(4, stride_on="3x3 "), x)
    with pytest.raises(ValueError, match="strides"):
        trace(BasicBlock(8, strides=0), x)
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(8, 4\)"):
        trace(PreActBlock(8), jnp.ones((8, 4)))
    with pytest.raises(TypeError, match="x"):
        trace(BasicBlock(8), jnp.ones((1, 4, 4, 8), jnp.int32))


def test_is_a_linen_module_with_flags():
    assert issubclass(BasicBlock, nn.Module)
    assert (BasicBlock.expansion, Bottleneck.expansion) == (1, 4)
    assert not Bottleneck.preact and PreActBlock.preact and PreActBottleneck.preact
