"""The bad-input census: rows, the runner, and the public API the rows must cover.

A row is one bad call of one public name and what it must raise: the exception type and a
regex that names the offending argument (or value). Every message must also say what to do
instead (:data:`HINT`: "must ...", "use ...", "did you mean ...", "convert ...", ...): an
exception that only says what went wrong is not enough.

:func:`public_names` enumerates the API from the packages themselves (``__all__``,
``list_models()``), so a new public function without a row (and without a reasoned entry in
``tests/bad_input/test_census.py``'s exemptions) fails the census.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# What a message must contain besides the argument: the requirement or the fix.
HINT = re.compile(
    r"\b(must|required|expected|expects|use|pass|did you mean|convert|choose|call|prepare|"
    r"remap|(re-?)?initiali[sz]e|known|available|needs?|give|set|feed|add|only|flatten)\b",
    re.IGNORECASE)

KEY = jax.random.key(0, impl="rbg")  # rbg: abstract init traces a cheaper PRNG


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad call: ``call()`` must raise ``exc`` with a message matching ``match``."""

    target: str          # the public name covered, "namespace.name" (see public_names)
    what: str            # what is wrong, for the test id
    call: Callable[[], Any]
    exc: type[BaseException] | tuple[type[BaseException], ...]
    match: str           # regex (searched, DOTALL) that names the argument or value
    # Why the library does not pass this row yet, when the fix belongs to a file outside this
    # census's remit: the row runs as a strict xfail, so the fix turns it into a failure
    # until this field is cleared.
    pending: str = ""

    @property
    def id(self) -> str:
        return f"{self.target}:{self.what}"


def params(cases: list[Case]) -> list[Any]:
    """``pytest.param`` per case with a readable id; ids must be unique."""
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate case ids: {duplicates}"
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.pending)]
                         if c.pending else []) for c in cases]


def check(case: Case) -> None:
    """Run one row: the right exception, naming the argument, with a hint on the fix."""
    with pytest.raises(case.exc) as info:
        case.call()
    message = str(info.value)
    assert re.search(case.match, message, re.DOTALL), (
        f"{case.id}: message does not match {case.match!r}:\n{message}")
    assert HINT.search(message), f"{case.id}: message gives no requirement or fix:\n{message}"


# ----------------------------------------------------------------------------- inputs


def rand(*shape: int, dtype: Any = np.float32, seed: int = 0) -> np.ndarray:
    """Standard-normal numpy array (integer dtypes: values in [0, 255])."""
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(0, 256, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def spec(*shape: int, dtype: Any = jnp.float32) -> jax.ShapeDtypeStruct:
    """An abstract array for ``jax.eval_shape``: no memory, no compute."""
    return jax.ShapeDtypeStruct(shape, dtype)


def train_kwargs(module: Any, train: bool = False) -> dict[str, bool]:
    """``{"train": train}`` when ``module.__call__`` takes it, else ``{}``."""
    return {"train": train} if "train" in inspect.signature(type(module).__call__).parameters \
        else {}


def init(module: Any, x: Any, **kwargs: Any) -> Any:
    """Abstract ``module.init`` (shapes only)."""
    return jax.eval_shape(lambda k, x: module.init(k, x, **kwargs), KEY, x)


def apply(module: Any, variables: Any, x: Any, **kwargs: Any) -> Any:
    """Abstract ``module.apply`` (shapes only)."""
    return jax.eval_shape(lambda v, x: module.apply(v, x, **kwargs), variables, x)


def apply_on_other_input(module: Any, x_init: Any, x_apply: Any, **kwargs: Any) -> Any:
    """Initialise on ``x_init``, then apply those variables to ``x_apply`` (shapes only)."""
    return apply(module, init(module, x_init, **kwargs), x_apply, **kwargs)


class _FirstLayer(Exception):
    def __init__(self, variables: dict):
        super().__init__("first parameterised layer reached")
        self.variables = variables


def first_layer_variables(model: Any, x: Any) -> dict:
    """``{"params": ...}`` holding only the first parameterised layer of ``model`` on ``x``.

    Tracing a full ``init`` of the 35 zoo models costs about 20 s; an input that does not fit
    the stored parameters already fails at the first layer, so that layer is all ``apply``
    needs. Children return before their parents, so the first module to return with params of
    its own is the first leaf layer.
    """
    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        own = module.variables.get("params") if context.method_name == "__call__" else None
        if own:
            tree = jax.tree_util.tree_map(lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype), own)
            for name in reversed(module.scope.path):
                tree = {name: tree}
            raise _FirstLayer({"params": tree})
        return out

    import flax.linen as nn

    try:
        with nn.intercept_methods(interceptor):
            init(model, x, **train_kwargs(model))
    except _FirstLayer as found:
        return found.variables
    raise AssertionError(f"{type(model).__name__} has no parameterised layer")


# ----------------------------------------------------------------------------- public API


def _all(module: Any) -> list[str]:
    return list(module.__all__)


def public_names() -> dict[str, list[str]]:
    """Every public name the census must cover, by namespace (``"namespace.name"`` targets)."""
    from jaxcnn import (
        augment,
        blocks,
        data,
        ensemble,
        filters,
        layers,
        models,
        training,
        transfer,
        visualize,
    )
    from jaxcnn import functional as F
    from jaxcnn import inspect as jinspect
    from jaxcnn import nnx as jnnx

    return {
        # jaxcnn.__all__ re-exports modules and inspect's functions; count_params is its own.
        "jaxcnn": ["count_params"],
        "functional": _all(F),
        "filters": _all(filters),
        "layers": _all(layers),
        "blocks": sorted(n for n, v in vars(blocks).items()
                         if isinstance(v, type) and not n.startswith("_")),
        "models": _all(models) + models.list_models(),
        "augment": _all(augment),
        "data": _all(data) + ["prepare", "load_fake"],
        "training": _all(training),
        "inspect": _all(jinspect),
        "visualize": _all(visualize),
        "ensemble": _all(ensemble),
        "transfer": _all(transfer),
        "nnx": _all(jnnx),
        "experiments": ["configs.get_config", "configs.config_file", "train"],
    }
