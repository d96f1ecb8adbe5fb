"""The training state of an ``nnx.Module``: the same pytree and steps as a Linen model's.

:func:`create_nnx_train_state` splits an NNX model (``nnx.split``) into its graph definition
and its ``nnx.Param`` / ``nnx.BatchStat`` state, and an ``nnx.Optimizer`` into its state; the
arrays go into a :class:`~jaxcnn.training.TrainState` as plain nested dicts
(``nnx.to_pure_dict``: the model's attribute paths, which for a zoo model are the Linen
paths), the graph definitions stay static. Inside a compiled step the model and optimizer are
rebuilt with ``nnx.merge``, called, updated with ``nnx.Optimizer.update`` and split again; all
of that is trace-time work, so a step costs what a Linen step costs (Flax's recommended
``jax.jit`` + split/merge pattern, without ``nnx.jit``'s per-call graph traversal).

Because the state is the Linen-shaped pytree, everything built on :class:`TrainState` takes an
NNX model unchanged: :func:`jaxcnn.training.make_train_step` / ``make_eval_step``, the three
parallel strategies, :class:`jaxcnn.training.checkpoint.Checkpointer` (Orbax checkpoints of
the model's ``nnx.state`` and the optimizer's, with the same kill-and-resume guarantee),
:mod:`jaxcnn.transfer`'s freezing by path pattern, :mod:`jaxcnn.ensemble`'s stacked members.

Randomness follows the Linen state: each step's dropout key is ``fold_in(state.rng, step)``;
the model's RNG streams (``nnx.Rngs``) are reseeded from it at every call (``nnx.reseed``), so
a resumed run draws the same masks as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import PartitionSpec as P

from jaxcnn.training.state import TrainState, check_rng, check_tx

__all__ = ["NnxTrainState", "create_nnx_train_state", "merge_model"]


class _Graph:
    """The static half of an NNX train state: part of jit's cache key.

    Two graphs are equal when they rebuild the same module and optimizer, so a second state of
    the same model (an ensemble member, a resumed or repeated run) reuses compiled steps. The
    RNG streams' values do not count: every call reseeds every stream.
    """

    def __init__(self, model_def: Any, optimizer_def: Any, rng_state: Any, streams: tuple,
                 specs: dict[str, Any]):
        self.model_def = model_def
        self.optimizer_def = optimizer_def
        self.rng_state = rng_state   # the model's RNG streams as built; reseeded at each call
        self.streams = streams       # their names, e.g. ("default", "dropout")
        self.specs = specs           # PartitionSpecs of params, batch_stats, opt_state
        rng_leaves, rng_def = jax.tree_util.tree_flatten(rng_state)
        spec_leaves, spec_def = jax.tree_util.tree_flatten(
            specs, is_leaf=lambda x: isinstance(x, P))
        self._key = (model_def, optimizer_def, streams, rng_def,
                     tuple((a.shape, str(a.dtype)) for a in rng_leaves), spec_def,
                     tuple(spec_leaves))
        self._hash = hash(self._key)  # once: jit hashes it at every call

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, _Graph) and self._hash == other._hash
                                 and self._key == other._key)

    def model(self, params: Any, batch_stats: Any) -> nnx.Module:
        # copy=True: reseeding must not write (traced) keys into the stored streams.
        return nnx.merge(self.model_def, nnx.State(params), nnx.State(batch_stats or {}),
                         self.rng_state, copy=True)


def _reseed(graph: _Graph, model: nnx.Module, key: jax.Array | None) -> None:
    if not graph.streams:
        return
    if key is None:  # evaluation: no stream is drawn from; any fixed key will do
        key = jax.random.key(0)
    elif not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)  # a raw uint32[2] key, as TrainState.rng
    nnx.reseed(model, **{s: jax.random.fold_in(key, i) for i, s in enumerate(graph.streams)})


def _apply(graph: _Graph, variables: dict[str, Any], x: jax.Array, *, train: bool,
           mutable: Any = False, rngs: dict[str, jax.Array] | None = None, **kwargs: Any):
    """``model.apply``'s contract for an NNX model: what make_train_step calls."""
    model = graph.model(variables["params"], variables.get("batch_stats"))
    _reseed(graph, model, (rngs or {}).get("dropout"))
    if train:
        model.train()
    else:
        model.eval()
    out = model(x, **kwargs)
    if mutable:
        return out, {"batch_stats": nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))}
    return out


