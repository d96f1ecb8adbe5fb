"""Data parallelism three ways behind one interface: single device, ``pmap``, ``jit`` + mesh.

A :class:`Strategy` owns the compiled steps and knows how to place the state and a batch:

* ``"none"``: ``jax.jit`` on one device.
* ``"pmap"``: the state is replicated, a batch of ``N`` is reshaped to ``[devices, N // devices,
  ...]`` and the step averages gradients and BatchNorm statistics with ``lax.pmean`` over the
  axis ``"batch"`` (models must pool BatchNorm statistics over it: ``bn_axis_name="batch"``).
* ``"mesh"``: ``jax.jit`` with ``NamedSharding``: the state replicated (``P()``), the batch
  split along the mesh axis ``"data"`` (``P("data")``). The step is the single-device step on
  the global batch; XLA partitions it and inserts the all-reduces, so there is no ``pmean``
  to get wrong. The same code runs multi-host: each process passes its own shard of the
  global batch (``jax.make_array_from_process_local_data``).

Note for ``shard_map`` users: with ``check_vma=True`` (the default) the gradient of a loss
w.r.t. replicated parameters is already summed across the mapped axis; ``pmean``-ing it again
would divide by the device count twice over. ``tests/training/test_parallel.py`` checks it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxcnn.training.state import TrainState
from jaxcnn.training.steps import make_eval_step, make_train_step

PARALLEL_MODES = ("none", "pmap", "mesh")
PMAP_AXIS = "batch"
MESH_AXIS = "data"


@dataclasses.dataclass(frozen=True)
class Strategy:
    """Compiled steps plus the placement rules of one parallel mode.

    Attributes:
        mode: ``"none"``, ``"pmap"`` or ``"mesh"``.
        num_devices: devices the global batch is split over.
        train_step: ``(placed_state, placed_batch) -> (placed_state, metrics)``, donating the
            state's buffers.
        eval_step: ``(placed_state, placed_batch) -> sums``.
        put_state: place a ``TrainState`` for this mode, always in new buffers (a copy, once
            per run): ``train_step`` donates what it is given, so placing must never alias
            the caller's arrays, which stay usable after training.
        get_state: bring it back as an ordinary (unreplicated) ``TrainState`` (``"pmap"``:
            numpy copies of this process's first device's replica, for checkpoints).
        put_batch: place a process-local numpy batch (the global batch when single-process).
        get_metrics: metrics or sums as numpy scalars/arrays.
    """

    mode: str
    num_devices: int
    train_step: Callable
    eval_step: Callable
    put_state: Callable[[TrainState], Any]
    get_state: Callable[[Any], TrainState]
    put_batch: Callable[[dict[str, np.ndarray]], Any]
    get_metrics: Callable[[Any], dict[str, np.ndarray]]


def _check_divisible(batch: dict[str, np.ndarray], n: int, mode: str) -> None:
    size = len(batch["label"])
    if size % n:
        raise ValueError(
            f"parallel={mode!r}: the batch of {size} examples does not split over {n} devices; "
            f"use a batch size divisible by {n}."
        )


def make_strategy(mode: str, *, num_classes: int, devices: list | None = None,
                  state_specs: Any = None, **step_options: Any) -> Strategy:
    """The :class:`Strategy` for ``mode`` (``"none"`` | ``"pmap"`` | ``"mesh"``).

    ``step_options`` go to :func:`make_train_step` (``label_smoothing``, ``l2_weight_decay``,
    ``aux_weights``, ``augment``, ``augment_labels``, ...), with ``num_classes``. ``devices``
    defaults to all devices (``jax.devices()``, every process's for multi-host mesh runs;
    ``jax.local_devices()`` for pmap). ``state_specs`` (``"mesh"`` only): a ``PartitionSpec``
    per state leaf over the mesh axis ``"data"``, e.g. an NNX model's sharding annotations
    (:meth:`jaxcnn.training.NnxTrainState.partition_specs`); default: the state replicated.

    Example:
        >>> s = make_strategy("mesh", num_classes=10)
        >>> s.mode, s.num_devices == len(jax.devices())
        ('mesh', True)
    """
    if mode not in PARALLEL_MODES:
        raise _unknown_mode(mode)
    if state_specs is not None and mode != "mesh":
        raise ValueError(f"`state_specs` shard the state over a mesh: use it with "
                         f"parallel='mesh', not {mode!r}.")
    if mode == "none":
        device = (devices or jax.local_devices())[0]
        return Strategy(
            mode, 1,
            jax.jit(make_train_step(num_classes=num_classes, **step_options), donate_argnums=0),
            jax.jit(make_eval_step(num_classes=num_classes)),
            put_state=lambda s: jax.device_put(s, device, may_alias=False),
            get_state=lambda s: s,
            put_batch=lambda b: jax.device_put(b, device),
            get_metrics=lambda m: jax.tree_util.tree_map(np.asarray, m))
    if mode == "pmap":
        devices = devices or jax.local_devices()
        n = len(devices)
        train = jax.pmap(make_train_step(axis_name=PMAP_AXIS, num_classes=num_classes,
                                         **step_options),
                         axis_name=PMAP_AXIS, devices=devices, donate_argnums=0)
        evaluate = jax.pmap(make_eval_step(num_classes=num_classes, axis_name=PMAP_AXIS),
                            axis_name=PMAP_AXIS, devices=devices)

        # A leading device axis sharded over the devices: jax.device_put's replacement for the
        # deprecated device_put_replicated / device_put_sharded.
        stacked = NamedSharding(Mesh(np.asarray(devices), (PMAP_AXIS,)), P(PMAP_AXIS))

        def put_batch(batch):
            _check_divisible(batch, n, mode)
            return jax.device_put({k: np.asarray(v).reshape((n, -1) + np.shape(v)[1:])
                                   for k, v in batch.items()}, stacked)

        def put_state(state):
            return jax.device_put(jax.tree_util.tree_map(
                lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), state), stacked)

        def first_device(tree):
            # This process's first device's copy, read on the host: `x[0]` would compile one
            # slice per leaf shape (a VGG's state: ~90 programs, seconds), and on several
            # processes index a device of another process.
            return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0))[0], tree)

        return Strategy(
            mode, n, train, evaluate,
            put_state=put_state,
            get_state=first_device,
            put_batch=put_batch,
            get_metrics=first_device)
    if mode == "mesh":
        devices = devices or jax.devices()
        mesh = Mesh(np.asarray(devices), (MESH_AXIS,))
        replicated = NamedSharding(mesh, P())
        data = NamedSharding(mesh, P(MESH_AXIS))
        n = len(devices)
        # A prefix of the state: one sharding for all of it, or one per leaf.
        placement = replicated if state_specs is None else jax.tree_util.tree_map(
            lambda spec: NamedSharding(mesh, spec), state_specs,
            is_leaf=lambda x: isinstance(x, P))
        train = jax.jit(make_train_step(num_classes=num_classes, **step_options),
                        in_shardings=(placement, data),
                        out_shardings=(placement, replicated), donate_argnums=0)
        evaluate = jax.jit(make_eval_step(num_classes=num_classes),
                           in_shardings=(placement, data), out_shardings=replicated)

        def put_batch(batch):
            local = n // jax.process_count()
            _check_divisible(batch, local, mode)
            return {k: jax.make_array_from_process_local_data(data, np.asarray(v))
                    for k, v in batch.items()}

        def put_state(state):
            # Through a host copy: device_put to the replicated sharding would reuse a
            # device-0 input buffer as the device-0 shard (even with may_alias=False), which
            # the donated step then deletes; and multi-process, a committed local array (a
            # restored checkpoint's) cannot be device_put onto other hosts' devices, while
            # every process holding the same value is what make_array_from_process_local_data
            # expects.
            def put(x, sharding=replicated):
                if isinstance(x, jax.Array) and not x.is_fully_addressable:
                    return jax.device_put(jnp.copy(x), sharding)  # already global
                if sharding.is_fully_replicated:
                    return jax.make_array_from_process_local_data(sharding, np.array(x))
                # Sharded (state_specs): every process holds the whole value; each device
                # gets its slice.
                value = np.array(x)
                return jax.make_array_from_callback(value.shape, sharding, lambda i: value[i])

            if state_specs is None:
                return jax.tree_util.tree_map(put, state)
            return jax.tree_util.tree_map(put, state, placement)

        def get(x):
            if not isinstance(x, jax.Array):
                return x
            if x.is_fully_replicated:  # every process holds a full copy
                return jnp.asarray(x.addressable_data(0))
            if x.is_fully_addressable:
                return jnp.asarray(np.asarray(x))
            from jax.experimental import multihost_utils

            return jnp.asarray(multihost_utils.process_allgather(x, tiled=True))

        def get_state(s):
            return jax.tree_util.tree_map(get, s)

        return Strategy(
            mode, n, train, evaluate,
            put_state=put_state,
            get_state=get_state,
            put_batch=put_batch,
            get_metrics=lambda m: jax.tree_util.tree_map(
                lambda x: np.asarray(x.addressable_data(0)), m))
    raise _unknown_mode(mode)


def _unknown_mode(mode: Any) -> ValueError:
    close = difflib.get_close_matches(str(mode), PARALLEL_MODES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown parallel mode {mode!r}.{hint} Choose one of "
                      f"{', '.join(PARALLEL_MODES)}.")
