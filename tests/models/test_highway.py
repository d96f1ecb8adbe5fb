"""Convolutional highway network: hand count, stage layout, gates at init, deep training."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import layers as L
from jaxcnn import models
from jaxcnn.models.highway import HighwayNet

from . import _numpy_reference as ref
from ._zoo1_helpers import (
    abstract_variables,
    call_order,
    check_dropout,
    init,
    numpy_variables,
    output_shape,
    param_count,
    quick_jit,
    randn,
    sgd_losses,
)

CIFAR = jnp.zeros((2, 32, 32, 3))
MNIST = jnp.zeros((2, 28, 28, 1))


def hand_count(channels, width=64, depth=9, classes=10, k=3):
    stem = k * k * channels * width + width
    highway = 2 * (k * k * width * width + width)  # transform H and gate T
    return stem + depth * highway + width * classes + classes


@pytest.mark.parametrize(
    ("x", "options", "count"),
    [(CIFAR, {}, 667_146), (MNIST, {}, 665_994),
     (CIFAR, {"depth": 30}, hand_count(3, depth=30)),
     (MNIST, {"depth": 4, "width": 16, "stages": 2}, hand_count(1, width=16, depth=4))],
)
def test_parameter_counts(x, options, count):
    assert hand_count(3) == 667_146 and hand_count(1) == 665_994
    model = models.create("highway_net", num_classes=10, **options)
    assert param_count(model, x) == count
    assert output_shape(model, x).shape == (2, 10)


def test_stage_layout_and_names():
    model = HighwayNet(depth=10, width=8, stages=3)
    assert call_order(model, CIFAR) == (
        ["stem_conv"] + [f"stage1_highway{j}" for j in range(1, 5)] + ["stage1_pool"]
        + [f"stage2_highway{j}" for j in range(1, 4)] + ["stage2_pool"]
        + [f"stage3_highway{j}" for j in range(1, 4)] + ["global_pool", "dropout", "head"])
    variables = abstract_variables(model, CIFAR)
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True), variables,
                              CIFAR)
    assert state["intermediates"]["stage3_highway3"]["__call__"][0].shape == (2, 8, 8, 8)


def test_gates_at_init_are_negative_biased_and_in_unit_interval():
    model = HighwayNet(depth=4, width=8, stages=2, gate_bias=-3.0)
    x = randn((2, 12, 12, 3), seed=1)
    variables = init(model, x)
    for name in ("stage1_highway1", "stage2_highway2"):
        np.testing.assert_array_equal(variables["params"][name]["gate"]["bias"], -3.0)
    _, state = jax.jit(partial(model.apply, mutable=["intermediates"]))(variables, x)
    gates = [np.asarray(v["gates"][0]) for v in state["intermediates"].values()]
    assert len(gates) == 4
    for t in gates:
        assert ((t > 0) & (t < 1)).all()
        assert t.mean() < 0.2  # sigmoid(-3) = 0.047: the stack starts close to the identity


@pytest.mark.parametrize("norm", [None, L.BatchNorm], ids=["paper", "batchnorm"])
def test_matches_numpy_reference(norm):
    # depth 5 over 2 stages is 3 + 2 layers; 10x10 pooled to 5x5; random biases (the gate's
    # included) and, with a norm, random running statistics; dropout off in eval
    model = HighwayNet(num_classes=5, depth=5, width=4, stages=2, dropout_rate=0.5, norm=norm)
    x = randn((2, 10, 10, 3), seed=5)
    variables = numpy_variables(model, x, seed=6)
    expected = ref.highway_net(variables, x, stage_sizes=(3, 2))
    ref.assert_close(quick_jit(model.apply)(variables, x), expected)


def test_dropout_off_at_eval():
    model = HighwayNet(depth=2, width=8, stages=1, dropout_rate=0.5)
    x = randn((2, 8, 8, 1), seed=3)
    check_dropout(model, numpy_variables(model, x), x)


def test_deep_network_one_sgd_step_reduces_loss():
    # 16 highway layers: the negative gate bias keeps the deep plain stack trainable.
    model = models.create("highway_net", num_classes=4, depth=16, width=4, stages=2)
    x = randn((8, 8, 8, 3), seed=4)
    variables = numpy_variables(model, x)
    variables["params"] = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.full_like(a, -2.0)
        if path[-2].key == "gate" and path[-1].key == "bias" else a, variables["params"])
    before, after = sgd_losses(model, variables, x, jnp.arange(8) % 4, lr=0.1)
    assert after < before


def test_bfloat16():
    model = models.create("highway_net", dtype=jnp.bfloat16, norm=L.BatchNorm)
    assert output_shape(model, CIFAR).dtype == jnp.bfloat16
    variables = abstract_variables(model, CIFAR)
    assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"`stages` \(4\) must not exceed `depth` \(3\)"):
        output_shape(HighwayNet(depth=3, stages=4), CIFAR)
    with pytest.raises(ValueError, match="depth"):
        output_shape(HighwayNet(depth=0), CIFAR)
    with pytest.raises(ValueError, match="width"):
        output_shape(HighwayNet(width=0), CIFAR)
    with pytest.raises(TypeError, match="`x`"):
        output_shape(HighwayNet(), jnp.zeros((2, 32, 32, 3), jnp.int8))
