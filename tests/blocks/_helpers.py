"""Random variables for block tests without compiling Flax's initializers."""

import jax
import jax.numpy as jnp
import numpy as np


def randomize(variables, seed):
    """Random params and running statistics (var > 0) so the eval path is fully exercised."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, leaf.shape), leaf.dtype)
        if name == "scale":
            return jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape), leaf.dtype)
        return jnp.asarray(0.3 * rng.standard_normal(leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, variables)


def init(module, x, seed=0):
    """Random variables of ``module`` for input ``x``: shapes from ``eval_shape`` (compiling
    the random initializers dominates a real ``init`` on CPU), values from numpy."""
    return randomize(jax.eval_shape(module.init, jax.random.key(0), x), seed)
