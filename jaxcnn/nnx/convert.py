"""One set of weights for both front ends: Linen variable trees in and out of NNX modules.

An NNX module built by jaxcnn (a zoo model from ``models.create(..., api="nnx")``, or jaxcnn's
NNX layers) keeps each variable at the path the Linen module has: ``params/<path>/kernel`` is
the ``nnx.Param`` at ``<path>.kernel`` and ``batch_stats/<path>/mean`` the ``nnx.BatchStat``
at ``<path>.mean``. So weights imported for Linen (``jaxcnn.weights.from_keras``,
``from_torchvision``), a Linen checkpoint or a Linen training run load into NNX and back
without renaming.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

__all__ = ["from_linen", "to_linen"]

_KINDS = {"params": nnx.Param, "batch_stats": nnx.BatchStat}
_FIX = ("use the model name, num_classes, options and input_shape the variables were made "
        "with when creating the NNX model")


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if not hasattr(tree, "items"):
        return {prefix: tree}
    out = {}
    for key, value in tree.items():
        out.update(_flatten(value, prefix + (str(key),)))
    return out


def _unflatten(flat: dict[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _variables(module: nnx.Module, kind: type) -> dict[tuple[str, ...], nnx.Variable]:
    # nnx.state hands back the module's own Variable objects: setting one sets the module's.
    return {tuple(str(k) for k in path): var
            for path, var in nnx.to_flat_state(nnx.state(module, kind))}


def _check_module(module: Any) -> None:
    if not isinstance(module, nnx.Module):
        raise TypeError(f"`module` must be an nnx.Module (e.g. jaxcnn.models.create(name, "
                        f"api='nnx', rngs=nnx.Rngs(0))), got {type(module).__name__}; a Linen "
                        f"module's variables are already a Linen tree (pass them to "
                        f"from_linen).")


def to_linen(module: nnx.Module) -> dict[str, dict]:
    """The Linen ``{"params": ..., "batch_stats": ...}`` tree of ``module``'s current values.

    Collections without variables are left out (a model without BatchNorm has no
    ``"batch_stats"``), as in Linen's ``init``.

    Example:
        >>> from flax import nnx
        >>> from jaxcnn import models
        >>> model = models.create("lenet5", num_classes=10, api="nnx", rngs=nnx.Rngs(0))
        >>> variables = to_linen(model)
        >>> list(variables), variables["params"]["c1"]["kernel"].shape
        (['params'], (5, 5, 1, 6))
    """
    _check_module(module)
    out = {}
    for collection, kind in _KINDS.items():
        # get_value: also abstract values, for a model built under nnx.eval_shape
        flat = {path: var.get_value() for path, var in _variables(module, kind).items()}
        if flat:
            out[collection] = _unflatten(flat)
    return out


def from_linen(module: nnx.Module, variables: Any) -> nnx.Module:
    """Load a Linen ``{"params": ..., "batch_stats": ...}`` tree into ``module`` in place.

    Every variable of ``module`` must get a value of its shape, and every value must have a
    variable: the tree is checked completely before anything is written, so a mismatch
    leaves ``module`` as it was. Values are cast to the variable's dtype.

    Args:
        module: an NNX module whose variables sit at the Linen paths (jaxcnn's zoo models and
            layers).
        variables: a mapping with ``"params"`` and, for models with BatchNorm,
            ``"batch_stats"`` (other collections are an error).

    Returns:
        ``module``, for chaining.

    Raises:
        ValueError: naming the first path that is missing, extra or of another shape, with
            both shapes.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from flax import nnx
        >>> from jaxcnn import models
        >>> linen = models.create("lenet5", num_classes=10)
        >>> variables = linen.init(jax.random.key(1), jnp.ones((1, 32, 32, 1)))
        >>> model = from_linen(models.create("lenet5", num_classes=10, api="nnx",
        ...                                  rngs=nnx.Rngs(0)), variables)
        >>> model.eval()
        >>> x = jnp.ones((2, 32, 32, 1))
        >>> bool(jnp.allclose(model(x), linen.apply(variables, x), atol=1e-6))
        True
    """
    _check_module(module)
    if not hasattr(variables, "keys"):
        raise TypeError(f"`variables` must be a Linen variables mapping such as "
                        f"{{'params': ...}}, got {type(variables).__name__}.")
    unknown = sorted(set(variables) - set(_KINDS))
    if unknown:
        raise ValueError(f"`variables` has collection(s) {unknown}; an NNX model takes only "
                         f"'params' and 'batch_stats'.")
    writes = []
    for collection, kind in _KINDS.items():
        targets = _variables(module, kind)
        given = _flatten(variables.get(collection, {}))
        given.pop((), None)  # an empty collection
        for path in sorted(set(targets) | set(given)):
            where = "/".join((collection, *path))
            if path not in given:
                raise ValueError(f"`variables` has no {where} (shape "
                                 f"{tuple(targets[path][...].shape)}), which the NNX model "
                                 f"needs; {_FIX}")
            if path not in targets:
                raise ValueError(f"`variables` has {where} (shape {jnp.shape(given[path])}), "
                                 f"which the NNX model does not have; {_FIX}")
            have, new = tuple(targets[path][...].shape), tuple(jnp.shape(given[path]))
            if have != new:
                raise ValueError(f"{where}: `variables` has shape {new}, the NNX model "
                                 f"{have}; {_FIX}")
            writes.append((targets[path], given[path]))
    for var, value in writes:
        var[...] = jnp.asarray(value, var[...].dtype)
    return module
