"""GoogLeNet: torchvision parameter counts, native shapes, aux heads, one SGD step."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn
from jaxcnn import layers as L
from jaxcnn.models import create, list_models
from jaxcnn.models.googlenet import (
    GoogLeNet,
    combine_aux_losses,
    googlenet,
    googlenet_loss_weights,
)
from tests.models._zoo1_helpers import numpy_variables

NATIVE = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
KEY = jax.random.key(0)


def numpy_init(module, x, seed=0):
    """Parameters drawn in numpy: a real ``init`` mostly compiles random initializers on CPU."""
    return numpy_variables(module, x, seed)


def small_batch(size=32, n=4, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, size, size, 3)).astype(np.float32)
    return x, rng.integers(0, classes, n)


# ------------------------------------------------------------------ counts and shapes


@pytest.mark.parametrize(("aux_logits", "count"), [(False, 6_624_904), (True, 13_004_888)])
def test_torchvision_parameter_count_and_native_output(aux_logits, count):
    model = googlenet(aux_logits=aux_logits)
    logits, variables = jax.eval_shape(model.init_with_output, KEY, NATIVE)
    assert logits.shape == (1, 1000)
    assert jaxcnn.count_params(variables["params"]) == count
    assert ("aux1" in variables["params"]) == aux_logits


def test_paper_5x5_kernels_add_16_per_reduce_times_out_channel():
    # sum over the nine modules of ch5x5_reduce * ch5x5 (Table 1), times 5*5 - 3*3 = 16
    pairs = [(16, 32), (32, 96), (16, 48), (24, 64), (24, 64), (32, 64), (32, 128), (32, 128),
             (48, 128)]
    extra = 16 * sum(r * c for r, c in pairs)
    variables = jax.eval_shape(googlenet(kernel_5x5=5).init, KEY, NATIVE)
    assert jaxcnn.count_params(variables["params"]) == 6_624_904 + extra == 7_005_832


def test_native_feature_maps_match_torchvision_comments():
    model = googlenet()
    _, variables = jax.eval_shape(partial(model.init_with_output, capture_intermediates=True),
                                  KEY, NATIVE)
    shapes = {k: v["__call__"][0].shape[1:] for k, v in variables["intermediates"].items()
              if "__call__" in v}
    assert shapes["conv1"] == (112, 112, 64)
    assert shapes["maxpool1"] == (56, 56, 64)
    assert shapes["conv3"] == (56, 56, 192)
    assert shapes["maxpool2"] == (28, 28, 192)
    assert shapes["inception3b"] == (28, 28, 480)
    assert shapes["maxpool3"] == (14, 14, 480)
    assert shapes["inception4a"] == (14, 14, 512)
    assert shapes["inception4d"] == (14, 14, 528)
    assert shapes["inception4e"] == (14, 14, 832)
    assert shapes["maxpool4"] == (7, 7, 832)
    assert shapes["inception5b"] == (7, 7, 1024)
    assert shapes["global_pool"] == (1024,)


def test_registered_and_options_forwarded():
    assert "googlenet" in list_models()
    model = create("googlenet", num_classes=7, aux_logits=True, width=0.5)
    assert isinstance(model, GoogLeNet) and model.num_classes == 7 and model.width == 0.5


# ------------------------------------------------------------------ aux heads and dropout


def test_aux_outputs_only_in_training_and_dropout_off_at_eval():
    model = GoogLeNet(num_classes=5, aux_logits=True, width=1 / 16, dropout_rate=0.5)
    x, _ = small_batch()
    variables = numpy_init(model, x)
    train = jax.jit(partial(model.apply, train=True, mutable=["batch_stats"]))
    (logits, aux1, aux2), state = train(variables, x, rngs={"dropout": jax.random.key(1)})
    assert logits.shape == aux1.shape == aux2.shape == (4, 5)
    assert not np.allclose(aux1, aux2)
    # both aux heads' BatchNorms are updated in training
    assert not np.allclose(state["batch_stats"]["aux2"]["conv"]["bn"]["mean"], 0)
    (logits2, aux1_2, _), _ = train(variables, x, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(logits, logits2) and not np.allclose(aux1, aux1_2)   # dropout on
    evaluate = jax.jit(model.apply)
    y = evaluate(variables, x)
    assert isinstance(y, jax.Array) and y.shape == (4, 5)
    np.testing.assert_array_equal(y, evaluate(variables, x))        # dropout off at eval
    # without aux heads the model returns plain logits in training too
    plain = GoogLeNet(num_classes=5, width=1 / 16)
    plain_vars = jax.eval_shape(plain.init, KEY, x)
    y_train, _ = jax.eval_shape(partial(plain.apply, train=True, mutable=["batch_stats"],
                                        rngs={"dropout": KEY}), plain_vars, x)
    assert isinstance(y_train, jax.ShapeDtypeStruct) and y_train.shape == (4, 5)


def test_combine_aux_losses_weights():
    assert googlenet_loss_weights == (1.0, 0.3, 0.3)
    assert float(combine_aux_losses(jnp.float32(1.0), jnp.float32(2.0), jnp.float32(4.0))) == \
        pytest.approx(1.0 + 0.6 + 1.2)
    assert float(combine_aux_losses(1.0, 1.0, 1.0, weights=(1.0, 0.0, 0.5))) == 1.5


def test_one_sgd_step_reduces_the_combined_loss():
    model = GoogLeNet(num_classes=5, aux_logits=True, width=1 / 16)
    x, labels = small_batch(seed=2)
    variables = numpy_init(model, x, seed=2)
    rngs = {"dropout": jax.random.key(3)}                           # same masks both times

    def loss_fn(params, batch_stats):
        outputs, state = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                     train=True, mutable=["batch_stats"], rngs=rngs)
        losses = [optax.softmax_cross_entropy_with_integer_labels(o, labels).mean()
                  for o in outputs]
        return combine_aux_losses(*losses), state["batch_stats"]

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (loss0, stats), grads = grad_fn(variables["params"], variables["batch_stats"])
    params = jax.tree.map(lambda p, g: p - 0.05 * g, variables["params"], grads)
    (loss1, _), _ = grad_fn(params, stats)
    assert np.isfinite(loss0) and loss1 < loss0
    assert float(jnp.abs(grads["conv1"]["conv"]["kernel"]).sum()) > 0   # reaches the stem


def test_bfloat16_compute_float32_params():
    model = GoogLeNet(num_classes=5, width=1 / 16, dtype=jnp.bfloat16)
    x = jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.bfloat16)
    y, variables = jax.eval_shape(model.init_with_output, KEY, x)
    assert y.dtype == jnp.bfloat16 and y.shape == (4, 5)
    assert jax.tree.all(jax.tree.map(lambda p: p.dtype == jnp.float32, variables["params"]))
    f32 = jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.float32)       # compute dtype wins
    assert jax.eval_shape(model.init_with_output, KEY, f32)[0].dtype == jnp.bfloat16


def test_groupnorm_swaps_in():
    model = GoogLeNet(num_classes=5, width=1 / 16, norm=partial(L.GroupNorm, num_groups=1))
    x, _ = small_batch(seed=4)
    variables = jax.eval_shape(model.init, KEY, x)
    assert "batch_stats" not in variables


def test_bad_inputs():
    trace = lambda model, x: jax.eval_shape(model.init, KEY, x)
    with pytest.raises(ValueError, match=r"`x` must have rank 4 .*\(32, 32, 3\)"):
        trace(googlenet(), jnp.ones((32, 32, 3)))
    with pytest.raises(TypeError, match="x"):
        trace(googlenet(), jnp.ones((1, 32, 32, 3), jnp.uint8))
    with pytest.raises(ValueError, match="width"):
        trace(googlenet(width=0.0), jnp.ones((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="num_classes"):
        trace(googlenet(num_classes=0), jnp.ones((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="kernel_5x5"):
        trace(googlenet(kernel_5x5=4), jnp.ones((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="unknown model name 'googlenet1'"):
        create("googlenet1")
