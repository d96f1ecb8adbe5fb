"""Prepare datasets offline as TFDS ArrayRecord, without TensorFlow or internet access.

Usage::

    python -m jaxcnn.data.prepare mnist --from DIR --data-dir OUT
    python -m jaxcnn.data.prepare fashion_mnist --from DIR --data-dir OUT
    python -m jaxcnn.data.prepare cifar10 --from DIR --data-dir OUT   # cifar-10-binary.tar.gz
    python -m jaxcnn.data.prepare cifar100 --from DIR --data-dir OUT  # cifar-100-binary.tar.gz
    python -m jaxcnn.data.prepare digits --data-dir OUT               # bundled with scikit-learn

The result is read by ``jaxcnn.data.load(NAME, data_dir=OUT)`` and by stock TFDS:
``tfds.data_source(NAME, data_dir=OUT)``. ``OUT`` defaults to ``$JAXCNN_DATA_DIR`` or
``~/.cache/jaxcnn/tensorflow_datasets``. CIFAR is read from the *binary* archives, which are
fixed-size records; the python versions are pickles, which jaxcnn never loads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jaxcnn.data import _builders, _sources, _specs

PREPARABLE = ("mnist", "fashion_mnist", "cifar10", "cifar100", "digits")


def prepare(name: str, source_dir: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
    """Check the raw files of ``name`` in ``source_dir`` and write them as TFDS ArrayRecord.

    Formula: ``data_dir/name/version/{dataset_info.json, features.json, *.array_record-*}``,
    written into a temporary folder and renamed into place at the end.

    Args:
      name: one of ``mnist``, ``fashion_mnist`` (the four IDX ``.gz`` files),
        ``cifar10``, ``cifar100`` (the binary ``.tar.gz`` or its extracted folder),
        ``digits`` (no files needed).
      source_dir: the folder holding the raw files (the CLI's ``--from``).
      data_dir: output root. Default: ``$JAXCNN_DATA_DIR`` or
        ``~/.cache/jaxcnn/tensorflow_datasets``.
      overwrite: rebuild even if already prepared (default: keep the existing one).

    Returns:
      The prepared ``data_dir/name/version`` folder.

    Raises:
      FileNotFoundError: a raw file is missing (the message names it).
      ValueError: a raw file is wrong, truncated or corrupt (named, with the expected
        sizes or magic numbers), or ``name`` is not preparable here.

    Example:
      >>> import tempfile
      >>> prepare("digits", data_dir=tempfile.mkdtemp()).name
      '1.0.0'
    """
    spec = _specs.spec(name)
    if name not in PREPARABLE:
        raise ValueError(
            f"{name} cannot be prepared by jaxcnn; use TFDS (needs TensorFlow):\n    "
            f"{_specs.prepare_command(name, data_dir or _specs.default_data_dir())}\n"
            f"with DIR holding {spec.needs}.")
    data_dir = Path(data_dir) if data_dir is not None else _specs.default_data_dir()
    if name == "digits":
        return _builders.write(name, data_dir, overwrite=overwrite)
    if source_dir is None:
        raise ValueError(f"`source_dir` (--from DIR) is required for {name}: a folder holding "
                         f"{spec.needs}.")
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"`source_dir` (--from) {source_dir} is not a directory; "
                                f"expected a folder holding {spec.needs}.")
    label_names = None
    if name in ("mnist", "fashion_mnist"):
        arrays = _sources.read_mnist(source_dir, name)
    else:
        arrays, label_names = _sources.read_cifar(source_dir, name)
    return _builders.write(name, data_dir, arrays=arrays, label_names=label_names,
                           overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m jaxcnn.data.prepare NAME --from DIR --data-dir OUT``.

    Formula: exit status 0 when prepared (or already there), 2 for missing or bad input
    files, with the reason on stderr.

    Args:
      argv: the arguments (default ``sys.argv[1:]``).

    Example:
      >>> import tempfile
      >>> main(["digits", "--data-dir", tempfile.mkdtemp()])
      digits prepared in .../digits/1.0.0 (train: 1,437, test: 360).
      Read it with jaxcnn.data.load('digits', data_dir='...').
      0
    """
    parser = argparse.ArgumentParser(
        prog="python -m jaxcnn.data.prepare",
        description="Prepare a dataset offline as TFDS ArrayRecord (no TensorFlow needed).")
    parser.add_argument("name", help=f"dataset: {', '.join(PREPARABLE)}")
    parser.add_argument("--from", dest="source_dir", metavar="DIR",
                        help="folder with the raw files (not needed for digits)")
    parser.add_argument("--data-dir", metavar="OUT", default=None,
                        help=f"output root (default {_specs.default_data_dir()})")
    parser.add_argument("--overwrite", action="store_true", help="rebuild if already prepared")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir) if args.data_dir else _specs.default_data_dir()
    try:
        builder_cls = _builders.BUILDERS.get(args.name)
        if builder_cls is not None and not args.overwrite:
            target = _builders.version_dir(builder_cls, data_dir)
            if _builders.is_prepared(target):
                print(f"{args.name} is already prepared in {target} (--overwrite rebuilds it).")
                return 0
        path = prepare(args.name, args.source_dir, data_dir, overwrite=args.overwrite)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import tensorflow_datasets as tfds

    splits = tfds.builder(args.name, data_dir=os.fspath(data_dir)).info.splits
    sizes = ", ".join(f"{split}: {info.num_examples:,}" for split, info in splits.items())
    print(f"{args.name} prepared in {path} ({sizes}).\nRead it with "
          f"jaxcnn.data.load({args.name!r}, data_dir={os.fspath(data_dir)!r}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
