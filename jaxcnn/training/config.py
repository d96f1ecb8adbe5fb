"""The fields of a training config: the one list of what :func:`jaxcnn.training.loop.train` reads.

A config is an ``ml_collections.ConfigDict``, a mapping or any object with attributes
(``experiments/configs/default.py`` shows every field with its meaning). :data:`REQUIRED`
fields must be given; every other field has the default in :data:`DEFAULTS`, used when the
config leaves it out. :func:`validate_config` runs first thing in ``train``: a field that is
not in :data:`FIELDS` (a typo such as ``learning_rte``, which would otherwise be ignored
while training went on with the default) is an error listing the accepted fields, with the
closest ones as a "did you mean".
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

REQUIRED: tuple[str, ...] = ("model", "dataset", "batch_size", "optimizer", "learning_rate")
"""Fields without a default."""

DEFAULTS: dict[str, Any] = {
    "model_options": None,           # forwarded to jaxcnn.models.create
    "data_dir": None,
    "image_size": None,              # None: the dataset's native size
    "eval_split": "test",
    "augment": (),                   # jaxcnn.augment.compose entries
    "eval_batch_size": None,         # None: batch_size
    "num_epochs": None,              # num_epochs or num_steps must be set
    "num_steps": None,               # overrides num_epochs when set
    "momentum": 0.9,
    "rmsprop_decay": 0.9,
    "schedule": "constant",
    "warmup_epochs": 0.0,
    "decay_epochs": (),
    "decay_rate": 0.1,
    "weight_decay": 0.0,
    "weight_decay_mode": "l2",
    "label_smoothing": 0.0,
    "grad_clip_norm": None,
    "check_finite_inputs": False,
    "nonfinite": "stop",
    "dtype": "float32",
    "parallel": "none",
    "api": "linen",                  # linen | nnx: the front end the model is trained with
    "seed": 0,
    "log_every_steps": 50,
    "eval_every_steps": 0,           # 0: once per epoch
    "checkpoint_every_steps": 1000,
    "keep_checkpoints": 3,
}
"""The other fields, with the value ``train`` uses when a config does not have them."""

FIELDS: tuple[str, ...] = tuple(sorted((*REQUIRED, *DEFAULTS)))
"""Every accepted field, sorted."""


def field_names(config: Any) -> list[str]:
    """The field names of ``config``: a ``ConfigDict``, a mapping or an attribute object.

    Example:
        >>> field_names({"model": "lenet5", "seed": 1})
        ['model', 'seed']
    """
    if isinstance(config, Mapping) or callable(getattr(config, "keys", None)):
        return [str(k) for k in config.keys()]
    try:
        return [k for k in vars(config) if not k.startswith("_")]
    except TypeError:
        raise TypeError(f"a training config must be an ml_collections.ConfigDict, a mapping or "
                        f"an object with attributes, got {type(config).__name__}.") from None


def get(config: Any, name: str) -> Any:
    """``config``'s value of field ``name``, or its :data:`DEFAULTS` entry when it has none.

    Example:
        >>> get({"seed": 3}, "seed"), get({}, "log_every_steps")
        (3, 50)
    """
    default = DEFAULTS.get(name)
    if isinstance(config, Mapping) or callable(getattr(config, "get", None)):
        return config.get(name, default)
    return getattr(config, name, default)


def validate_config(config: Any) -> None:
    """Raise ``ValueError`` unless every field of ``config`` is accepted and the required ones set.

    An unknown field (typically a misspelling, which would otherwise be silently ignored) is
    named with the closest accepted fields and the full accepted list; so is a missing
    required field. One of ``num_epochs`` and ``num_steps`` must be set.

    Example:
        >>> from experiments.configs import default
        >>> config = default.get_config()
        >>> validate_config(config)
        >>> config.learning_rte = 0.1
        >>> validate_config(config)
        Traceback (most recent call last):
        ...
        ValueError: unknown config field 'learning_rte'; did you mean 'learning_rate'? ...
    """
    names = field_names(config)
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, FIELDS, n=2, cutoff=0.6)
            if close:
                hints.append(f"did you mean {' or '.join(map(repr, close))}"
                             + (f" for {name!r}" if len(unknown) > 1 else "") + "?")
        which = ", ".join(map(repr, unknown))
        plural = "s" if len(unknown) > 1 else ""
        hint = f"; {' '.join(hints)}" if hints else "."
        raise ValueError(f"unknown config field{plural} {which}{hint} The accepted fields: "
                         f"{', '.join(FIELDS)} (see experiments/configs/default.py).")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ValueError(f"missing required config field{plural} "
                         f"{', '.join(map(repr, missing))}; a config needs "
                         f"{', '.join(REQUIRED)}.")
    if get(config, "num_steps") is None and get(config, "num_epochs") is None:
        raise ValueError("set config.num_epochs or config.num_steps (how long to train); both "
                         "are None.")
