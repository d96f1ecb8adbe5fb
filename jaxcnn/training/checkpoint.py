"""Orbax checkpoints of a :class:`TrainState`: save every N steps, keep the last k, resume.

Orbax writes each checkpoint into ``<step>.orbax-checkpoint-tmp-*`` and renames it to
``<step>`` only when complete (atomic rename on local and POSIX file systems), so a checkpoint
under a final name is never half-written; a process killed mid-save leaves only the tmp
directory, which Orbax never lists as a step and deletes when the next :class:`Checkpointer`
opens the directory. Each checkpoint also records a SHA-256 digest of its arrays, checked on
restore: a truncated or garbled checkpoint is detected (Orbax alone would restore garbled bytes
silently) and :meth:`Checkpointer.restore_latest` falls back to the previous one. Restoring
reads JSON metadata and TensorStore arrays only, never pickle, so a checkpoint cannot run code.

The saved pytree is the whole state (step, params, batch_stats, opt_state, rng); the data order
is a function of ``(seed, epoch)`` and the step, so restoring the state is enough to resume
bit-identically.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxcnn.training.state import TrainState

_DIGEST_KEY = "jaxcnn_sha256"


def _saved_fields(state: TrainState) -> dict[str, Any]:
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rng": state.rng}


def _global(fields: dict[str, Any]) -> dict[str, Any]:
    """Multi-process: every process-local leaf as a global array replicated on all devices.

    Each process holds the same state (``get_state`` of a replicated mesh or pmap state);
    Orbax saves only global arrays in a multi-process run (a host-local one is a
    ``ValueError``), so the local copies become one replicated global array per leaf.
    """
    if jax.process_count() == 1:
        return fields
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    replicated = NamedSharding(Mesh(np.asarray(jax.devices()), ("replica",)), P())

    def put(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf  # already global
        return jax.make_array_from_process_local_data(replicated, np.asarray(leaf))

    return jax.tree_util.tree_map(put, fields)


def _local(fields: dict[str, Any]) -> dict[str, Any]:
    """Each replicated global leaf as this process's copy: the state ``like`` was, host-local."""
    def get(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf.addressable_data(0)
        return leaf

    return jax.tree_util.tree_map(get, fields)


def _digest(fields: dict[str, Any]) -> str | None:
    """SHA-256 of every leaf's tree path, dtype, shape and bytes.

    None when a leaf is sharded across processes (no process holds all of it); such a
    checkpoint is restored unverified.
    """
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(fields):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if not leaf.is_fully_replicated:
                return None
            leaf = leaf.addressable_data(0)  # replicated: this process's copy is the value
        array = np.ascontiguousarray(jax.device_get(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape};".encode())
        h.update(array.reshape(-1).view(np.uint8))
    return h.hexdigest()


class Checkpointer:
    """Save and restore ``TrainState`` checkpoints in ``directory`` with Orbax.

    Args:
        directory: where step-numbered checkpoints live (created if missing).
        every_steps: save when ``step % every_steps == 0`` (and always at the end: ``force``).
        keep: how many of the most recent checkpoints to keep.

    Example:
        >>> import tempfile, jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> from jaxcnn.training import create_train_state
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(2)(x)
        >>> state = create_train_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(0),
        ...                            jnp.ones((1, 3)))
        >>> with Checkpointer(tempfile.mkdtemp(), every_steps=1, keep=2) as ckpt:
        ...     ckpt.save(state, force=True)
        ...     restored = ckpt.restore_latest(state)
        True
        >>> int(restored.step)
        0
    """

    def __init__(self, directory: str | os.PathLike, *, every_steps: int = 1000, keep: int = 3):
        if every_steps < 1 or keep < 1:
            raise ValueError(f"`every_steps` and `keep` must be >= 1, got {every_steps}, {keep}.")
        self.directory = os.path.abspath(os.fspath(directory))
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                # Orbax's default policy also saves whenever the directory is empty (every
                # step until the first save); keep only the interval (and preemption saves).
                save_decision_policy=ocp.checkpoint_managers.AnySavePolicy([
                    ocp.checkpoint_managers.FixedIntervalPolicy(every_steps),
                    ocp.checkpoint_managers.PreemptionCheckpointingPolicy()]),
                # A save killed before its rename leaves a tmp directory: delete it.
                cleanup_tmp_directories=True,
                # Synchronous saves: a preempted process must not exit with a save in flight.
                enable_async_checkpointing=False))

    def _path(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def save(self, state: TrainState, *, force: bool = False) -> bool:
        """Save ``state`` at its step if the interval says so (or ``force``); True if saved."""
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():  # e.g. the final save right after a periodic one
            return False
        if not (force or self.should_save(step)):
            return False
        fields = _global(_saved_fields(state))
        digest = _digest(fields)
        return self._manager.save(step, args=ocp.args.StandardSave(fields), force=True,
                                  custom_metadata={_DIGEST_KEY: digest} if digest else None)

    def should_save(self, step: int) -> bool:
        """Whether :meth:`save` at ``step`` would write (the ``every_steps`` interval)."""
        return self._manager.should_save(step)

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Steps of the checkpoints on disk, oldest first."""
        return sorted(self._manager.all_steps())

    def restore(self, step: int, like: TrainState) -> TrainState:
        """Restore the checkpoint of ``step`` into the structure (and dtypes) of ``like``.

        Raises:
            ValueError: naming the checkpoint's path, if it cannot be read into ``like``, has
                no commit record (its ``_CHECKPOINT_METADATA`` is missing or unreadable), or
                its arrays no longer match the SHA-256 digest recorded when it was saved.
        """
        path = self._path(step)
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _saved_fields(like))
        try:
            fields = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # Orbax and TensorStore raise many types for unreadable files
            reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            raise ValueError(f"checkpoint {path} could not be restored: "
                             f"{type(e).__name__}: {reason}") from e
        metadata = self._manager.metadata(step)
        if metadata.commit_timestamp_nsecs is None:  # written by Orbax when a save commits
            raise ValueError(f"checkpoint {path} has no commit record: its "
                             f"_CHECKPOINT_METADATA is missing or unreadable.")
        expected = (metadata.custom_metadata or {}).get(_DIGEST_KEY)
        if expected is not None and _digest(fields) not in (None, expected):
            raise ValueError(f"checkpoint {path} is corrupt: its arrays do not match the "
                             f"SHA-256 digest recorded when it was saved.")
        return like.replace(**_local(fields))

    def restore_latest(self, like: TrainState) -> TrainState:
        """Restore the newest intact checkpoint, or return ``like`` when there is none.

        A checkpoint that :meth:`restore` rejects (unreadable, uncommitted or garbled) is
        skipped with a ``RuntimeWarning`` naming its path and the error, and the next older one
        is tried. Once an older one restores, each rejected newer one is renamed aside to
        ``<step>.corrupt`` (kept for inspection, never deleted, invisible to Orbax) so that
        training saves those steps afresh.

        Raises:
            ValueError: naming the directory and each step's error, if checkpoints exist but
                none restores; nothing is renamed then, since the usual cause is a model or
                optimizer that changed since they were written, not corruption.
        """
        failures: list[tuple[int, ValueError]] = []
        for step in reversed(self.all_steps()):
            try:
                restored = self.restore(step, like)
            except ValueError as e:
                failures.append((step, e))
                continue
            for bad, error in failures:
                moved = self._set_aside(bad)
                warnings.warn(f"{error} Restored step {step} instead; moved the bad checkpoint "
                              f"to {moved}.", RuntimeWarning, stacklevel=2)
            if failures:
                self._manager.reload()
            return restored
        if failures:
            errors = "\n".join(f"  step {s}: {e}" for s, e in failures)
            raise ValueError(
                f"none of the checkpoints in {self.directory} could be restored:\n{errors}\n"
                f"If the model, optimizer or dtype changed since they were written, use a new "
                f"workdir; otherwise move the corrupt ones aside and rerun.")
        return like

    def _set_aside(self, step: int) -> str:
        """Rename ``<step>`` to ``<step>.corrupt`` (``.corrupt-2``, ... if taken); new path."""
        target, n = self._path(step) + ".corrupt", 1
        while os.path.exists(target):
            n += 1
            target = f"{self._path(step)}.corrupt-{n}"
        if jax.process_index() == 0:  # one process renames the shared directory
            os.rename(self._path(step), target)
        if jax.process_count() > 1:  # the others must not see the old name any more
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"jaxcnn_checkpoint_set_aside_{step}")
        return target

    def close(self) -> None:
        """Wait for pending writes and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
