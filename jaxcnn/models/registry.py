"""Name -> model factory registry: ``jaxcnn.models.create("resnet18", num_classes=10)``."""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable

import flax.linen as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model factory ``fn(num_classes=..., **options) -> nn.Module``.

    Example:
        >>> import flax.linen as nn
        >>> @register("tiny_example")
        ... def tiny(num_classes=10):
        ...     return nn.Dense(num_classes)
        >>> "tiny_example" in list_models()
        True
        >>> unregister("tiny_example")
    """
    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered; choose another name "
                             f"or call jaxcnn.models.unregister({name!r}) first.")
        _REGISTRY[name] = fn
        return fn
    return decorator


def unregister(name: str) -> None:
    """Remove a registered model (for tests and interactive use).

    Example:
        >>> unregister("no_such_model")
    """
    _REGISTRY.pop(name, None)


def create(name: str, num_classes: int = 1000, *, bn_axis_name: str | None = None,
           **options) -> nn.Module:
    """Build the model registered as ``name``.

    Args:
        name: one of :func:`list_models`.
        num_classes: size of the classification head.
        bn_axis_name: pool BatchNorm statistics over this ``pmap``/``shard_map`` axis
            (synchronised BatchNorm), by binding ``axis_name`` into the model's ``norm``
            factory. Models without a ``norm`` field have no BatchNorm and ignore it.
        **options: forwarded to the model's factory (e.g. ``dtype``, ``cifar_stem``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = create("lenet5", num_classes=10)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)))
        >>> model.apply(variables, jnp.ones((2, 32, 32, 1))).shape
        (2, 10)
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model name {name!r}.{hint} "
                         f"See jaxcnn.models.list_models() for all {len(_REGISTRY)} names.")
    factory = _REGISTRY[name]
    try:
        model = factory(num_classes=num_classes, **options)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        # Factories forward **options to a Flax dataclass: its fields are the accepted options.
        default = factory(num_classes=num_classes)
        accepted = sorted(f.name for f in dataclasses.fields(default)
                          if f.init and f.name not in ("parent", "name", "num_classes"))
        unknown = sorted(set(options) - set(accepted))
        raise TypeError(f"model {name!r} got unknown option(s) {unknown}; use one of "
                        f"{accepted}.") from e
    if bn_axis_name is not None:
        fields = {f.name for f in dataclasses.fields(model)}
        if "norm" in fields and model.norm is not None:
            model = model.clone(norm=functools.partial(model.norm, axis_name=bn_axis_name))
    return model


def list_models() -> list[str]:
    """Sorted names of every registered model.

    Example:
        >>> "resnet50" in list_models()
        True
    """
    return sorted(_REGISTRY)
