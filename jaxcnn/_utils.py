"""Small utilities on pytrees."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def count_params(tree: Any) -> int:
    """Total number of scalar entries in the arrays of a pytree.

    Works on concrete arrays and on abstract ones (``jax.ShapeDtypeStruct`` from
    ``jax.eval_shape``), so a model's parameters can be counted without allocating them.
    Count only the ``params`` collection to match published figures: BatchNorm running
    statistics are state, not parameters.

    Example:
        >>> import jax.numpy as jnp
        >>> count_params({"w": jnp.ones((3, 4)), "b": jnp.ones(4)})
        16
    """
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree)))
