"""Optimizers and learning-rate schedules, chosen by name, all from Optax.

No optimizer math lives here: each name maps to an ``optax`` transformation, chained with
gradient clipping and (decoupled) weight decay when asked.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from numbers import Integral

import jax
import jax.numpy as jnp
import numpy as np
import optax

SCHEDULES = ("constant", "step", "exponential", "inverse_time", "warmup_cosine")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")


def _unknown(kind: str, name: str, choices: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(str(name), choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}.{hint} Choose one of {', '.join(choices)}.")


def make_schedule(name: str, learning_rate: float, *, total_steps: int, warmup_steps: int = 0,
                  decay_rate: float = 0.1, decay_steps: int | None = None,
                  boundaries: Sequence[int] = ()) -> Callable[[jax.Array], jax.Array]:
    """A learning-rate schedule ``step -> lr``.

    * ``constant``: ``lr``.
    * ``step``: multiply by ``decay_rate`` at each of ``boundaries`` (steps); the classic
      ResNet/VGG "divide by 10 at epochs 30, 60, 90".
    * ``exponential``: ``lr * decay_rate ** (step / decay_steps)``.
    * ``inverse_time``: ``lr / (1 + decay_rate * step)`` — Keras's legacy ``decay`` argument
      (``RMSprop(lr=1e-4, decay=1e-6)`` is ``inverse_time`` with ``decay_rate=1e-6``).
    * ``warmup_cosine``: linear warm-up from 0 over ``warmup_steps``, then cosine to 0 at
      ``total_steps`` (Goyal et al. 2017; the Flax ImageNet recipe).

    Example:
        >>> s = make_schedule("step", 0.1, total_steps=100, boundaries=(50,))
        >>> [round(float(s(t)), 4) for t in (0, 49, 50)]
        [0.1, 0.1, 0.01]
        >>> s = make_schedule("inverse_time", 1e-4, total_steps=10, decay_rate=1e-6)
        >>> round(float(s(1_000_000)) / 1e-4, 6)  # halved after 1/decay_rate steps
        0.5
    """
    if not isinstance(name, str) or name not in SCHEDULES:
        raise _unknown("schedule", name, SCHEDULES)
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0, got {learning_rate}.")
    if isinstance(total_steps, bool) or not isinstance(total_steps, Integral) or total_steps < 1:
        raise ValueError(f"`total_steps` must be a positive int, got {total_steps!r}.")
    if name == "constant":
        return optax.constant_schedule(learning_rate)
    if name == "step":
        if not boundaries:
            raise ValueError("schedule 'step' needs `boundaries` (steps at which to decay).")
        return optax.piecewise_constant_schedule(
            learning_rate, {int(b): decay_rate for b in boundaries})
    if name == "exponential":
        return optax.exponential_decay(learning_rate, decay_steps or total_steps, decay_rate)
    if name == "inverse_time":
        # optax has no inverse-time schedule; this is a schedule (a function of the step), not
        # optimizer math.
        return lambda step: learning_rate / (1.0 + decay_rate * jnp.asarray(step, jnp.float32))
    if name == "warmup_cosine":
        warmup = min(warmup_steps, max(total_steps - 1, 0))
        return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup,
                                                  max(total_steps, warmup + 1))
    raise _unknown("schedule", name, SCHEDULES)


def _decay_mask(params):
    # Decay kernels only: biases and normalization scales/offsets are left alone.
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def make_optimizer(name: str, schedule: float | Callable, *, momentum: float = 0.9,
                   weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
                   clip_norm: float | None = None, rmsprop_decay: float = 0.9,
                   eps: float | None = None) -> optax.GradientTransformation:
    """An Optax optimizer by name: sgd, momentum, nesterov, rmsprop, adam, adamw.

    ``weight_decay`` with ``decoupled_weight_decay=True`` (or ``adamw``) is Loshchilov &
    Hutter's decoupled decay (``optax.add_decayed_weights`` before the learning-rate scaling);
    otherwise it is applied as an L2 loss term by the train step, not here. ``clip_norm``
    clips the global gradient norm first.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = make_optimizer("nesterov", 0.1, momentum=0.9, clip_norm=1.0)
        >>> state = tx.init({"w": jnp.ones(3)})
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise _unknown("optimizer", name, OPTIMIZERS)
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"`clip_norm` must be > 0 (or None for no clipping), got {clip_norm!r}.")
    parts = []
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    eps_kw = {} if eps is None else {"eps": eps}
    if name == "adamw":
        parts.append(optax.adamw(schedule, weight_decay=weight_decay, mask=_decay_mask,
                                 **eps_kw))
        return optax.chain(*parts)
    # Each optimizer is optax's own ``chain(direction, scale_by_learning_rate)`` (what
    # ``optax.sgd`` / ``rmsprop`` / ``adam`` build), split so that decoupled decay goes between
    # the two, as in ``optax.adamw``: added before the whole optimizer it would pass through
    # the momentum / second-moment statistics, i.e. be coupled L2 decay.
    if name == "sgd":
        direction = optax.identity()
    elif name in ("momentum", "nesterov"):
        direction = optax.trace(decay=momentum, nesterov=name == "nesterov")
    elif name == "rmsprop":
        direction = optax.scale_by_rms(decay=rmsprop_decay, **eps_kw)
    elif name == "adam":
        direction = optax.scale_by_adam(**eps_kw)
    else:
        raise _unknown("optimizer", name, OPTIMIZERS)
    decay = ([optax.add_decayed_weights(weight_decay, mask=_decay_mask)]
             if decoupled_weight_decay and weight_decay else [])
    parts.append(optax.chain(direction, *decay, optax.scale_by_learning_rate(schedule)))
    return optax.chain(*parts)


def schedule_count(opt_state) -> int | None:
    """How many updates an optimizer from :func:`make_optimizer` has applied, or None.

    The count of its learning-rate schedule (``optax.ScaleByScheduleState``): the schedule is
    at ``schedule(count)`` for the next update, and the last applied one used
    ``schedule(count - 1)``. A step that the train step skips as non-finite advances
    ``TrainState.step`` but not this count (as under ``optax.apply_if_finite``), so it is the
    clock to read the learning rate from. None for a constant learning rate (no schedule
    state).

    Example:
        >>> import jax.numpy as jnp
        >>> tx = make_optimizer("sgd", make_schedule("constant", 0.1, total_steps=10))
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> _, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> schedule_count(state)
        1
    """
    def is_schedule(node):
        return isinstance(node, optax.ScaleByScheduleState)

    for node in jax.tree_util.tree_leaves(opt_state, is_leaf=is_schedule):
        if is_schedule(node):
            count = node.count
            if isinstance(count, jax.Array) and not count.is_fully_addressable:
                count = count.addressable_data(0)  # multi-host mesh: replicated
            # pmap: one (equal) copy per device
            return int(np.asarray(jax.device_get(count)).reshape(-1)[0])
    return None
