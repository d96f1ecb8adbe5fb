"""Orbax checkpoints of a :class:`TrainState`: save every N steps, keep the last k, resume.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
checkpoint under a final ``<step>`` name is never half-written. The saved pytree is the whole
state (step, params, batch_stats, opt_state, rng); the data order is a function of
``(seed, epoch)`` and the step, so restoring the state is enough to resume bit-identically.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxcnn.training.state import TrainState


def _saved_fields(state: TrainState) -> dict[str, Any]:
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rng": state.rng}


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
                # Synchronous saves: a preempted process must not exit with a save in flight.
                enable_async_checkpointing=False))

    def save(self, state: TrainState, *, force: bool = False) -> bool:
        """Save ``state`` at its step if the interval says so (or ``force``); True if saved."""
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():  # e.g. the final save right after a periodic one
            return False
        return self._manager.save(step, args=ocp.args.StandardSave(_saved_fields(state)),
                                  force=force)

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
        """Restore the checkpoint of ``step`` into the structure (and dtypes) of ``like``."""
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _saved_fields(like))
        fields = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        return like.replace(**fields)

    def restore_latest(self, like: TrainState) -> TrainState:
        """Restore the newest checkpoint, or return ``like`` unchanged when there is none."""
        step = self.latest_step()
        return like if step is None else self.restore(step, like)

    def close(self) -> None:
        """Wait for pending writes and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
