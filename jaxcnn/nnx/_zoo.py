"""Every registered model as an ``nnx.Module``, from the one architecture definition.

A model's architecture is written once, as the Linen module its factory builds
(:mod:`jaxcnn.models`). :class:`ZooModel` turns it into an NNX module eagerly:

* **Construction** initialises the Linen module on a sample input of the model's usual size
  (:func:`jaxcnn.models.input_shape`) with a key drawn from ``rngs.params()``, and stores each
  variable as an ``nnx.Param`` / ``nnx.BatchStat`` at the Linen module's path, so
  ``model.stage1_block1.conv1.kernel`` is the Linen ``params/stage1_block1/conv1/kernel`` and
  the state converts both ways without renaming (:func:`jaxcnn.nnx.from_linen`).
* **Layers with an NNX counterpart** (registered with :func:`register_native`) are built as
  that NNX layer, whose ``__call__`` is the same :mod:`jaxcnn.functional` function as the Linen
  layer's. The call runs the Linen architecture's body (the blocks' control flow, residual
  additions and activations) with each such layer's call intercepted and answered by the NNX
  layer; layers without a counterpart run as Linen layers on the variables held here.
* **Mode** follows NNX: ``model.train()`` / ``model.eval()`` (``deterministic`` and
  ``use_running_average``, as Flax NNX's own layers); BatchNorm statistics are updated in place
  in training mode; dropout draws from ``rngs.dropout()``. Nothing is lazy and no
  ``mutable=[...]`` reaches the caller.

The cost of this design (measured, see ``docs/guide/nnx.md``): the Linen modules are rebuilt
each time the call is traced, which adds to trace time; the compiled program is Linen's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from jaxcnn.nnx.convert import _flatten, to_linen

__all__ = ["ZooModel", "register_native"]

# Linen layer class -> (build(linen_module, input_shape, rngs) -> nnx layer,
#                       call(nnx_layer, args, kwargs) -> output).
_NATIVE: dict[type, tuple[Callable, Callable]] = {}

# Attribute names an NNX module uses itself; a Linen path component with one of these names
# cannot become an attribute.
_RESERVED = frozenset(n for n in dir(nnx.Module) if not n.startswith("__"))


def register_native(linen_cls: type, build: Callable, call: Callable) -> None:
    """Build ``linen_cls`` layers of zoo models as an NNX layer (see the module docstring).

    ``build(linen_module, input_shape, rngs)`` returns the NNX layer (its variables are then
    overwritten with the Linen initialisation, so the two front ends start alike);
    ``call(nnx_layer, args, kwargs)`` answers the Linen call ``linen_module(*args, **kwargs)``.

    Example:
        >>> import flax.linen as nn
        >>> from flax import nnx
        >>> register_native(nn.Dense, lambda m, shape, rngs: nnx.Linear(
        ...     shape[-1], m.features, rngs=rngs), lambda layer, args, kwargs: layer(*args))
        >>> _NATIVE.pop(nn.Dense) is not None
        True
    """
    _NATIVE[linen_cls] = (build, call)


def _check_tree(expected: dict, given: dict, name: str) -> None:
    """Every path of ``expected`` in ``given`` with its shape, and nothing else."""
    want = {(c, *p): v.shape for c in expected for p, v in _flatten(dict(expected[c])).items()}
    have = {(c, *p): jnp.shape(v) for c in given for p, v in _flatten(dict(given[c])).items()}
    for path in sorted(set(want) | set(have)):
        where = "/".join(path)
        if path not in have:
            raise ValueError(f"`variables` has no {where} (shape {want[path]}), which {name} "
                             f"needs.")
        if path not in want:
            raise ValueError(f"`variables` has {where} (shape {have[path]}), which {name} "
                             f"does not have.")
        if tuple(have[path]) != tuple(want[path]):
            raise ValueError(f"{where}: `variables` has shape {tuple(have[path])}, {name} "
                             f"{tuple(want[path])}.")


class _Node(nnx.Module):
    """The submodules and variables under one component of a Linen path."""


def _init_linen(module: nn.Module, key: jax.Array, sample: jax.Array) -> dict:
    return module.init({"params": key, "dropout": key}, sample, train=False)


class ZooModel(nnx.Module):
    """A registered jaxcnn model as an NNX module (see the module docstring).

    Built by ``jaxcnn.models.create(name, api="nnx", rngs=nnx.Rngs(0))``; construct it
    directly to wrap any Linen module called as ``module(x, train=...)``.

    Args:
        module: the Linen module (the architecture).
        input_shape: ``(H, W, C)`` of the sample the variables are initialised on.
        rngs: ``nnx.Rngs`` with a ``params`` stream (initialisation) and optionally a
            ``dropout`` stream (default: the ``default`` stream).
        dtype: dtype of the sample input; default float32.
        variables: a Linen ``{"params", "batch_stats"}`` tree of ``module`` to hold instead of
            a fresh initialisation (as :func:`jaxcnn.nnx.from_linen` would load it, without
            initialising first).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from jaxcnn import models
        >>> model = ZooModel(models.create("lenet5", num_classes=10), (32, 32, 1),
        ...                  rngs=nnx.Rngs(0))
        >>> model.c1.kernel[...].shape
        (5, 5, 1, 6)
        >>> model.eval()
        >>> model(jnp.ones((2, 32, 32, 1))).shape
        (2, 10)
    """

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...], *, rngs: nnx.Rngs,
                 dtype: Any = jnp.float32, variables: dict | None = None):
        if not isinstance(module, nn.Module):
            raise TypeError(f"`module` must be a Linen module (jaxcnn.models.create(name)), "
                            f"got {type(module).__name__}.")
        if len(tuple(input_shape)) != 3:
            raise ValueError(f"`input_shape` must be one image's (H, W, C), without the batch "
                             f"axis, got {tuple(input_shape)}.")
        self.module = nnx.static(module)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.deterministic = False
        self.use_running_average = False
        sample = jnp.zeros((1, *self.input_shape), dtype)
        if variables is None:
            variables = jax.jit(_init_linen, static_argnums=0)(module, rngs.params(), sample)
        else:  # checked as from_linen checks: every path and shape, before anything is held
            expected = jax.eval_shape(lambda key, x: _init_linen(module, key, x),
                                      jax.random.key(0), sample)
            variables = {k: v for k, v in dict(variables).items() if v}
            _check_tree(expected, variables, type(module).__name__)
        natives = self._native_layers(module, sample, rngs)
        self.native_paths = nnx.static(tuple(sorted(natives)))
        for path, layer in natives.items():
            self._node(path[:-1], create=True)
            setattr(self._node(path[:-1]), path[-1], layer)
        kinds = {"params": nnx.Param, "batch_stats": nnx.BatchStat}
        for collection, tree in variables.items():
            if collection not in kinds:
                raise ValueError(f"{type(module).__name__} has variables in the collection "
                                 f"{collection!r}; an NNX model holds only 'params' and "
                                 f"'batch_stats'.")
            for path, value in _flatten(dict(tree)).items():
                parent = self._node(path[:-1], create=True)
                current = getattr(parent, path[-1], None)
                if isinstance(current, nnx.Variable):  # a native layer's: same name and shape
                    if current[...].shape != value.shape:
                        raise ValueError(
                            f"{'/'.join(path)}: the NNX layer made {current[...].shape}, the "
                            f"Linen layer {value.shape}; register_native's builder is wrong.")
                    current[...] = value
                else:
                    setattr(parent, path[-1], kinds[collection](value))
        self.rngs = rngs  # dropout keys: rngs.dropout() (NNX falls back to `default`)

    # -- construction helpers -------------------------------------------------------------

    def _node(self, path: tuple[str, ...], create: bool = False) -> nnx.Module:
        node: nnx.Module = self
        for i, key in enumerate(path):
            if key in _RESERVED:
                raise ValueError(f"Linen path {'/'.join(path[:i + 1])!r}: {key!r} is an "
                                 f"attribute of every nnx.Module; rename the Linen submodule.")
            child = getattr(node, key, None)
            if child is None:
                if not create:
                    raise KeyError("/".join(path[:i + 1]))
                child = _Node()
                setattr(node, key, child)
            node = child
        return node

    @staticmethod
    def _native_layers(module: nn.Module, sample: jax.Array,
                       rngs: nnx.Rngs) -> dict[tuple[str, ...], nnx.Module]:
        if not _NATIVE:
            return {}
        seen: dict[tuple[str, ...], tuple[nn.Module, tuple[int, ...]]] = {}

        def record(next_fun, args, kwargs, context):
            if context.method_name == "__call__" and type(context.module) in _NATIVE:
                seen.setdefault(tuple(context.module.path),
                                (context.module.clone(parent=None, name=None),
                                 tuple(args[0].shape)))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            # The module is closed over, not an argument: eval_shape would trace it.
            jax.eval_shape(lambda key, x: _init_linen(module, key, x), jax.random.key(0),
                           sample)
        # Nested natives (a registered layer inside another) are answered by the outer one.
        paths = [p for p in seen if not any(p[:len(q)] == q and p != q for q in seen)]
        return {p: _NATIVE[type(seen[p][0])][0](seen[p][0], seen[p][1], rngs) for p in paths}

    # -- the call ---------------------------------------------------------------------------

    def __call__(self, x: jax.Array, **kwargs: Any) -> Any:
        """``module.apply(variables, x, train=not self.deterministic, **kwargs)``, updating the
        BatchNorm statistics in place when training."""
        train = not self.deterministic
        variables = to_linen(self)
        rngs = {"dropout": self.rngs.dropout()} if train else {}
        mutable = ["batch_stats"] if train and "batch_stats" in variables else False
        natives = {p: self._node(p) for p in self.native_paths}

        def answer(next_fun, args, kwargs_, context):
            path = tuple(context.module.path)
            if context.method_name == "__call__" and path in natives:
                return _NATIVE[type(context.module)][1](natives[path], args, kwargs_)
            return next_fun(*args, **kwargs_)

        with nn.intercept_methods(answer):
            result = self.module.apply(variables, x, train=train, rngs=rngs, mutable=mutable,
                                       **kwargs)
        if mutable:
            result, updates = result
            for path, value in _flatten(dict(updates["batch_stats"])).items():
                if path[:-1] not in natives:
                    getattr(self._node(path[:-1]), path[-1])[...] = value
        return result

