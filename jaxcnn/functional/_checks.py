"""Argument validation shared by every function in :mod:`jaxcnn.functional`.

All checks run on static shapes and Python values, so they cost nothing under ``jit``
and raise at trace time with a message that names the argument, the shapes and the fix.
:func:`check_labels` also looks at the values, but only of concrete (untraced) arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FLOAT_DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)


def check_rank(x: Any, name: str, ranks: int | Sequence[int], layout: str = "") -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``ranks``.

    Example:
        >>> import jax.numpy as jnp
        >>> check_rank(jnp.ones((2, 8, 8, 3)), "x", 4, "(N, H, W, C)")
    """
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    ndim = np.ndim(x)
    if ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        hint = f" laid out as {layout}" if layout else ""
        raise ValueError(
            f"`{name}` must have rank {want}{hint}, got rank {ndim} with shape {np.shape(x)}."
        )


def check_float(x: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating dtype (float16/bfloat16/float32/float64).

    Example:
        >>> import jax.numpy as jnp
        >>> check_float(jnp.ones(3), "x")
    """
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a floating-point array (float32 or bfloat16), got dtype {dtype}; "
            f"convert it first, e.g. `{name}.astype(jnp.float32)` (images: divide by 255)."
        )


def normalize_tuple(value: int | Sequence[int], n: int, name: str, minimum: int = 1
                    ) -> tuple[int, ...]:
    """Broadcast an int or length-``n`` sequence of ints to a tuple, checking ``>= minimum``.

    Example:
        >>> normalize_tuple(2, 3, "stride")
        (2, 2, 2)
        >>> normalize_tuple((1, 2), 2, "dilation")
        (1, 2)
    """
    if isinstance(value, int | np.integer):
        out = (int(value),) * n
    else:
        try:
            out = tuple(int(v) for v in value)
        except TypeError:
            raise TypeError(
                f"`{name}` must be an int or a sequence of {n} ints, got {value!r}."
            ) from None
        if len(out) != n:
            raise ValueError(
                f"`{name}` must be an int or a sequence of {n} ints (one per spatial dimension), "
                f"got {value!r} with {len(out)} entries."
            )
    if any(v < minimum for v in out):
        raise ValueError(f"`{name}` must be >= {minimum} in every dimension, got {value!r}.")
    return out


def check_channels(x_channels: int, expected: int, x_name: str, other: str) -> None:
    """Raise ``ValueError`` when the channel count of ``x_name`` differs from ``expected``.

    Example:
        >>> check_channels(3, 3, "x", "kernel.shape[-2] * groups")
    """
    if x_channels != expected:
        raise ValueError(
            f"channel mismatch: `{x_name}` has {x_channels} channels (last axis) but {other} "
            f"is {expected}; the two must be equal."
        )


def check_labels(labels: Any, num_classes: int, name: str = "labels", fix: str | None = None
                 ) -> None:
    """Raise unless ``labels`` are integer class indices in ``[0, num_classes)``.

    The dtype is always checked. The values only when ``labels`` is concrete: under ``jit``
    they are unknown at trace time, so a jitted step relies on the data pipeline's check
    (:func:`jaxcnn.data.check_batch`). An index outside the range would otherwise give a
    silent all-zero one-hot row, a NaN loss or an uncounted confusion-matrix entry. ``fix``
    replaces the default advice (remap the labels) in the message.

    Example:
        >>> import numpy as np
        >>> check_labels(np.array([0, 9]), 10)
        >>> check_labels(np.array([1, 10]), 10)
        Traceback (most recent call last):
        ...
        ValueError: `labels` must lie in [0, num_classes) = [0, 10), got 1 value(s) outside, ...
    """
    dtype = jnp.result_type(labels)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"`{name}` must be integer class indices, got dtype {dtype}; convert them, e.g. "
            f"`{name}.astype(jnp.int32)` (one-hot or soft labels: `{name}.argmax(-1)`).")
    try:
        values = np.asarray(labels)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return  # traced: values unknown until run time
    outside = values[(values < 0) | (values >= num_classes)]
    if outside.size:
        fix = fix or (f"remap them (1-based labels: `{name} - 1`) or use the right "
                      f"num_classes")
        raise ValueError(
            f"`{name}` must lie in [0, num_classes) = [0, {num_classes}), got {outside.size} "
            f"value(s) outside, e.g. {sorted(set(outside.tolist()))[:5]}; {fix}.")
