"""Random variables for block tests without compiling Flax's initializers."""

import jax

from tests.models._zoo1_helpers import random_variables


def randomize(variables, seed):
    """Random params and running statistics (var > 0, some ~1e-3 so epsilon matters), drawn
    by :func:`tests.models._zoo1_helpers.random_variables`: nothing at its initial value, so
    the eval path, biases and epsilon are all exercised."""
    return random_variables(variables, seed)


def init(module, x, seed=0):
    """Random variables of ``module`` for input ``x``: shapes from ``eval_shape`` (compiling
    the random initializers dominates a real ``init`` on CPU), values from numpy."""
    return randomize(jax.eval_shape(module.init, jax.random.key(0), x), seed)
