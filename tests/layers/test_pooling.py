"""Pooling layers: each equals its F function with the same configuration, has no parameters,
and StochasticPool samples from the "dropout" rng stream in training only."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import functional as F
from jaxcnn import layers as L
from tests.layers._helpers import KEY, randn

X = randn((2, 9, 8, 3))
X_POS = jnp.abs(X)  # stochastic pooling expects non-negative activations


@pytest.mark.parametrize("layer,reference", [
    (L.MaxPool(), lambda x: F.max_pool(x, 2)),
    (L.MaxPool(3, strides=2, padding="SAME"), lambda x: F.max_pool(x, 3, 2, "SAME")),
    (L.MaxPool((3, 2), strides=(2, 1), ceil_mode=True),
     lambda x: F.max_pool(x, (3, 2), (2, 1), ceil_mode=True)),
    (L.MaxPool(2, strides=1, dilation=2), lambda x: F.max_pool(x, 2, 1, dilation=2)),
    (L.AvgPool(), lambda x: F.avg_pool(x, 2)),
    (L.AvgPool(3, strides=1, padding=1, count_include_pad=False),
     lambda x: F.avg_pool(x, 3, 1, 1, count_include_pad=False)),
    (L.AvgPool(3, strides=2, ceil_mode=True), lambda x: F.avg_pool(x, 3, 2, ceil_mode=True)),
    (L.LPPool(2.0, window=3, strides=2), lambda x: F.lp_pool(x, 2.0, 3, 2)),
    (L.GlobalAvgPool(), F.global_avg_pool),
    (L.GlobalAvgPool(keepdims=True), lambda x: F.global_avg_pool(x, keepdims=True)),
    (L.GlobalMaxPool(), F.global_max_pool),
    (L.GlobalMaxPool(keepdims=True), lambda x: F.global_max_pool(x, keepdims=True)),
    (L.AdaptiveAvgPool((4, 3)), lambda x: F.adaptive_avg_pool(x, (4, 3))),
    (L.AdaptiveMaxPool(5), lambda x: F.adaptive_max_pool(x, 5)),
    (L.SpatialPyramidPool(), F.spatial_pyramid_pool),
    (L.SpatialPyramidPool((1, 3), kind="avg"),
     lambda x: F.spatial_pyramid_pool(x, (1, 3), "avg")),
    (L.StochasticPool(), lambda x: F.stochastic_pool(x, None, 2, train=False)),
    (L.StochasticPool(3, strides=2), lambda x: F.stochastic_pool(x, None, 3, 2, train=False)),
])
def test_pool_layer_is_f(layer, reference):
    variables = layer.init(KEY, X_POS)
    assert variables == {}  # pooling has no parameters or state
    np.testing.assert_array_equal(layer.apply(variables, X_POS), reference(X_POS))


def test_max_pool_against_numpy():
    want = np.asarray(X)[:, :8].reshape(2, 4, 2, 4, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(L.MaxPool(2).apply({}, X), want)


def test_pool_under_jit_and_vmap():
    layer = L.AvgPool(3, strides=2, padding="SAME", count_include_pad=False)
    y = layer.apply({}, X)
    np.testing.assert_allclose(jax.jit(layer.apply)({}, X), y, rtol=1e-6, atol=1e-6)
    per_example = jax.vmap(lambda xi: layer.apply({}, xi[None])[0])(X)
    np.testing.assert_allclose(per_example, y, rtol=1e-6, atol=1e-6)
    assert layer.apply({}, X.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_stochastic_pool_train_samples_from_window():
    layer = L.StochasticPool(2)
    x = X_POS[:, :8]
    with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
        layer.apply({}, x, train=True)
    y1 = layer.apply({}, x, train=True, rngs={"dropout": jax.random.key(1)})
    y2 = layer.apply({}, x, train=True, rngs={"dropout": jax.random.key(1)})
    y3 = layer.apply({}, x, train=True, rngs={"dropout": jax.random.key(2)})
    np.testing.assert_array_equal(y1, y2)  # the rng fixes the sample
    assert not np.array_equal(y1, y3)
    windows = np.asarray(x).reshape(2, 4, 2, 4, 2, 3).transpose(0, 1, 3, 5, 2, 4)
    windows = windows.reshape(2, 4, 4, 3, 4)
    assert np.all(np.any(windows == np.asarray(y1)[..., None], axis=-1))
    # evaluation is deterministic: the probability-weighted average, no rng needed
    np.testing.assert_allclose(layer.apply({}, x),
                               (windows ** 2).sum(-1) / windows.sum(-1), rtol=1e-5)


@pytest.mark.parametrize("layer,x_shape,match", [
    (L.MaxPool(0), (1, 8, 8, 3), "window"),
    (L.AvgPool(2, strides=0), (1, 8, 8, 3), "stride"),
    (L.MaxPool(2), (8, 3), "x"),
    (L.MaxPool(9), (1, 8, 8, 3), "larger than the padded input"),
    (L.AvgPool(2, padding="FULL"), (1, 8, 8, 3), "padding"),
    (L.SpatialPyramidPool(kind="median"), (1, 8, 8, 3), "kind"),
    (L.SpatialPyramidPool(), (1, 8, 3), "x"),
    (L.AdaptiveAvgPool((2, 2, 2)), (1, 8, 8, 3), "output_size"),
])
def test_bad_input_names_the_argument(layer, x_shape, match):
    with pytest.raises(ValueError, match=match):
        layer.apply({}, jnp.ones(x_shape))
