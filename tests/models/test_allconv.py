"""All-CNN-C (Springenberg et al. 2014): count by hand, no pooling layers, numpy forward."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import layers as L
from jaxcnn import models
from jaxcnn.models.allconv import AllConvNet

from ._zoo1_helpers import (
    abstract_variables,
    call_order,
    check_dropout,
    np_conv,
    numpy_variables,
    output_shape,
    param_count,
    randn,
    sgd_losses,
)

X32 = jnp.zeros((2, 32, 32, 3))
# Table 2, model C: conv 3x3 96, 96, 96/2, 192, 192, 192/2, 192 VALID, 1x1 192, 1x1 10.
HAND_COUNT = (9 * 3 * 96 + 96) + 2 * (9 * 96 * 96 + 96) + (9 * 96 * 192 + 192) \
    + 3 * (9 * 192 * 192 + 192) + (192 * 192 + 192) + (192 * 10 + 10)


def test_parameter_count():
    assert HAND_COUNT == 1_369_738
    model = models.create("allconv", num_classes=10)
    assert param_count(model, X32) == 1_369_738
    assert output_shape(model, X32).shape == (2, 10)


def test_geometry_and_strided_downsampling():
    model = AllConvNet()
    variables = abstract_variables(model, X32)
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True), variables, X32)
    shapes = {k: v["__call__"][0].shape for k, v in state["intermediates"].items()
              if k.startswith("conv")}
    assert shapes["conv2"] == (2, 32, 32, 96)
    assert shapes["conv3"] == (2, 16, 16, 96)
    assert shapes["conv6"] == (2, 8, 8, 192)
    assert shapes["conv7"] == (2, 6, 6, 192)
    assert shapes["conv9"] == (2, 6, 6, 10)


def test_no_pooling_layers():
    types = []

    def record(module, method_name):
        if len(module.scope.path) == 1:
            types.append(type(module))
        return False

    model = AllConvNet(input_dropout=0.2, dropout_rate=0.5)
    jax.eval_shape(partial(model.apply, capture_intermediates=record),
                   abstract_variables(model, X32), X32)
    pooling = (L.MaxPool, L.AvgPool, L.LPPool, L.StochasticPool, L.AdaptiveAvgPool,
               L.AdaptiveMaxPool, L.SpatialPyramidPool, L.GlobalMaxPool)
    assert not [t for t in types if issubclass(t, pooling)]
    assert types.count(L.Conv) == 9
    assert types[-1] is L.GlobalAvgPool  # the classifier's average, replacing dense layers
    assert call_order(model, X32) == ["drop_input", "conv1", "conv2", "conv3", "drop3",
                                      "conv4", "conv5", "conv6", "drop6", "conv7", "conv8",
                                      "conv9", "global_pool"]


def np_allconv(variables, x, head_relu=False):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np.asarray(x, np.float64)
    geometry = [(1, 1), (1, 1), (2, 1), (1, 1), (1, 1), (2, 1), (1, 0), (1, 0), (1, 0)]
    for i, (stride, pad) in enumerate(geometry, start=1):
        h = np_conv(h, p[f"conv{i}"]["kernel"], stride, pad) + p[f"conv{i}"]["bias"]
        if i < 9 or head_relu:
            h = np.maximum(h, 0)
    return h.mean(axis=(1, 2))


@pytest.mark.parametrize("head_relu", [False, True])
def test_small_forward_matches_numpy(head_relu):
    model = AllConvNet(num_classes=5, width=3, head_relu=head_relu)
    x = randn((2, 32, 32, 3), seed=1)
    variables = numpy_variables(model, x)
    variables["params"]["conv9"]["bias"] = randn((5,), seed=2)  # some logits negative
    y = jax.jit(model.apply)(variables, x)
    np.testing.assert_allclose(y, np_allconv(variables, x, head_relu), atol=1e-5)
    assert (np.asarray(y) >= 0).all() == head_relu


def test_dropout_off_at_eval():
    model = AllConvNet(width=2, input_dropout=0.2, dropout_rate=0.5)
    x = randn((2, 16, 16, 3), seed=3)
    check_dropout(model, numpy_variables(model, x), x)


def test_one_sgd_step_reduces_loss():
    model = models.create("allconv", num_classes=4, width=4, dropout_rate=0.2)
    x = randn((8, 16, 16, 3), seed=4)
    before, after = sgd_losses(model, numpy_variables(model, x), x, jnp.arange(8) % 4,
                               lr=0.1)
    assert after < before


def test_bfloat16():
    model = models.create("allconv", dtype=jnp.bfloat16)
    assert output_shape(model, X32).dtype == jnp.bfloat16
    params = abstract_variables(model, X32)["params"]
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"9x9.*\(2, 8, 8, 3\)"):
        output_shape(AllConvNet(), jnp.zeros((2, 8, 8, 3)))
    assert output_shape(AllConvNet(width=2), jnp.zeros((2, 9, 9, 3))).shape == (2, 10)
    with pytest.raises(ValueError, match="width"):
        output_shape(AllConvNet(width=-1), X32)
    with pytest.raises(ValueError, match="`x` must have rank 4"):
        output_shape(AllConvNet(), jnp.zeros((32, 32, 3)))
