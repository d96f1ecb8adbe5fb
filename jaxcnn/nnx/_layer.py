"""Bases of jaxcnn's NNX layers: variables from the shared rows, randomness, configuration.

A layer's variables and its call are written once, in :mod:`jaxcnn._layer_specs`, for both
front ends. The NNX layer keeps its configuration under the Linen layer's field names (so the
same ``<layer>_vars`` / ``<layer>_call`` functions read it), creates its variables eagerly from
a stand-in input of ``in_features`` channels, and checks them against the real input at each
call, raising the Linen layer's "does not fit" error.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcnn._layer_specs import Var
from jaxcnn.layers._utils import Array, check_fits, positive_int, window_shape

_KINDS = {"params": nnx.Param, "batch_stats": nnx.BatchStat}
_REFIT = ("Pass `x` shaped as when the layer was built (same channels; for LocalConv or after "
          "a flatten, the same image size), or build the layer again for the new input.")


def configure(module: nnx.Module, arguments: dict[str, Any]) -> None:
    """Store a constructor's arguments (its ``locals()``) on ``module`` under the Linen field
    names: ``out_features`` becomes ``features``; ``self`` and ``rngs`` are left out."""
    for name, value in arguments.items():
        if name == "out_features":
            module.features = positive_int(value, name)
        elif name not in ("self", "rngs", "__class__"):
            setattr(module, name, value)


class Layer(nnx.Module):
    """Base of the NNX layers with variables (see the module docstring)."""

    def _build(self, variables: Callable[[Any, Any], Sequence[Var]], in_features: int,
               rngs: nnx.Rngs, input_size: Sequence[int] | None = None,
               feature_name: str = "in_features") -> None:
        """Create the variables ``variables(self, x)`` names for a stand-in ``x`` of
        ``in_features`` channels (the argument ``feature_name``). With a ``kernel_size`` (an
        int: a square 2-D window; else its length fixes the spatial rank) it is normalised to a
        tuple first; ``input_size`` is the spatial size where the shapes depend on it
        (LocalConv)."""
        in_features = positive_int(in_features, feature_name)
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"`rngs` must be an nnx.Rngs (e.g. `rngs=nnx.Rngs(0)`), got "
                            f"{type(rngs).__name__}.")
        spatial: tuple[int, ...] = ()
        if input_size is not None:
            spatial = tuple(input_size)
            if not isinstance(self.kernel_size, int | np.integer) and \
                    len(tuple(self.kernel_size)) != len(spatial):
                raise ValueError(f"`input_size` must give one size per spatial dim of "
                                 f"`kernel_size`={self.kernel_size!r}, got {input_size!r}.")
        elif hasattr(self, "kernel_size"):
            rank = 2 if isinstance(self.kernel_size, int | np.integer) else \
                len(tuple(self.kernel_size))
            spatial = (1,) * rank
        x = jax.ShapeDtypeStruct((1, *spatial, in_features), jnp.float32)
        if hasattr(self, "kernel_size"):
            self.kernel_size = window_shape(self.kernel_size, x)
        for v in variables(self, x):
            key = rngs.params() if v.collection == "params" else None
            setattr(self, v.name, _KINDS[v.collection](v.init(key, v.shape, v.dtype)))
        for flag, name in (("use_bias", "bias"), ("use_scale", "scale")):
            if getattr(self, flag, True) is False:  # switched off: None, as in flax.nnx
                setattr(self, name, nnx.data(None))

    def _values(self, variables: Callable[[Any, Any], Sequence[Var]], x: Array,
                unit: str = "channels") -> dict[str, Array]:
        """The values of the variables ``variables(self, x)`` names, each checked against the
        shape ``x`` needs."""
        out = {}
        for v in variables(self, x):
            value = getattr(self, v.name)[...]
            check_fits(type(self).__name__, v.name, np.shape(value), v.shape, x, unit, _REFIT)
            out[v.name] = value
        return out


class Random(nnx.Module):
    """Base of the NNX layers that draw keys in training (dropout, stochastic pooling), as
    ``flax.nnx.Dropout``: ``deterministic`` (set by ``model.train()`` / ``model.eval()``) and
    a stream forked from ``rngs[rng_collection]`` at construction."""

    def _init_rngs(self, deterministic: bool, rng_collection: str,
                   rngs: nnx.Rngs | nnx.RngStream | None) -> None:
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(f"`rngs` must be an nnx.Rngs, an nnx.RngStream or None, got "
                            f"{type(rngs).__name__}.")

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)`` support, as ``flax.nnx.Dropout``."""
        if deterministic is not None:
            self.deterministic = deterministic

    def _key(self, deterministic: bool | None, rngs: Any, needed: bool = True
             ) -> tuple[bool, Array | None]:
        """``(train, key)``: ``train`` from the call's ``deterministic`` (else the layer's);
        a key from the call's ``rngs`` (an ``nnx.Rngs``, ``RngStream`` or key; else the
        layer's stream) when training and ``needed``, else None."""
        train = not (self.deterministic if deterministic is None else deterministic)
        if not (train and needed):
            return train, None
        rngs = self.rngs if rngs is None else rngs
        if rngs is None:
            raise ValueError(
                f"{type(self).__name__} in training mode (deterministic=False) needs a "
                f"'{self.rng_collection}' key: construct it with `rngs=nnx.Rngs(0)`, pass "
                f"`rngs=` to the call, or call `model.eval()`.")
        if isinstance(rngs, nnx.Rngs):
            return train, rngs[self.rng_collection]()
        if isinstance(rngs, nnx.RngStream):
            return train, rngs()
        return train, rngs


class Stateless(nnx.Module):
    """Base of the NNX layers without variables: the constructor takes the Linen layer's
    fields (same names, order and defaults) and the call is the shared ``call(self, x)``.

    A subclass names both: ``class MaxPool(Stateless, linen=L.MaxPool,
    call=S.max_pool_call)``.
    """

    _call: ClassVar[Callable[[Any, Array], Array]]
    _signature: ClassVar[inspect.Signature]

    def __init_subclass__(cls, *, linen: type | None = None,
                          call: Callable[[Any, Array], Array] | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if linen is None:
            return
        empty = inspect.Parameter.empty
        cls._signature = inspect.Signature([
            inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              default=empty if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(linen) if f.name not in ("parent", "name")])
        cls.__signature__ = cls._signature
        cls._call = staticmethod(call)

    def __init__(self, *args: Any, **kwargs: Any):
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}: {error}; use the arguments "
                            f"{self._signature} (those of its jaxcnn.layers twin).") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            setattr(self, name, value)

    def __call__(self, x: Array) -> Array:
        return self._call(self, x)
