"""Model inspection: named intermediate activations and a Keras-style summary table.

* :func:`intermediates` is the Keras ``Model(inputs, model.get_layer(name).output)`` feature
  extractor: it returns the outputs of the submodules named by their paths
  (``"block4_pool"``, ``"stage1_block1/conv1"``), using Flax's ``capture_intermediates``.
* :func:`summary` prints a table of every submodule's type, output shape and parameter count,
  computed with ``jax.eval_shape``, so it costs no memory even for VGG-16.
"""

from __future__ import annotations

import difflib
import inspect as _pyinspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from jaxcnn._utils import count_params

__all__ = ["intermediates", "summary"]

Array = Any

_CALL = "__call__"


def _train_kwargs(model: nn.Module, train: bool) -> dict[str, bool]:
    """``{"train": train}`` when ``model.__call__`` takes ``train`` (models do, plain layers
    may not)."""
    params = _pyinspect.signature(type(model).__call__).parameters
    takes_train = "train" in params or any(
        p.kind is _pyinspect.Parameter.VAR_KEYWORD for p in params.values())
    return {"train": train} if takes_train else {}


def _path_name(module: nn.Module) -> str:
    return "/".join(module.path)


def _captured_paths(model: nn.Module, variables: Mapping, x: Array, train: bool,
                    rngs: Mapping | None) -> list[str]:
    """Path of every submodule whose ``__call__`` runs on ``x`` (abstractly: no FLOPs)."""
    def run(variables, x):
        _, state = model.apply(variables, x, capture_intermediates=True, mutable=True,
                               rngs=rngs, **_train_kwargs(model, train))
        return state.get("intermediates", {})

    captured = jax.eval_shape(run, variables, x)
    paths = traverse_util.flatten_dict(captured, sep="/")
    return [p.removesuffix("/" + _CALL) for p in paths if p.endswith("/" + _CALL)]


def intermediates(model: Any, variables: Mapping | None, x: Array,
                  names: str | Iterable[str], *, train: bool = False,
                  rngs: Mapping | None = None) -> dict[str, Array]:
    """Outputs of the named submodules of ``model`` on ``x``: a feature extractor.

    ``intermediates(model, variables, x, ["block4_pool"])["block4_pool"]`` is Keras'
    ``Model(inputs, model.get_layer("block4_pool").output)(x)``. A submodule is named by its
    path below ``model``, joined with ``/`` (``"block1_conv1"``, ``"stage1_block1/conv1"``);
    only the named outputs are kept (``capture_intermediates`` with a filter), so memory is not
    spent on the rest. Runs the whole forward pass; wrap the call in a function under
    ``jax.jit`` (with ``names`` fixed) to compile it.

    Args:
        model: a Flax linen module (e.g. from ``jaxcnn.models.create``), or an NNX zoo model
            (``models.create(..., api="nnx")``; paths are the same).
        variables: its variables, as returned by ``model.init``; for an NNX model ``None``
            (its own variables) or a Linen tree to use instead.
        x: the input batch.
        names: one path or a sequence of paths.
        train: forwarded to ``model`` when its ``__call__`` takes ``train``; in training mode
            BatchNorm uses batch statistics (the updated running statistics are discarded).
        rngs: rng streams for ``apply``, e.g. ``{"dropout": key}`` with ``train=True``.

    Returns:
        ``{name: output}`` in the order of ``names``; a submodule called more than once (weight
        sharing) gives the tuple of its outputs, in call order.

    Raises:
        ValueError: for a name that is not the path of a submodule called on ``x``; the
            message lists the available paths and the closest matches.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import flax.linen as nn
        >>> from jaxcnn import layers as L
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = L.Conv(4, 3, name="block1_conv1")(x)
        ...         x = L.MaxPool(2, name="block1_pool")(x)
        ...         return L.Dense(10, name="head")(x.reshape(x.shape[0], -1))
        >>> net, x = Net(), jnp.ones((2, 8, 8, 3))
        >>> variables = net.init(jax.random.key(0), x)
        >>> feats = intermediates(net, variables, x, ["block1_pool", "block1_conv1"])
        >>> {k: v.shape for k, v in feats.items()}
        {'block1_pool': (2, 4, 4, 4), 'block1_conv1': (2, 8, 8, 4)}
        >>> intermediates(net, variables, x, "block1_pol")
        Traceback (most recent call last):
        ...
        ValueError: unknown layer name(s) ['block1_pol']. Did you mean 'block1_pool'...
    """
    if not isinstance(model, nn.Module):
        from jaxcnn.nnx import ZooModel, to_linen

        if not isinstance(model, ZooModel):
            raise TypeError(f"`model` must be a Flax linen module or a jaxcnn NNX zoo model "
                            f"(jaxcnn.models.create(name, api='nnx', ...)), got "
                            f"{type(model).__name__}.")
        # The NNX model runs its Linen architecture: capture there, on its variables.
        variables = to_linen(model) if variables is None else variables
        model = model.module
    wanted = [names] if isinstance(names, str) else list(names)
    wanted_set = set(wanted)

    def keep(module: nn.Module, method_name: str) -> bool:
        return method_name == _CALL and _path_name(module) in wanted_set

    _, state = model.apply(variables, x, capture_intermediates=keep,
                           mutable=True if train else ["intermediates"], rngs=rngs,
                           **_train_kwargs(model, train))
    captured = traverse_util.flatten_dict(state.get("intermediates", {}), sep="/")
    out = {}
    for name in wanted:
        outputs = captured.get(f"{name}/{_CALL}" if name else _CALL)
        if outputs is not None:
            out[name] = outputs[0] if len(outputs) == 1 else tuple(outputs)
    missing = [name for name in wanted if name not in out]
    if missing:
        available = _captured_paths(model, variables, x, train, rngs)
        close = difflib.get_close_matches(missing[0], available, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown layer name(s) {missing}.{hint} Available submodule paths "
                         f"of {type(model).__name__}: {', '.join(available)}.")
    return out