class _ApplyFn:
    """``functools.partial(_apply, graph)`` that compares by its graph (a jit cache key)."""

    def __init__(self, graph: _Graph):
        self.graph = graph

    def __call__(self, *args: Any, **kwargs: Any):
        return _apply(self.graph, *args, **kwargs)

    def __hash__(self) -> int:
        return hash(self.graph)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ApplyFn) and self.graph == other.graph


@struct.dataclass
class NnxTrainState(TrainState):
    """A :class:`TrainState` whose model is an ``nnx.Module`` and optimizer ``nnx.Optimizer``.

    ``params`` and ``batch_stats`` are the model's ``nnx.Param`` / ``nnx.BatchStat`` state and
    ``opt_state`` the ``nnx.Optimizer``'s (its ``step`` and Optax state), each as a pure
    nested dict; ``graph`` (static) rebuilds the module. Build it with
    :func:`create_nnx_train_state`; get the module back with :func:`merge_model`.
    """

    graph: _Graph = struct.field(pytree_node=False)

    def partition_specs(self) -> NnxTrainState:
        """The state's structure with a ``PartitionSpec`` per leaf, from the model's sharding
        annotations (``nnx.with_partitioning``, ``sharding_names=``; unannotated variables,
        the step and the key are replicated, ``P()``); optimizer moments follow their
        parameter. ``make_strategy("mesh", state_specs=...)`` places the state with them.

        Example:
            >>> import jax, optax
            >>> from flax import nnx
            >>> s = create_nnx_train_state(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), optax.sgd(0.1),
            ...                            jax.random.PRNGKey(0))
            >>> from jax.sharding import PartitionSpec as P
            >>> s.partition_specs().params["kernel"] == P()
            True
        """
        return self.replace(step=P(), rng=P(), **self.graph.specs)

    def apply_gradients(self, grads: Any, batch_stats: Any) -> NnxTrainState:
        """One ``nnx.Optimizer.update`` of the rebuilt model; ``step += 1``.

        Example:
            >>> import jax, jax.numpy as jnp, optax
            >>> from flax import nnx
            >>> s = create_nnx_train_state(nnx.Linear(3, 2, rngs=nnx.Rngs(0)),
            ...                            optax.sgd(0.1), jax.random.PRNGKey(0))
            >>> g = jax.tree_util.tree_map(jnp.ones_like, s.params)
            >>> s2 = s.apply_gradients(g, s.batch_stats)
            >>> int(s2.step), round(float(s.params["bias"][0] - s2.params["bias"][0]), 6)
            (1, 0.1)
        """
        model = self.graph.model(self.params, batch_stats)
        gradients = nnx.state(self.graph.model(grads, batch_stats), nnx.Param)
        optimizer = nnx.merge(self.graph.optimizer_def, nnx.State(self.opt_state))
        optimizer.update(model, gradients)
        return self.replace(step=self.step + 1,
                            params=nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                            batch_stats=batch_stats,
                            opt_state=nnx.to_pure_dict(nnx.state(optimizer)))


