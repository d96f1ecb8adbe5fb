"""Squeeze-and-excitation block against a numpy reference (Hu et al. 2018, Fig. 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcnn
from jaxcnn.blocks import SqueezeExcite


def random_params(se, x, seed):
    """Numpy-drawn parameters with the shapes ``se.init`` would create (no initializer compile)."""
    shapes = jax.eval_shape(se.init, jax.random.key(0), x)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


def np_se(x, p):
    x = np.asarray(x, np.float64)
    s = x.mean(axis=tuple(range(1, x.ndim - 1)))
    h = np.maximum(s @ np.asarray(p["fc1"]["kernel"]) + np.asarray(p["fc1"]["bias"]), 0)
    g = 1 / (1 + np.exp(-(h @ np.asarray(p["fc2"]["kernel"]) + np.asarray(p["fc2"]["bias"]))))
    return x * g.reshape(g.shape[0], *(1,) * (x.ndim - 2), -1), g


@pytest.mark.parametrize(("shape", "reduction"), [
    ((2, 5, 5, 32), 16), ((3, 4, 4, 24), 4), ((2, 7, 12), 3), ((1, 3, 4, 2, 8), 2),
    ((2, 3, 3, 6), 8),                                   # C < r: one hidden unit
])
def test_matches_numpy_reference(shape, reduction):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    se = SqueezeExcite(reduction=reduction)
    variables = random_params(se, x, seed=1)
    y, state = jax.jit(lambda v, x: se.apply(v, x, mutable=["intermediates"]))(variables, x)
    expected, gate = np_se(x, variables["params"])
    assert y.shape == x.shape
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(state["intermediates"]["gate"][0], gate, atol=1e-6, rtol=1e-5)


def test_default_init_gates_in_unit_interval():
    se = SqueezeExcite(reduction=4)
    x = 5 * np.random.default_rng(2).standard_normal((4, 6, 6, 16)).astype(np.float32)
    variables = se.init(jax.random.key(0), x)
    y, state = se.apply(variables, x, mutable=["intermediates"])
    gate = np.asarray(state["intermediates"]["gate"][0])
    assert gate.shape == (4, 16) and np.all((gate > 0) & (gate < 1))
    np.testing.assert_allclose(y, x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("channels", "r"), [(64, 16), (256, 16), (48, 4), (30, 3)])
def test_parameter_count(channels, r):
    variables = jax.eval_shape(SqueezeExcite(reduction=r).init, jax.random.key(0),
                               jnp.ones((1, 2, 2, channels)))
    assert jaxcnn.count_params(variables["params"]) == \
        2 * channels * channels // r + channels // r + channels
    assert "intermediates" not in variables or variables["intermediates"] == {}


def test_bfloat16_vmap_and_gradients():
    se = SqueezeExcite(reduction=2)
    x = np.random.default_rng(3).standard_normal((3, 2, 4, 4, 6)).astype(np.float32)
    variables = random_params(se, x[0], seed=4)
    y16 = se.apply(variables, jnp.asarray(x[0], jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    y = jax.vmap(lambda xi: se.apply(variables, xi))(x)
    np.testing.assert_allclose(y[2], se.apply(variables, x[2]), atol=1e-6)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables["params"])
        f = jax.jit(lambda p, xi: se.apply({"params": p}, xi))
        check_grads(f, (params, jnp.asarray(x[0], jnp.float64)), order=2, modes=("rev",),
                    eps=1e-6, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    trace = lambda se, x: jax.eval_shape(se.init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="reduction"):
        trace(SqueezeExcite(reduction=0), jnp.ones((1, 4, 4, 8)))
    with pytest.raises(ValueError, match="reduction"):
        trace(SqueezeExcite(reduction=2.5), jnp.ones((1, 4, 4, 8)))
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(4, 8\)"):
        trace(SqueezeExcite(), jnp.ones((4, 8)))
    with pytest.raises(TypeError, match="x"):
        trace(SqueezeExcite(reduction=2), jnp.ones((1, 4, 4, 8), jnp.int32))
