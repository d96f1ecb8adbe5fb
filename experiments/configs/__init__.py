"""Experiment configs: each module has ``get_config() -> ml_collections.ConfigDict``.

``get_config(name)`` loads one by name; ``config_file(path)`` checks a ``--config`` path. Both
answer a typo with the closest names ("did you mean"), as ``jaxcnn.models.create`` does.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent

NAMES: tuple[str, ...] = tuple(sorted(m.name for m in pkgutil.iter_modules([str(_HERE)])))
"""The config names, one per module of this package (``default``, ``lenet_mnist``, ...)."""


def _unknown(what: str, given: Any, key: str, spell: Any = str) -> ValueError:
    """``ValueError`` for ``given`` with the configs closest to ``key``, spelled by ``spell``."""
    close = difflib.get_close_matches(key, NAMES, n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(spell(c)) for c in close)}?" if close else ""
    return ValueError(f"unknown {what} {given!r}.{hint} Known configs: "
                      f"{', '.join(str(spell(n)) for n in NAMES)}.")


def get_config(name: str) -> Any:
    """The config called ``name``: ``experiments/configs/<name>.py``'s ``get_config()``.

    Args:
        name: one of :data:`NAMES`.

    Raises:
        ValueError: an unknown name, with the closest known ones.

    Example:
        >>> get_config("lenet_mnist").dataset
        'mnist'
        >>> get_config("lenet_mnst")
        Traceback (most recent call last):
        ...
        ValueError: unknown config name 'lenet_mnst'. Did you mean 'lenet_mnist'...
    """
    if name not in NAMES:
        raise _unknown("config name", name, str(name))
    return importlib.import_module(f"{__name__}.{name}").get_config()


def config_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a file, else ``ValueError`` suggesting the closest config files.

    What ``python -m experiments.train --config PATH`` checks first: a typo in ``PATH``
    otherwise ends in an ``OSError`` traceback from ``ml_collections``. The suggestions are
    the files of this folder, spelled the way ``path`` was (a bare name gets the full path).

    Example:
        >>> config_file("experiments/configs/default.py").name
        'default.py'
        >>> config_file("experiments/configs/lenet_mnst.py")
        Traceback (most recent call last):
        ...
        ValueError: unknown config file 'experiments/configs/lenet_mnst.py'. Did you mean ...
    """
    path = Path(path)
    if path.is_file():
        return path
    # Suggest the files of this folder, spelled as given when ``path`` points into it.
    folder = path.parent if path.parent.resolve() == _HERE else Path(os.path.relpath(_HERE))
    raise _unknown("config file", os.fspath(path), path.stem,
                   lambda name: os.fspath(folder / f"{name}.py"))