def _shape_str(tree: Any) -> str:
    shapes = [str(tuple(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree)]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _subtree(tree: Mapping, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return {}
        tree = tree[key]
    return tree


def _nbytes(tree: Any) -> int:
    return int(sum(np.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree_util.tree_leaves(tree)))


def _size(nbytes: int) -> str:
    for unit in ("B", "KB", "MB"):
        if nbytes < 1024:
            return f"{nbytes:,.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:,.2f} GB"


def summary(model: nn.Module, x: Array, *, train: bool = False, depth: int | None = None,
            print_fn: Callable[[str], Any] | None = print) -> str:
    """A Keras-style table of ``model``'s submodules: path, type, output shape, parameters.

    Everything is computed with ``jax.eval_shape`` (an abstract ``init`` that records each
    submodule's output through a Flax method interceptor), so no array is allocated: a VGG-16
    summary at 224x224 is instant. Rows are in call order (a submodule called several times,
    i.e. shared weights, has one row with its first output); a row's parameter count covers the
    submodule and everything below it, so with ``depth=1`` the rows add up to the total. The
    footer separates trainable parameters (the ``params`` collection, the figure papers and
    torchvision report) from non-trainable state (BatchNorm's ``batch_stats``; Keras' "total
    params" includes those moving statistics).

    Args:
        model: a Flax linen module.
        x: an example input, an array or a ``jax.ShapeDtypeStruct`` (only shape and dtype are
            used).
        train: forwarded to ``model`` when its ``__call__`` takes ``train``.
        depth: show submodules at most this many levels below ``model`` (1: its direct
            children); default None shows all.
        print_fn: called with the table (default ``print``); None prints nothing.

    Returns:
        The table as a string.

    Example:
        >>> import jax.numpy as jnp
        >>> import flax.linen as nn
        >>> from jaxcnn import layers as L
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train: bool = False):
        ...         x = L.Conv(8, 3, use_bias=False, name="conv")(x)
        ...         x = L.BatchNorm(name="bn")(x, train=train)
        ...         return L.Dense(10, name="head")(L.GlobalAvgPool(name="pool")(x))
        >>> table = summary(Net(), jnp.ones((1, 32, 32, 3)))
        Model: Net, input (1, 32, 32, 3) float32 -> output (1, 10)
        ================================================
        Layer   Type            Output shape     Param #
        ================================================
        conv    Conv            (1, 32, 32, 8)       216
        bn      BatchNorm       (1, 32, 32, 8)        16
        pool    GlobalAvgPool   (1, 8)                 0
        head    Dense           (1, 10)               90
        ================================================
        Trainable params: 322 (1.26 KB)
        Non-trainable state: 16 (batch_stats)
        Total: 338
    """
    records: dict[tuple[str, ...], list[str]] = {}  # path -> [type, output shape]

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != _CALL:
            return next_fun(*args, **kwargs)
        path = tuple(context.module.path)
        first = path not in records
        if first:  # the row is made at entry so that rows come in call (pre-)order
            records[path] = [type(context.module).__name__, ""]
        out = next_fun(*args, **kwargs)
        if first:
            records[path][1] = _shape_str(out)
        return out

    def init(x):
        key = jax.random.key(0)
        with nn.intercept_methods(interceptor):
            return model.init({"params": key, "dropout": key}, x,
                              **_train_kwargs(model, train))

    variables = jax.eval_shape(init, x)
    params = variables.get("params", {})
    state = {k: v for k, v in variables.items() if k != "params"}

    rows = [("Layer", "Type", "Output shape", "Param #")]
    rows += [("/".join(path), kind, shape, f"{count_params(_subtree(params, path)):,}")
             for path, (kind, shape) in records.items()
             if path and (depth is None or len(path) <= depth)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]

    def fmt(row):
        cells = [cell.ljust(w) for cell, w in zip(row[:3], widths[:3], strict=True)]
        return "   ".join([*cells, row[3].rjust(widths[3])])

    line = "=" * len(fmt(rows[0]))
    n_params, n_state = count_params(params), count_params(state)
    lines = [f"Model: {type(model).__name__}, input {tuple(x.shape)} {np.dtype(x.dtype).name} "
             f"-> output {records[()][1]}", line, fmt(rows[0]), line]
    lines += [fmt(row) for row in rows[1:]]
    lines += [line, f"Trainable params: {n_params:,} ({_size(_nbytes(params))})"]
    if state:
        lines.append(f"Non-trainable state: {n_state:,} ({', '.join(sorted(state))})")
    lines.append(f"Total: {n_params + n_state:,}")
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
