"""Safe weight-file readers and the ``.safetensors`` export: no file is ever unpickled.

* :func:`read_state_dict`: a PyTorch ``state_dict`` saved as ``.safetensors`` (by
  ``safetensors.torch.save_file``) or ``.npz`` (``np.savez``), as ``{key: numpy array}``;
* :func:`read_keras_h5`: the layers of a Keras weight file, Keras 3's ``.weights.h5``
  (``model.save_weights``) or the legacy HDF5 layout of Keras 2 and of the Keras
  applications' downloads (``model_weights/<layer>/<layer>/kernel:0``, or the layer groups at
  the root), as ``[(layer_name, [arrays in the layer's weight order])]`` in model order;
* :func:`to_safetensors` / :func:`load_safetensors`: a variables tree as one
  ``.safetensors`` file with ``/``-joined keys (``params/conv1/kernel``), round-tripping
  bit-exactly.

Every reader rejects what could execute code or is not a plain numeric tensor: ``np.load``
runs with ``allow_pickle=False``, HDF5 datasets and ``.npz`` members must have a numeric
dtype (object, string and compound arrays raise a ``ValueError`` naming the entry), and
pickle-based files (``.pt``, ``.pth``, ``.bin``, ``.ckpt``, ``.pkl``) are refused with the
one-line conversion to ``.safetensors``.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

__all__ = ["load_safetensors", "read_keras_h5", "read_state_dict", "to_safetensors"]

PathLike = str | os.PathLike

_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")
_STATE_DICT_SUFFIXES = (".safetensors", ".npz")
# Integer and boolean tensors are allowed (torchvision's ``num_batches_tracked`` is int64);
# anything else (object, bytes, str, void/compound, complex) is not a weight.
_NUMERIC_KINDS = "biuf"


def _check_numeric(dtype: np.dtype, what: str, path: PathLike) -> None:
    if np.dtype(dtype).kind not in _NUMERIC_KINDS:
        raise ValueError(f"{what} in {os.fspath(path)!r} has dtype {np.dtype(dtype)}, not a "
                         f"numeric tensor; weight files may hold only bool, integer and "
                         f"floating-point arrays (nothing is unpickled or decoded).")


def _check_file(path: PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file {path!r} does not exist (or is not a file).")
    return path


def read_state_dict(path: PathLike) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` saved as ``.safetensors`` or ``.npz``, without unpickling.

    Save it in PyTorch with ``safetensors.torch.save_file(model.state_dict(), "m.safetensors")``
    or ``np.savez("m.npz", **{k: v.numpy() for k, v in model.state_dict().items()})``.
    ``.npz`` files are opened with ``np.load(path, allow_pickle=False)``; pickle-based files
    (``.pt``, ``.pth``, ...) are refused, since loading them can execute arbitrary code.

    Args:
        path: a ``.safetensors`` or ``.npz`` file.

    Returns:
        ``{key: numpy array}`` in the file's order.

    Raises:
        ValueError: for a pickle-based or unknown suffix, an object/string array, or a
            corrupt file; each message names the file (and the key).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "sd.npz")
        >>> np.savez(path, **{"fc.weight": np.ones((2, 3), np.float32)})
        >>> {k: v.shape for k, v in read_state_dict(path).items()}
        {'fc.weight': (2, 3)}
        >>> read_state_dict(path.replace(".npz", ".pth"))
        Traceback (most recent call last):
        ...
        ValueError: refusing to read 'sd.pth'...
    """
    name = os.fspath(path)
    lower = name.lower()
    if lower.endswith(_PICKLE_SUFFIXES):
        raise ValueError(
            f"refusing to read {os.path.basename(name)!r}: {os.path.splitext(name)[1]} files "
            f"are pickles, and unpickling can execute arbitrary code. Convert it once where you "
            f"trust it: `safetensors.torch.save_file(torch.load(path, weights_only=True), "
            f"'model.safetensors')`, then pass the .safetensors file.")
    if not lower.endswith(_STATE_DICT_SUFFIXES):
        raise ValueError(f"`path` must end with one of {_STATE_DICT_SUFFIXES}, got {name!r}.")
    name = _check_file(name)
    if lower.endswith(".npz"):
        return _read_npz(name)
    return _read_safetensors(name)


