"""Shared test helpers: random inputs and parameters without jax.random.

Layer parameters are drawn with numpy into the shapes ``jax.eval_shape(layer.init, ...)``
reports: a real ``init`` compiles a jax.random program for every new parameter shape (seconds
each on CPU), while tracing ``init`` abstractly costs nothing.
"""

import jax
import jax.numpy as jnp
import numpy as np

KEY = jax.random.key(0)


def randn(shape, seed=0, dtype=np.float32, loc=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray((loc + scale * rng.standard_normal(shape)).astype(dtype))


def random_variables(layer, *args, seed=1, **kwargs):
    """Variables of ``layer`` with the shapes/dtypes of ``layer.init`` but random values.

    Every leaf (biases and scales too, so a forgotten one would show) is standard normal;
    BatchNorm running variances are made positive.
    """
    shapes = jax.eval_shape(lambda: layer.init(KEY, *args, **kwargs))
    rng = np.random.default_rng(seed)

    def draw(path, s):
        value = rng.standard_normal(s.shape)
        if any(getattr(k, "key", None) == "var" for k in path):
            value = np.abs(value) + 0.5
        return jnp.asarray(value, s.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)
