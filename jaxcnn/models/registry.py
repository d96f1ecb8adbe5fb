"""Name -> model factory registry: ``jaxcnn.models.create("resnet18", num_classes=10)``."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxcnn import layers as L

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_INPUT_SHAPES: dict[str, tuple[int, ...]] = {}
APIS = ("linen", "nnx")
"""The front ends :func:`create` builds a model for (``api=``), and the experiment command
trains with (``config.api``): ``"linen"`` (a ``flax.linen.Module``) or ``"nnx"`` (an
``nnx.Module``)."""
IMAGENET_INPUT = (224, 224, 3)
CIFAR_INPUT = (32, 32, 3)


def register(name: str, *, input_shape: tuple[int, ...] = IMAGENET_INPUT
             ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model factory ``fn(num_classes=..., **options) -> nn.Module``.

    ``input_shape`` is the model's usual ``(H, W, C)`` input (see :func:`input_shape`).

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
        _INPUT_SHAPES[name] = tuple(input_shape)
        return fn
    return decorator


def unregister(name: str) -> None:
    """Remove a registered model (for tests and interactive use).

    Example:
        >>> unregister("no_such_model")
    """
    _REGISTRY.pop(name, None)
    _INPUT_SHAPES.pop(name, None)


def input_shape(name: str, **options: Any) -> tuple[int, ...]:
    """The usual ``(H, W, C)`` input of model ``name`` built with ``options``.

    This is the input an NNX model is initialised on (``create(..., api="nnx")``); a model
    whose parameter shapes depend on the input size (a dense layer after a flatten) then takes
    only that size. ``cifar_stem=True`` means 32x32x3.

    Example:
        >>> input_shape("lenet5"), input_shape("xception")
        ((32, 32, 1), (299, 299, 3))
        >>> input_shape("resnet18"), input_shape("resnet18", cifar_stem=True)
        ((224, 224, 3), (32, 32, 3))
    """
    _check_name(name)
    return _usual_input(name, options)


def _usual_input(name: str, options: dict[str, Any]) -> tuple[int, ...]:
    return CIFAR_INPUT if options.get("cifar_stem") else _INPUT_SHAPES[name]


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model name {name!r}.{hint} "
                         f"See jaxcnn.models.list_models() for all {len(_REGISTRY)} names.")


def create(name: str, num_classes: int = 1000, *, bn_axis_name: str | None = None,
           api: str = "linen", rngs: Any = None, input_shape: tuple[int, ...] | None = None,
           **options) -> Any:
    """Build the model registered as ``name``, as a Flax Linen or a Flax NNX module.

    Args:
        name: one of :func:`list_models`.
        num_classes: size of the classification head.
        api: ``"linen"`` (default: an unbound ``flax.linen.Module``) or ``"nnx"`` (an
            ``nnx.Module`` with its variables, :class:`jaxcnn.nnx.ZooModel`).
        rngs: for ``api="nnx"``: the ``flax.nnx.Rngs`` that initialise it (``params``
            stream) and draw its dropout keys (``dropout``, else ``default``).
        input_shape: for ``api="nnx"``: the ``(H, W, C)`` it is initialised on; default
            :func:`jaxcnn.models.input_shape` (e.g. 224x224x3 for ImageNet models, 32x32x3
            with ``cifar_stem=True``). Models with a flatten before a dense layer then take
            only that size.
        bn_axis_name: pool BatchNorm statistics over this ``pmap``/``shard_map`` axis
            (synchronised BatchNorm), by binding ``axis_name`` into the model's ``norm``
            factory. Only for models with BatchNorm (:func:`has_batch_norm`): any other
            model (no ``norm``, ``batch_norm=False``, a GroupNorm ``norm``) raises
            ``ValueError`` rather than silently training without the pooling asked for.
        **options: forwarded to the model's factory (e.g. ``dtype``, ``cifar_stem``).

    Raises:
        ValueError: an unknown ``name`` (with the closest ones) or ``api``, ``bn_axis_name``
            for a model without BatchNorm (naming the model and its normalization), or
            ``api="nnx"`` without ``rngs``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = create("lenet5", num_classes=10)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)))
        >>> model.apply(variables, jnp.ones((2, 32, 32, 1))).shape
        (2, 10)
        >>> from flax import nnx
        >>> model = create("lenet5", num_classes=10, api="nnx", rngs=nnx.Rngs(0))
        >>> model.eval()
        >>> model(jnp.ones((2, 32, 32, 1))).shape
        (2, 10)
    """
    _check_name(name)
    if api not in APIS:
        raise ValueError(f"unknown api {api!r}; use one of {APIS}.")
    if api == "linen" and (rngs is not None or input_shape is not None):
        raise ValueError("`rngs` and `input_shape` are for api='nnx'; pass api='nnx' for an "
                         "NNX model, or drop them and use model.init(key, x) for Linen.")
    if api == "nnx" and rngs is None:
        raise ValueError(f"api='nnx' builds the variables now: pass rngs, e.g. "
                         f"jaxcnn.models.create({name!r}, api='nnx', rngs=flax.nnx.Rngs(0)).")
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
        if not has_batch_norm(model):
            raise ValueError(
                f"model {name!r} has no BatchNorm ({_norm_description(model)}), so "
                f"bn_axis_name={bn_axis_name!r} has nothing to pool; pass bn_axis_name only "
                f"for models with BatchNorm (jaxcnn.models.has_batch_norm(model)).")
        model = model.clone(norm=functools.partial(model.norm, axis_name=bn_axis_name))
    if api == "nnx":
        from jaxcnn.nnx._zoo import ZooModel

        return ZooModel(model, input_shape or _usual_input(name, options), rngs=rngs)
    return model


def _norm_class(norm: Any) -> Any:
    """The class a ``norm`` factory builds: ``norm`` itself or the innermost ``partial``'s."""
    while isinstance(norm, functools.partial):
        norm = norm.func
    return norm


def _is_batch_norm(norm: Any) -> bool:
    cls = _norm_class(norm)
    if isinstance(cls, type):
        return issubclass(cls, L.BatchNorm | nn.BatchNorm)
    # Any other callable: BatchNorm-like if it takes the axis name to bind.
    try:
        return "axis_name" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _fields(model: nn.Module) -> set[str]:
    return {f.name for f in dataclasses.fields(model)} if dataclasses.is_dataclass(model) else set()


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` normalises with BatchNorm through its ``norm`` field.

    True when the model has a ``norm`` factory building :class:`jaxcnn.layers.BatchNorm` (or
    Flax's), not switched off by a ``batch_norm=False`` field (plain VGG); these are the models
    :func:`create` can synchronise with ``bn_axis_name``. The training loop uses it to bind
    the ``pmap`` axis only where it applies.

    Example:
        >>> has_batch_norm(create("resnet18")), has_batch_norm(create("lenet5"))
        (True, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a Flax module such as jaxcnn.models.create(name), "
                        f"got {model!r}.")
    fields = _fields(model)
    if "norm" not in fields or model.norm is None:
        return False
    if "batch_norm" in fields and not model.batch_norm:
        return False
    return _is_batch_norm(model.norm)


def _norm_description(model: nn.Module) -> str:
    fields = _fields(model)
    if "norm" not in fields or model.norm is None:
        return "no normalization layers"
    if "batch_norm" in fields and not model.batch_norm:
        return "batch_norm=False"
    cls = _norm_class(model.norm)
    return f"its norm is {getattr(cls, '__name__', repr(cls))}"


def list_models() -> list[str]:
    """Sorted names of every registered model.

    Example:
        >>> "resnet50" in list_models()
        True
    """
    return sorted(_REGISTRY)