def _read_npz(path: str) -> dict[str, np.ndarray]:
    out = {}
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:   # pickle or corrupt
        raise ValueError(f"cannot read {path!r} as an .npz archive without pickle: {err}") \
            from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} holds a single .npy array, not an .npz archive of named "
                         f"tensors; save it with np.savez(path, **state_dict).")
    with archive:
        for key in archive.files:
            try:
                value = archive[key]
            except (ValueError, OSError, zipfile.BadZipFile) as err:   # object arrays: pickle
                raise ValueError(f"tensor {key!r} in {path!r} cannot be read without pickle "
                                 f"(an object array?): {err}") from err
            _check_numeric(value.dtype, f"tensor {key!r}", path)
            out[key] = value
    return out


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as err:   # safetensors raises its own error types
        raise ValueError(f"cannot read {path!r} as .safetensors ({type(err).__name__}: "
                         f"{err}); tensors must be float/int types numpy supports "
                         f"(bfloat16 is not: save float32).") from err


def _h5_arrays(group: Any, names: list[str], path: str) -> list[np.ndarray]:
    arrays = []
    for name in names:
        if name not in group:
            raise ValueError(f"{path!r}: layer group {group.name!r} lists weight {name!r}, "
                             f"which is not in the file.")
        dataset = group[name]
        if not hasattr(dataset, "dtype"):
            raise ValueError(f"{path!r}: {dataset.name!r} is a group, not a weight dataset.")
        _check_numeric(dataset.dtype, f"dataset {dataset.name!r}", path)
        arrays.append(np.asarray(dataset[()]))
    return arrays


def _decode(names: Any) -> list[str]:
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names]


def _positional_order(key: str) -> tuple[str, int]:
    # Keras 3 names layers by class and position: conv2d, conv2d_1, ..., conv2d_10 (not the
    # lexicographic h5py order).
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    return match.group(1), int(match.group(2) or 0)


def _keras3_layers(group: Any, path: str) -> list[tuple[str, list[np.ndarray]]]:
    out = []
    for key in sorted(group, key=_positional_order):
        layer = group[key]
        if "vars" in layer and len(layer["vars"]):
            name = layer["vars"].attrs.get("name")
            if name is None:
                raise ValueError(
                    f"{path!r}: layer group {layer.name!r} has no 'name' attribute (written by "
                    f"a Keras 3 older than the layer-name metadata); load it in Keras and save "
                    f"it again with model.save_weights(...) or model.save('model.h5').")
            indices = sorted(layer["vars"], key=int)
            out.append((_decode([name])[0], _h5_arrays(layer["vars"], indices, path)))
        if "layers" in layer:   # a nested model
            out.extend(_keras3_layers(layer["layers"], path))
    return out


def read_keras_h5(path: PathLike) -> list[tuple[str, list[np.ndarray]]]:
    """The weighted layers of a Keras HDF5 weight file, in model order.

    Two layouts are understood:

    * Keras 3's ``.weights.h5`` (``model.save_weights``): groups ``layers/<class>_<i>/vars/
      <j>`` whose ``vars`` group carries the layer's name as an attribute;
    * the legacy HDF5 layout (Keras 2 ``save_weights``/``save``, Keras 3 ``model.save(
      "m.h5")``, and the files ``keras.applications`` downloads): a ``layer_names``
      attribute on the root or on ``model_weights``, and per layer a ``weight_names``
      attribute listing its datasets (``block1_conv1/kernel:0``, ...).

    Args:
        path: an ``.h5`` / ``.weights.h5`` / ``.hdf5`` file.

    Returns:
        ``[(layer_name, [arrays])]``: each layer with weights, its arrays in the layer's own
        order (a convolution's kernel then bias; BatchNorm's gamma, beta, moving mean,
        moving variance), in model order.

    Raises:
        ValueError: for a file in neither layout, or a non-numeric dataset (named).

    Example:
        >>> import os, tempfile
        >>> import h5py, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "legacy.h5")
        >>> with h5py.File(path, "w") as f:      # the legacy layout, written by hand
        ...     f["fc/fc/kernel:0"] = np.ones((3, 2), np.float32)
        ...     f["fc/fc/bias:0"] = np.zeros(2, np.float32)
        ...     f["fc"].attrs["weight_names"] = [b"fc/kernel:0", b"fc/bias:0"]
        ...     f.attrs["layer_names"] = [b"fc"]
        >>> [(name, [a.shape for a in arrays]) for name, arrays in read_keras_h5(path)]
        [('fc', [(3, 2), (2,)])]
    """
    import h5py

    path = _check_file(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"cannot open {path!r} as an HDF5 file: {err}") from err
    with handle as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:
            out = []
            for name in _decode(root.attrs["layer_names"]):
                group = root[name]
                names = _decode(group.attrs.get("weight_names", []))
                if names:
                    out.append((name, _h5_arrays(group, names, path)))
            return out
        if "layers" in f:
            return _keras3_layers(f["layers"], path)
    raise ValueError(f"{path!r} is neither a Keras 3 .weights.h5 file (no 'layers' group) nor "
                     f"a legacy Keras HDF5 weight file (no 'layer_names' attribute).")


