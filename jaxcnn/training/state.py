"""The training state: one pytree holding everything a step reads and writes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class TrainState:
    """Step counter, parameters, BatchNorm statistics, optimizer state and the PRNG key.

    A plain pytree (``flax.struct``), so it is jit/pmap/checkpoint friendly; ``apply_fn`` and
    ``tx`` are static fields. ``rng`` is a raw ``uint32[2]`` key (``jax.random.PRNGKey``
    style) so Orbax saves it as an ordinary array; per-step keys are derived with
    ``fold_in(rng, step)``, which is what makes a resumed run bit-identical.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    def apply_gradients(self, grads: Any, batch_stats: Any) -> TrainState:
        """One optimizer update: ``params <- params + tx.update(grads)``; ``step += 1``.

        Example:
            >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
            >>> class Net(nn.Module):
            ...     @nn.compact
            ...     def __call__(self, x, train=False):
            ...         return nn.Dense(2)(x)
            >>> s = create_train_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(0),
            ...                        jnp.ones((1, 3)))
            >>> g = jax.tree_util.tree_map(jnp.ones_like, s.params)
            >>> int(s.apply_gradients(g, s.batch_stats).step)
            1
        """
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            batch_stats=batch_stats, opt_state=opt_state)


def check_rng(rng: Any) -> jax.Array:
    """``rng`` as a raw ``uint32[2]`` key (what :class:`TrainState` holds), or a ``TypeError``."""
    dtype = getattr(rng, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jax.dtypes.prng_key)
                             or (dtype == jnp.uint32 and jnp.shape(rng) == (2,))):
        raise TypeError(f"`rng` must be one PRNG key, `jax.random.PRNGKey(seed)` or "
                        f"`jax.random.key(seed)`, got {rng!r}.")
    return jax.random.key_data(rng) if jnp.issubdtype(dtype, jax.dtypes.prng_key) else rng


def check_tx(tx: Any) -> None:
    """A ``TypeError`` unless ``tx`` is an Optax ``GradientTransformation``."""
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise TypeError(f"`tx` must be an optax GradientTransformation, e.g. "
                        f"`optax.sgd(0.1)` or `jaxcnn.training.make_optimizer(...)`, got {tx!r}.")


@functools.partial(jax.jit, static_argnums=0)
def _init_variables(model: nn.Module, key: jax.Array, x: jax.Array):
    # Module-level and keyed on the (hashable) module, so building a second state for the
    # same model and input shape reuses the compiled init instead of compiling it again.
    return model.init({"params": key, "dropout": key}, x, train=False)


class _Unhashed:
    """Wrap an unhashable module as an identity-hashed static argument."""

    def __init__(self, module: nn.Module):
        self.module = module

    def init(self, *args, **kwargs):
        return self.module.init(*args, **kwargs)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
                       sample_input: jax.Array) -> TrainState:
    """Initialise ``model`` on ``sample_input`` and wrap it with optimizer ``tx``.

    Args:
        model: a Flax module called as ``model(x, train=...)`` (every jaxcnn model is).
        tx: an Optax transformation (see :func:`jaxcnn.training.make_optimizer`).
        rng: a raw ``jax.random.PRNGKey``; split into an init key and the training key.
        sample_input: an input batch (shape and dtype matter, values do not).

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(2)(x)
        >>> s = create_train_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(0),
        ...                        jnp.ones((1, 3)))
        >>> s.params["Dense_0"]["kernel"].shape, int(s.step)
        ((3, 2), 0)
    """
    rng = check_rng(rng)
    check_tx(tx)
    init_rng, train_rng = jax.random.split(rng)

    try:
        hash(model)
        variables = _init_variables(model, init_rng, sample_input)
    except TypeError:  # a module with unhashable fields (e.g. a dict option): compile per call
        variables = jax.jit(_init_variables.__wrapped__, static_argnums=0)(
            _Unhashed(model), init_rng, sample_input)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      rng=train_rng, apply_fn=model.apply, tx=tx)
