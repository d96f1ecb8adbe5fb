"""Private helpers shared by the layer modules: dtype promotion and window geometry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import numpy as np

from jaxcnn.functional._checks import check_float, check_rank, normalize_tuple

Array = Any
Dtype = Any
Initializer = Any

_LAYOUT = "(N, *spatial, C)"


def promote(x: Array, *params: Array | None, dtype: Dtype | None) -> list[Array | None]:
    """Cast ``x`` and the params to ``dtype`` (None: their promoted dtype, as Flax does).

    ``x`` is checked first: promotion would otherwise turn integer images into floats silently.
    """
    check_float(x, "x")
    return nn.dtypes.promote_dtype(x, *params, dtype=dtype)


def window_shape(kernel_size: int | Sequence[int], x: Array, name: str = "kernel_size"
                 ) -> tuple[int, ...]:
    """The per-dimension window; its length (or ``x.ndim - 2`` for an int) fixes the rank."""
    if isinstance(kernel_size, int | np.integer):
        check_rank(x, "x", (3, 4, 5), _LAYOUT + " with 1-3 spatial dims")
        return normalize_tuple(kernel_size, np.ndim(x) - 2, name)
    window = tuple(kernel_size)
    if not 1 <= len(window) <= 3:
        raise ValueError(f"`{name}` must be an int or 1-3 ints (one per spatial dim), "
                         f"got {kernel_size!r}.")
    if np.ndim(x) == len(window) + 1:
        raise ValueError(
            f"`x` must have a batch axis (N, *spatial, C): got shape {np.shape(x)} for the "
            f"{len(window)}-D `{name}`={kernel_size!r}; for a single example pass `x[None]`."
        )
    check_rank(x, "x", len(window) + 2,
               f"{_LAYOUT} to match the {len(window)}-D `{name}`={kernel_size!r}")
    return normalize_tuple(window, len(window), name)


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int, or ``ValueError`` naming ``name`` when it is not an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def bias_param(module: nn.Module, shape: tuple[int, ...]) -> Array | None:
    """The module's ``bias`` parameter of ``shape``, or None when ``module.use_bias`` is off."""
    if not module.use_bias:
        return None
    return module.param("bias", module.bias_init, shape, module.param_dtype)
