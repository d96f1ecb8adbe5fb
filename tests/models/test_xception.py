"""Xception: Keras parameter counts and layer names, native shapes, one SGD step."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn
from jaxcnn import layers as L
from jaxcnn.models import create, list_models
from jaxcnn.models.xception import Xception, xception
from tests.models._zoo1_helpers import numpy_variables

NATIVE = jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32)
KEY = jax.random.key(0)


def numpy_init(module, x, seed=0):
    """Parameters drawn in numpy: a real ``init`` mostly compiles random initializers on CPU."""
    return numpy_variables(module, x, seed)


def small_model(**kwargs):
    return Xception(num_classes=5, middle_flow_repeats=1, width=1 / 16, **kwargs)


def small_batch(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, size, size, 3)).astype(np.float32), rng.integers(0, 5, n)


def test_keras_trainable_count_and_native_output():
    logits, variables = jax.eval_shape(xception().init_with_output, KEY, NATIVE)
    assert logits.shape == (1, 1000)
    assert jaxcnn.count_params(variables["params"]) == 22_855_952     # Keras trainable
    assert jaxcnn.count_params(variables["batch_stats"]) == 54_528    # Keras non-trainable
    assert jaxcnn.count_params(variables) == 22_910_480               # Keras total


def test_native_feature_maps_under_keras_names():
    model = xception()
    _, variables = jax.eval_shape(partial(model.init_with_output, capture_intermediates=True),
                                  KEY, NATIVE)
    inter = variables["intermediates"]
    shape = lambda name: inter[name]["__call__"][0].shape[1:]
    assert shape("block1_conv1_act") == (149, 149, 32)
    assert shape("block1_conv2_act") == (147, 147, 64)
    assert shape("block2") == (74, 74, 128)
    assert shape("block3") == (37, 37, 256)
    assert shape("block4") == (19, 19, 728)
    assert shape("block12") == (19, 19, 728)
    assert shape("block13") == (10, 10, 1024)
    assert shape("block14_sepconv1_act") == (10, 10, 1536)
    assert shape("block14_sepconv2_act") == (10, 10, 2048)
    assert shape("avg_pool") == (2048,)
    params = variables["params"]
    assert sorted(params["block2"]) == ["residual_bn", "residual_conv", "sepconv1",
                                        "sepconv1_bn", "sepconv2", "sepconv2_bn"]
    assert "block2" in inter and "pool" in inter["block2"]        # Keras block2_pool
    assert params["block14_sepconv2"]["pointwise_kernel"].shape == (1, 1, 1536, 2048)
    assert params["predictions"]["kernel"].shape == (2048, 1000)
    assert "block15" not in params and "dropout" not in inter


def test_middle_flow_repeats_renumber_the_exit_flow():
    variables = jax.eval_shape(Xception(middle_flow_repeats=0, width=1 / 8).init, KEY,
                               jax.ShapeDtypeStruct((1, 71, 71, 3), jnp.float32))
    names = set(variables["params"])
    assert {"block4", "block5", "block6_sepconv1", "block6_sepconv2"} <= names
    assert variables["params"]["block5"]["residual_conv"]["kernel"].shape == (1, 1, 91, 128)


def test_registered_and_options_forwarded():
    assert "xception" in list_models()
    model = create("xception", num_classes=10, middle_flow_repeats=2, width=0.25)
    assert isinstance(model, Xception)
    assert (model.num_classes, model.middle_flow_repeats, model.width) == (10, 2, 0.25)


def test_batchnorm_modes_dropout_and_one_sgd_step():
    model = small_model(dropout_rate=0.3)
    x, labels = small_batch()
    variables = numpy_init(model, x)
    evaluate = jax.jit(model.apply)
    y_eval = evaluate(variables, x)
    np.testing.assert_array_equal(y_eval, evaluate(variables, x))     # no dropout at eval
    rngs = {"dropout": jax.random.key(1)}

    def loss_fn(params, batch_stats):
        logits, state = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                    train=True, mutable=["batch_stats"], rngs=rngs)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, (state["batch_stats"], logits)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (loss0, (stats, y_train)), grads = grad_fn(variables["params"], variables["batch_stats"])
    assert not np.allclose(y_train, y_eval)                           # batch statistics
    old = variables["batch_stats"]["block5"]["sepconv1_bn"]["mean"]
    assert not np.allclose(stats["block5"]["sepconv1_bn"]["mean"], old)
    params = jax.tree.map(lambda p, g: p - 0.1 * g, variables["params"], grads)
    (loss1, _), _ = grad_fn(params, stats)
    assert np.isfinite(loss0) and loss1 < loss0
    assert float(jnp.abs(grads["block1_conv1"]["kernel"]).sum()) > 0


def test_bfloat16_and_groupnorm():
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    y, variables = jax.eval_shape(small_model(dtype=jnp.bfloat16).init_with_output, KEY, x)
    assert y.dtype == jnp.bfloat16
    assert jax.tree.all(jax.tree.map(lambda p: p.dtype == jnp.float32, variables["params"]))
    gn = small_model(norm=partial(L.GroupNorm, num_groups=1))
    assert "batch_stats" not in jax.eval_shape(gn.init, KEY, x)


def test_bad_inputs():
    trace = lambda model, x: jax.eval_shape(model.init, KEY, x)
    x = jnp.ones((1, 32, 32, 3))
    with pytest.raises(ValueError, match="middle_flow_repeats"):
        trace(Xception(middle_flow_repeats=-1), x)
    with pytest.raises(ValueError, match="width"):
        trace(Xception(width=-1.0), x)
    with pytest.raises(ValueError, match="num_classes"):
        trace(Xception(num_classes=0), x)
    with pytest.raises(ValueError, match=r"larger than the padded input.*\(2, 2\)"):
        trace(small_model(), jnp.ones((1, 5, 5, 3)))                   # 5 -> 2 -> 3x3 VALID
    with pytest.raises(ValueError, match=r"`x` must have rank 4 .*\(32, 32, 3\)"):
        trace(small_model(), jnp.ones((32, 32, 3)))
    with pytest.raises(TypeError, match="x"):
        trace(small_model(), jnp.ones((1, 32, 32, 3), jnp.uint8))
