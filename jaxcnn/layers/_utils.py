"""Private helpers shared by the layer modules: dtype promotion, window geometry, parameters
checked against the input, and the dropout rng stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.errors
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


_REFIT = ("Pass `x` shaped as at init (same channels; for layers after a flatten, the same "
          "image size) to the model built as at init, or call `model.init` again with the new "
          "input shape.")


def check_fits(where: str, name: str, stored: tuple[int, ...], shape: tuple[int, ...],
               x: Array, unit: str = "channels", fix: str = _REFIT) -> None:
    """Raise ``ValueError`` when a layer's stored variable ``name`` (shape ``stored``) is not
    the ``shape`` that the input ``x`` and the layer's settings need; ``where`` names the
    layer and ``fix`` says what to do. Both front ends (Linen's :func:`checked_param`, the NNX
    layers' calls) raise this.

    Example:
        >>> import jax.numpy as jnp
        >>> check_fits("dense", "kernel", (3, 2), (4, 2), jnp.ones((1, 4)), unit="features")
        Traceback (most recent call last):
        ...
        ValueError: `x` with shape (1, 4) (4 features on the last axis) does not fit ...
    """
    stored, shape = tuple(stored), tuple(shape)
    if stored != shape:
        raise ValueError(
            f"`x` with shape {tuple(np.shape(x))} ({np.shape(x)[-1]} {unit} on the last "
            f"axis) does not fit layer '{where}': its `{name}` was initialised with shape "
            f"{stored}, but this input and the layer's settings need {shape}. {fix}")


def checked_param(module: nn.Module, name: str, init: Initializer, shape: tuple[int, ...],
                  dtype: Dtype, x: Array, unit: str = "channels",
                  collection: str = "params") -> Array:
    """``module.param(name, init, shape, dtype)``, first checking a stored value against ``x``.

    ``shape`` is what ``x`` implies. Variables initialised for another input (say RGB weights
    fed a greyscale image) would otherwise stop in Flax's ``ScopeParamShapeError``, which names
    the parameter but neither the input nor the fix. Another ``collection`` (``batch_stats``)
    is declared with ``module.variable`` and ``init(None, shape, dtype)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxcnn.layers import Dense
        >>> variables = Dense(2).init(jax.random.key(0), jnp.ones((1, 3)))
        >>> Dense(2).apply(variables, jnp.ones((1, 4)))
        Traceback (most recent call last):
        ...
        ValueError: `x` with shape (1, 4) (4 features on the last axis) does not fit ...
    """
    if module.has_variable(collection, name):
        check_fits("/".join(module.scope.path) or type(module).__name__, name,
                   np.shape(module.get_variable(collection, name)), shape, x, unit)
    if collection == "params":
        return module.param(name, init, shape, dtype)
    return module.variable(collection, name, init, None, shape, dtype).value


def declare(module: nn.Module, variables: Sequence[Any], x: Array,
            unit: str = "channels") -> dict[str, Array]:
    """Declare the variables a layer needs for ``x`` (rows of
    :func:`jaxcnn._layer_specs.conv_vars` and co.), each checked with :func:`checked_param`;
    returns their values by name.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxcnn import _layer_specs as S
        >>> from jaxcnn.layers import Dense
        >>> class Probe(Dense):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         return {k: v.shape for k, v in declare(self, S.dense_vars(self, x), x).items()}
        >>> Probe(2).init_with_output(jax.random.key(0), jnp.ones((1, 3)))[0]
        {'kernel': (3, 2), 'bias': (2,)}
    """
    return {v.name: checked_param(module, v.name, v.init, v.shape, v.dtype, x, unit,
                                  v.collection) for v in variables}


def dropout_key(module: nn.Module, train: bool, needed: bool = True) -> Array | None:
    """A key from the ``"dropout"`` rng stream when training (and ``needed``), else None.

    Flax alone says ``None needs PRNG for "dropout"``; this raises the same
    ``flax.errors.InvalidRngError`` but says where the key goes.
    """
    if not (train and needed):
        return None
    if not module.has_rng("dropout"):
        raise flax.errors.InvalidRngError(
            f"{type(module).__name__} with train=True needs a 'dropout' PRNG stream: call "
            f"`apply(variables, x, train=True, rngs={{'dropout': key}})`, or pass train=False.")
    return module.make_rng("dropout")
