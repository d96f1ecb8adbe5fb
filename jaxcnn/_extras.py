"""Optional dependencies: a module that needs an extra says which, before it fails to import.

``pip install jaxcnn`` brings what :mod:`jaxcnn.functional`, :mod:`jaxcnn.layers`,
:mod:`jaxcnn.blocks`, :mod:`jaxcnn.models`, :mod:`jaxcnn.filters` and :mod:`jaxcnn.inspect`
need. The rest is in extras (``pyproject.toml``), and the first lines of each module that
needs one are ``require(extra, __name__)``:

* ``data``: :mod:`jaxcnn.data`;
* ``train``: :mod:`jaxcnn.training` (so also :mod:`jaxcnn.ensemble`, :mod:`jaxcnn.transfer`);
  it includes ``data``;
* ``weights``: :mod:`jaxcnn.weights`;
* ``viz``: :mod:`jaxcnn.visualize`;
* ``all``: all four.

Example:
    >>> require("weights", "jaxcnn.weights")  # installed here: nothing happens
    >>> missing("viz") == [] or missing("viz") == ["matplotlib"]
    True
"""

from __future__ import annotations

import importlib.util

# extra -> {module imported: distribution that provides it}. tests/test_extras.py checks that
# each distribution is in that extra in pyproject.toml.
EXTRAS: dict[str, dict[str, str]] = {
    "data": {"tensorflow_datasets": "tensorflow-datasets", "importlib_resources":
             "importlib_resources", "array_record": "array_record", "grain": "grain",
             "PIL": "pillow", "sklearn": "scikit-learn"},
    # (the extra also has ml_collections and absl-py, for `python -m experiments.train`)
    "train": {"optax": "optax", "orbax.checkpoint": "orbax-checkpoint", "tqdm": "tqdm",
              "matplotlib": "matplotlib"},
    "weights": {"h5py": "h5py", "safetensors": "safetensors"},
    "viz": {"matplotlib": "matplotlib"},
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package; a module without a spec
        return False


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` whose modules cannot be found."""
    return [dist for module, dist in EXTRAS[extra].items() if not _installed(module)]


def require(extra: str, feature: str) -> None:
    """Raise an ImportError naming ``extra`` when any of its modules is not installed.

    ``feature`` is the module that needs it (its ``__name__``), for the message: ``jaxcnn.weights
    needs h5py, safetensors: pip install 'jaxcnn[weights]'``. A ``ModuleNotFoundError`` whose
    ``name`` is the first missing module, as a plain ``import`` would raise.
    """
    absent = missing(extra)
    if absent:
        module = next(m for m, d in EXTRAS[extra].items() if d == absent[0])
        raise ModuleNotFoundError(
            f"{feature} needs {', '.join(absent)}: pip install 'jaxcnn[{extra}]' "
            f"(or 'jaxcnn[all]')", name=module)
