"""What ``jaxcnn.data`` knows about each dataset, and where prepared datasets live."""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one dataset.

    Attributes:
      name: the TFDS name.
      num_classes: number of label classes.
      mean, std: per-channel statistics of the train split on the 0..1 pixel scale, used by
        :func:`jaxcnn.data.normalize` (``None`` for ``digits``: they depend on
        ``image_size`` and are computed from the train split at load time).
      in_memory: whether a split is small enough to decode once into numpy.
      needs: what ``python -m jaxcnn.data.prepare NAME --from DIR`` expects in ``DIR``.
    """

    name: str
    num_classes: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    in_memory: bool
    needs: str


_MNIST_FILES = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz")

SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        # Statistics of the train splits (MNIST recomputed here from the real files).
        DatasetSpec("mnist", 10, (0.1307,), (0.3081,), True, _MNIST_FILES),
        DatasetSpec("fashion_mnist", 10, (0.2860,), (0.3530,), True, _MNIST_FILES),
        DatasetSpec("cifar10", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True,
                    "cifar-10-binary.tar.gz (the binary version, not the python-pickle one)"),
        DatasetSpec("cifar100", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True,
                    "cifar-100-binary.tar.gz (the binary version, not the python-pickle one)"),
        DatasetSpec("imagenet2012", 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False,
                    "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar"),
        DatasetSpec("digits", 10, None, None, True, "nothing: bundled with scikit-learn"),
    )
}


def spec(name: str) -> DatasetSpec:
    """Look ``name`` up in :data:`SPECS`; unknown names raise with a "did you mean".

    Example:
      >>> spec("cifar10").num_classes
      10
    """
    if not isinstance(name, str) or name not in SPECS:
        close = difflib.get_close_matches(str(name).lower().replace("-", "_"), SPECS, n=2,
                                          cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown dataset `name`={name!r}.{hint} Known: {', '.join(sorted(SPECS))}."
        )
    return SPECS[name]


def default_data_dir() -> Path:
    """``$JAXCNN_DATA_DIR`` if set, else ``~/.cache/jaxcnn/tensorflow_datasets``.

    Example:
      >>> import pathlib
      >>> isinstance(default_data_dir(), pathlib.Path)
      True
    """
    env = os.environ.get("JAXCNN_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "jaxcnn" / "tensorflow_datasets"


def tfds_data_dir() -> Path:
    """TFDS's own default: ``$TFDS_DATA_DIR`` if set, else ``~/tensorflow_datasets``."""
    env = os.environ.get("TFDS_DATA_DIR")
    return Path(env) if env else Path.home() / "tensorflow_datasets"


def prepare_command(name: str, data_dir: str | os.PathLike) -> str:
    """The command that prepares ``name`` into ``data_dir`` (what error messages suggest).

    Example:
      >>> prepare_command("mnist", "/data")
      'python -m jaxcnn.data.prepare mnist --from DIR --data-dir /data'
    """
    if name == "imagenet2012":
        return (f'pip install -e ".[tf]" && tfds build imagenet2012 --manual_dir DIR '
                f"--data_dir {data_dir} --file_format array_record")
    source = "" if name == "digits" else " --from DIR"
    return f"python -m jaxcnn.data.prepare {name}{source} --data-dir {data_dir}"