def to_safetensors(variables: Mapping, path: PathLike,
                   metadata: Mapping[str, str] | None = None) -> None:
    """Save a variables tree as one ``.safetensors`` file with ``/``-joined keys.

    ``{"params": {"conv1": {"kernel": k}}}`` is stored as ``params/conv1/kernel``, in jaxcnn's
    layout (NHWC models, HWIO kernels); :func:`load_safetensors` gives the tree back
    bit-exactly. Safetensors is a plain header + raw bytes, readable from any framework
    without executing code.

    Args:
        variables: a nested mapping of arrays (``model.init(...)``, a ``TrainState``'s
            ``{"params": ..., "batch_stats": ...}``, ``from_keras`` output).
        path: the file to write (conventionally ``.safetensors``).
        metadata: optional ``{str: str}`` stored in the header.

    Raises:
        TypeError: for a leaf that is not an array, or a key that is not a string.
        ValueError: for an empty tree or a key containing ``/``.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> variables = {"params": {"conv1": {"kernel": np.ones((5, 5, 1, 6), np.float32)}},
        ...              "batch_stats": {"bn": {"mean": np.zeros(6, np.float32)}}}
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> to_safetensors(variables, path, metadata={"model": "lenet5"})
        >>> from safetensors import safe_open
        >>> sorted(safe_open(path, framework="np").keys())
        ['batch_stats/bn/mean', 'params/conv1/kernel']
        >>> restored = load_safetensors(path)
        >>> bool((restored["params"]["conv1"]["kernel"] == 1).all())
        True
    """
    from safetensors.numpy import save_file

    flat = _flatten(variables)
    if not flat:
        raise ValueError("`variables` has no arrays to save.")
    tensors = {}
    for key, leaf in flat.items():
        if not isinstance(leaf, np.ndarray | jax.Array | np.generic):
            raise TypeError(f"`variables` leaf {key!r} is a {type(leaf).__name__}, not an "
                            f"array; save only arrays (params, batch_stats, ...).")
        value = np.asarray(leaf)
        if value.dtype.name == "bfloat16":   # numpy (hence safetensors.numpy) lacks it
            raise TypeError(f"`variables` leaf {key!r} is bfloat16; cast first: "
                            f"jax.tree.map(lambda a: a.astype(jnp.float32), variables).")
        _check_numeric(value.dtype, f"leaf {key!r}", "<variables>")
        tensors[key] = np.ascontiguousarray(value)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise TypeError(f"`metadata` must map str to str, got {dict(metadata)!r}.")
    save_file(tensors, os.fspath(path), metadata=dict(metadata) if metadata else None)


def _flatten(variables: Mapping) -> dict[str, Any]:
    if not isinstance(variables, Mapping):
        raise TypeError(f"`variables` must be a nested mapping of arrays, got "
                        f"{type(variables).__name__}.")
    flat = traverse_util.flatten_dict(dict(variables), keep_empty_nodes=False)
    out = {}
    for keys, leaf in flat.items():
        for k in keys:
            if not isinstance(k, str):
                raise TypeError(f"`variables` keys must be strings, got {k!r} in {keys}.")
            if "/" in k:
                raise ValueError(f"`variables` key {k!r} (in {keys}) contains '/', the "
                                 f"separator of the saved keys.")
        out["/".join(keys)] = leaf
    return out


def load_safetensors(path: PathLike) -> dict[str, Any]:
    """Read a file written by :func:`to_safetensors` back into a nested variables dict.

    Args:
        path: a ``.safetensors`` file with ``/``-joined keys.

    Returns:
        ``{"params": {...}, ...}`` of ``jax.Array`` s, ready for ``model.apply``.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.safetensors")
        >>> to_safetensors({"params": {"dense": {"bias": np.arange(3, dtype=np.float32)}}}, path)
        >>> load_safetensors(path)["params"]["dense"]["bias"]
        Array([0., 1., 2.], dtype=float32)
    """
    flat = _read_safetensors(_check_file(path))
    nested = traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})
    return jax.tree.map(jnp.asarray, nested)