def create_nnx_train_state(model: nnx.Module, tx: optax.GradientTransformation,
                           rng: jax.Array, *, wrt: Any = nnx.Param) -> NnxTrainState:
    """Wrap an (initialised) NNX ``model`` and an ``nnx.Optimizer(model, tx)`` as a train state.

    The model is called as ``model(x)`` after ``model.train()`` / ``model.eval()`` (every
    ``jaxcnn.nnx`` layer and zoo model, and Flax NNX's own layers, follow this). Its variables
    must be ``nnx.Param``, ``nnx.BatchStat`` or RNG streams; the streams are reseeded from
    ``fold_in(rng, step)`` at each training step. ``model`` itself is not changed; get the
    trained one with :func:`merge_model`.

    Args:
        model: an ``nnx.Module``, e.g. ``jaxcnn.models.create(name, api="nnx", rngs=...)``.
        tx: an Optax transformation (see :func:`jaxcnn.training.make_optimizer`).
        rng: a ``jax.random.PRNGKey`` or ``jax.random.key``: the training key (dropout,
            augmentation), used as is (the model is already initialised).
        wrt: an NNX filter of the parameters the optimizer updates (``nnx.Optimizer``'s
            ``wrt``); the others are frozen, bit for bit. E.g. transfer learning of the head
            only: ``nnx.All(nnx.Param, nnx.PathContains("output"))``. Default: every
            ``nnx.Param``. (:mod:`jaxcnn.transfer`'s regex patterns work on this state too.)

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from flax import nnx
        >>> from jaxcnn import models
        >>> from jaxcnn.training import make_train_step
        >>> model = models.create("lenet5", num_classes=10, api="nnx", rngs=nnx.Rngs(0))
        >>> state = create_nnx_train_state(model, optax.sgd(0.1), jax.random.PRNGKey(1))
        >>> batch = {"image": jnp.ones((4, 32, 32, 1)), "label": jnp.arange(4)}
        >>> state, metrics = jax.jit(make_train_step())(state, batch)
        >>> int(state.step), state.params["c1"]["kernel"].shape
        (1, (5, 5, 1, 6))
        >>> merge_model(state).c1.kernel[...].shape
        (5, 5, 1, 6)
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be an nnx.Module (e.g. jaxcnn.models.create(name, "
                        f"api='nnx', rngs=nnx.Rngs(0))); got {type(model).__name__}. For a "
                        f"Linen module use jaxcnn.training.create_train_state.")
    check_tx(tx)
    rng = check_rng(rng)
    model_def, params, batch_stats, rng_state, *rest = nnx.split(
        model, nnx.Param, nnx.BatchStat, nnx.RngState, ...)
    other = [f"{'/'.join(map(str, path))} ({type(v).__name__})"
             for state in rest for path, v in nnx.to_flat_state(state)]
    if other:
        raise ValueError(f"the train state carries only nnx.Param, nnx.BatchStat and RNG "
                         f"stream variables; {type(model).__name__} also has "
                         f"{', '.join(other[:5])}. Use nnx.Param or nnx.BatchStat for them, or "
                         f"keep them outside the model.")
    streams = tuple(sorted({v.tag for _, v in nnx.to_flat_state(rng_state)
                            if isinstance(v, nnx.RngKey)}))
    optimizer = nnx.Optimizer(model, tx, wrt=wrt)
    if not jax.tree_util.tree_leaves(nnx.state(model, wrt)):
        raise ValueError(f"`wrt` filter {wrt!r} selects no parameter of "
                         f"{type(model).__name__}; it must select the nnx.Params to train "
                         f"(e.g. nnx.All(nnx.Param, nnx.PathContains('output'))).")
    optimizer_def, opt_state = nnx.split(optimizer)
    specs = {name: nnx.to_pure_dict(nnx.get_partition_spec(state))
             for name, state in (("params", params), ("batch_stats", batch_stats),
                                 ("opt_state", opt_state))}
    graph = _Graph(model_def, optimizer_def, rng_state, streams, specs)
    return NnxTrainState(
        step=jnp.zeros((), jnp.int32), params=nnx.to_pure_dict(params),
        batch_stats=nnx.to_pure_dict(batch_stats), opt_state=nnx.to_pure_dict(opt_state),
        rng=rng, apply_fn=_ApplyFn(graph), tx=tx, graph=graph)


def merge_model(state: NnxTrainState, *, train: bool = False) -> nnx.Module:
    """The NNX model holding ``state``'s variables (a new module; eval mode by default).

    Example:
        >>> import jax, optax
        >>> from flax import nnx
        >>> s = create_nnx_train_state(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), optax.sgd(0.1),
        ...                            jax.random.PRNGKey(0))
        >>> merge_model(s).kernel[...].shape
        (3, 2)
    """
    if not isinstance(state, NnxTrainState):
        raise TypeError(f"`state` must be an NnxTrainState (create_nnx_train_state), got "
                        f"{type(state).__name__}.")
    model = state.graph.model(jax.device_get(state.params), jax.device_get(state.batch_stats))
    if train:
        model.train()
    else:
        model.eval()
    return model
