"""Activations, dropout and dense against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcnn.functional as F

RNG = np.random.default_rng(0)


def test_reexports_are_jax_nn():
    # Reuse, don't rewrite: same functions as jax.nn.
    assert F.relu is jax.nn.relu and F.gelu is jax.nn.gelu and F.softmax is jax.nn.softmax


def test_step_and_rectify():
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    x[0, 0] = 0.0
    np.testing.assert_array_equal(F.step(jnp.asarray(x)), np.where(x >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(F.rectify(jnp.asarray(x)), np.abs(x))
    assert float(jax.grad(lambda v: F.step(v).sum())(jnp.asarray(x)).sum()) == 0.0
    with pytest.raises(TypeError, match="`x` must be a floating-point"):
        F.step(jnp.arange(3))


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_maxout_matches_numpy(pieces):
    x = RNG.normal(size=(2, 3, 3, 6 * pieces)).astype(np.float32)
    expected = x.reshape(2, 3, 3, 6, pieces).max(-1)
    np.testing.assert_allclose(F.maxout(jnp.asarray(x), pieces), expected)
    y = jax.jit(F.maxout, static_argnums=1)(jnp.asarray(x, jnp.bfloat16), pieces)
    assert y.dtype == jnp.bfloat16 and y.shape == (2, 3, 3, 6)


def test_maxout_gradient_and_errors():
    x = jnp.asarray(RNG.normal(size=(3, 8)), jnp.float32)
    check_grads(lambda v: F.maxout(v, 4), (x,), order=1, modes=("rev",))
    g = jax.grad(lambda v: F.maxout(v, 4).sum())(x)
    np.testing.assert_array_equal(g.reshape(3, 2, 4).sum(-1), np.ones((3, 2)))
    with pytest.raises(ValueError, match="not divisible by `pieces`=3"):
        F.maxout(x, 3)
    with pytest.raises(ValueError, match="pieces"):
        F.maxout(x, 0)


def test_dropout_statistics_and_scaling():
    x = jnp.ones((200, 100))
    y = F.dropout(x, 0.3, jax.random.key(0), train=True)
    kept = np.asarray(y != 0)
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.7, rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 0.02  # inverted dropout keeps the expectation
    np.testing.assert_array_equal(F.dropout(x, 0.3, None, train=False), x)
    np.testing.assert_array_equal(F.dropout(x, 1.0, jax.random.key(0), train=True), 0 * x)


def test_dropout_is_deterministic_per_key_and_jittable():
    x = jnp.asarray(RNG.normal(size=(4, 16)), jnp.float32)
    f = jax.jit(F.dropout, static_argnums=(1, 3))
    a = f(x, 0.5, jax.random.key(3), True)
    np.testing.assert_array_equal(a, f(x, 0.5, jax.random.key(3), True))
    assert not np.array_equal(a, f(x, 0.5, jax.random.key(4), True))
    keys = jax.random.split(jax.random.key(0), 4)
    ys = jax.vmap(lambda k, v: F.dropout(v, 0.5, k, True))(keys, x)
    assert ys.shape == x.shape
    assert F.dropout(x.astype(jnp.bfloat16), 0.5, keys[0], True).dtype == jnp.bfloat16


def test_spatial_dropout_drops_whole_channels():
    x = jnp.asarray(RNG.uniform(1, 2, size=(8, 5, 5, 16)), jnp.float32)
    y = np.asarray(F.spatial_dropout(x, 0.5, jax.random.key(1), train=True))
    zero_maps = (y == 0).all(axis=(1, 2))
    assert ((y != 0).all(axis=(1, 2)) | zero_maps).all()
    assert 0.3 < zero_maps.mean() < 0.7
    with pytest.raises(ValueError, match="spatial axis"):
        F.spatial_dropout(jnp.ones((2, 3)), 0.5, jax.random.key(0), True)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_dropout_rate_errors(rate):
    with pytest.raises(ValueError, match="`rate` is the drop probability"):
        F.dropout(jnp.ones(3), rate, jax.random.key(0), True)


def test_dropout_needs_key_in_training():
    with pytest.raises(ValueError, match="`key`"):
        F.dropout(jnp.ones(3), 0.5, None, True)


def test_dense_matches_numpy_and_grads():
    x = RNG.normal(size=(5, 7)).astype(np.float32)
    w = RNG.normal(size=(7, 3)).astype(np.float32)
    b = RNG.normal(size=3).astype(np.float32)
    np.testing.assert_allclose(F.dense(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)),
                               x @ w + b, rtol=1e-5, atol=1e-5)
    check_grads(F.dense, (jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)), order=2,
                modes=("rev",), atol=1e-2, rtol=1e-2)


def test_dense_errors_name_shapes():
    with pytest.raises(ValueError, match=r"\(5, 6\).*\(7, 3\)"):
        F.dense(jnp.ones((5, 6)), jnp.ones((7, 3)))
    with pytest.raises(ValueError, match="`w` must have rank 2"):
        F.dense(jnp.ones((5, 7)), jnp.ones((7,)))
    with pytest.raises(ValueError, match="`b` must have shape"):
        F.dense(jnp.ones((5, 7)), jnp.ones((7, 3)), jnp.ones(4))
