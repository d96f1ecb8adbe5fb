"""Checked readers for the raw files that ``jaxcnn.data.prepare`` converts.

Everything here is plain numpy + the standard library: no TensorFlow, no TFDS, no pickle.
Each reader returns ``{split: {"image": uint8 (N, H, W, C), "label": int64 (N,), ...}}``
and raises ``FileNotFoundError`` (a file is missing) or ``ValueError`` (a file is wrong,
truncated or corrupt) with a message naming the file and what was expected.
"""

from __future__ import annotations

import tarfile
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

Arrays = dict[str, dict[str, np.ndarray]]

# IDX magic numbers (http://yann.lecun.com/exdb/mnist/): 0x0000 0803 = unsigned byte, 3 dims.
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_SIZES = {"train": 60_000, "test": 10_000}


def _read_bytes(path: Path) -> tuple[bytes, bool]:
    """Return the (decompressed when gzip) content and whether the gzip stream was complete."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: an already-decompressed file
        return raw, True
    # A streaming decompressor (unlike gzip.open) reports how much came out before a
    # truncated stream ended, which the error message needs.
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(raw)
    except zlib.error as err:
        raise ValueError(
            f"{path}: corrupt gzip data ({err}); expected a valid gzip file of "
            f"{len(raw):,} bytes. Download the file again."
        ) from None
    return data, decompressor.eof


def _find(source_dir: Path, stem: str, what: str) -> Path:
    for candidate in (source_dir / f"{stem}.gz", source_dir / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"missing {what}: expected {source_dir / (stem + '.gz')} (or the uncompressed "
        f"{stem}) in the --from directory {source_dir}."
    )


def read_idx(path: str | Path, magic: int, item_shape: Sequence[int]) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes, checking every header field.

    Formula: the file is ``magic:int32 | dims:int32 * ndim | prod(dims) bytes`` (big-endian),
    with ``magic == 0x800 + ndim`` for unsigned bytes: 2051 for images, 2049 for labels.

    Args:
      path: the ``.gz`` or uncompressed IDX file.
      magic: the expected magic number (``IDX_IMAGES_MAGIC`` or ``IDX_LABELS_MAGIC``).
      item_shape: the expected shape of one item, e.g. ``(28, 28)`` for images, ``()`` for
        labels.

    Returns:
      A read-only uint8 array of shape ``(N, *item_shape)``.

    Example:
      >>> import gzip, pathlib, struct, tempfile
      >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.gz"
      >>> _ = p.write_bytes(gzip.compress(struct.pack(">ii", 2049, 3) + bytes([7, 2, 1])))
      >>> read_idx(p, IDX_LABELS_MAGIC, ())
      array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    data, complete = _read_bytes(path)
    ndim = 1 + len(item_shape)
    header_size = 4 + 4 * ndim
    kind = "image" if magic == IDX_IMAGES_MAGIC else "label"
    if len(data) < header_size:
        raise ValueError(
            f"{path}: {len(data)} bytes is too short for an IDX {kind} file (the header alone "
            f"is {header_size} bytes)" + ("; the gzip stream is truncated" if not complete else "")
        )
    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        raise ValueError(
            f"{path}: IDX magic number is {found_magic}, expected {magic} for an {kind} file "
            f"({IDX_IMAGES_MAGIC} = images, {IDX_LABELS_MAGIC} = labels). Wrong file?"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    if dims[1:] != tuple(item_shape):
        raise ValueError(
            f"{path}: IDX header gives item shape {dims[1:]}, expected {tuple(item_shape)}."
        )
    expected = header_size + int(np.prod(dims))
    if not complete or len(data) != expected:
        layout = " x ".join(str(d) for d in dims)
        problem = (
            "the gzip stream is truncated: it decompressed to" if not complete else "it holds"
        )
        raise ValueError(
            f"{path}: {problem} {len(data):,} bytes, but the IDX header ({layout}) needs "
            f"{expected:,} bytes ({header_size}-byte header + {layout} uint8). "
            "Download the file again."
        )
    return np.frombuffer(data, np.uint8, offset=header_size).reshape(dims)


def _warn_size(what: str, found: int, standard: int) -> None:
    if found != standard:
        warnings.warn(
            f"{what} has {found:,} examples; the standard release has {standard:,}.",
            stacklevel=3,
        )


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if labels.size and int(labels.max()) >= num_classes:
        raise ValueError(
            f"{where}: label {int(labels.max())} is out of range, expected 0..{num_classes - 1}."
        )


def read_mnist(source_dir: str | Path, name: str = "mnist") -> Arrays:
    """Read MNIST or Fashion-MNIST (same file names and IDX format) from ``source_dir``.

    Args:
      source_dir: directory with ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (or uncompressed).
      name: ``"mnist"`` or ``"fashion_mnist"``, used in messages.

    Returns:
      ``{"train": {"image": (60000, 28, 28, 1), "label": (60000,)}, "test": {...}}``.
    """
    source_dir = Path(source_dir)
    out: Arrays = {}
    for split, (image_stem, label_stem) in _MNIST_FILES.items():
        image_path = _find(source_dir, image_stem, f"{name} {split} images")
        label_path = _find(source_dir, label_stem, f"{name} {split} labels")
        images = read_idx(image_path, IDX_IMAGES_MAGIC, (28, 28))
        labels = read_idx(label_path, IDX_LABELS_MAGIC, ())
        if len(images) != len(labels):
            raise ValueError(
                f"{image_path} has {len(images):,} images but {label_path} has "
                f"{len(labels):,} labels; expected the same count."
            )
        _check_labels(labels, 10, str(label_path))
        _warn_size(f"{name} {split} ({image_path})", len(labels), _MNIST_SIZES[split])
        out[split] = {"image": images[..., None], "label": labels.astype(np.int64)}
    return out


# The binary (not python-pickle) CIFAR archives: fixed-size records, nothing to unpickle.
_CIFAR = {
    "cifar10": dict(
        archive="cifar-10-binary.tar.gz",
        archive_bytes=170_052_171,
        prefix="cifar-10-batches-bin",
        splits={"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]},
        per_file={"train": 10_000, "test": 10_000},
        label_keys=("label",),
        label_files={"label": ("batches.meta.txt", 10)},
        pickle_archive="cifar-10-python.tar.gz",
    ),
    "cifar100": dict(
        archive="cifar-100-binary.tar.gz",
        archive_bytes=168_513_733,
        prefix="cifar-100-binary",
        splits={"train": ["train.bin"], "test": ["test.bin"]},
        per_file={"train": 50_000, "test": 10_000},
        label_keys=("coarse_label", "label"),  # record order: coarse byte, then fine byte
        label_files={
            "coarse_label": ("coarse_label_names.txt", 20),
            "label": ("fine_label_names.txt", 100),
        },
        pickle_archive="cifar-100-python.tar.gz",
    ),
}
CIFAR_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
}


class _Members:
    """Reads members of a CIFAR binary archive, or of its already-extracted folder."""

    def __init__(self, source_dir: Path, name: str):
        self.name, self.spec = name, _CIFAR[name]
        self.prefix = self.spec["prefix"]
        self.archive: Path | None = source_dir / self.spec["archive"]
        self.directory: Path | None = None
        self._tar: tarfile.TarFile | None = None
        if self.archive.is_file():
            return
        probe = self.spec["splits"]["test"][0]
        for folder in (source_dir / self.prefix, source_dir):
            if (folder / probe).is_file():
                self.archive, self.directory = None, folder
                return
        pickled = source_dir / self.spec["pickle_archive"]
        hint = (
            f" Found {pickled.name}, the python-pickle version: jaxcnn reads only the binary "
            "version (fixed-size records, nothing is unpickled)."
            if pickled.exists() else ""
        )
        raise FileNotFoundError(
            f"missing {name} data: expected {self.archive} (from {CIFAR_URLS[name]}) or its "
            f"extracted folder {source_dir / self.prefix}.{hint}"
        )

    def read(self, member: str) -> tuple[bytes, str]:
        """Return the member's bytes and a description of where they came from."""
        if self.directory is not None:
            path = self.directory / member
            if not path.is_file():
                raise FileNotFoundError(f"missing {path} (a file of the {self.name} release).")
            return path.read_bytes(), str(path)
        where = f"{self.archive}:{self.prefix}/{member}"
        try:
            if self._tar is None:
                self._tar = tarfile.open(self.archive, "r:gz")
            handle = self._tar.extractfile(f"{self.prefix}/{member}")
            if handle is None:
                raise KeyError(member)
            return handle.read(), where
        except KeyError:
            raise FileNotFoundError(
                f"{self.archive} has no member {self.prefix}/{member}; expected the official "
                f"{self.spec['archive']} from {CIFAR_URLS[self.name]}."
            ) from None
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise ValueError(
                f"{where}: truncated or corrupt archive ({err}); the official "
                f"{self.spec['archive']} is {self.spec['archive_bytes']:,} bytes, this file is "
                f"{self.archive.stat().st_size:,} bytes. Download it again."
            ) from None

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def read_cifar(source_dir: str | Path, name: str) -> tuple[Arrays, dict[str, list[str]]]:
    """Read CIFAR-10 or CIFAR-100 from the official *binary* archive (no pickle).

    Formula: each record is ``label bytes | 3072 pixel bytes`` (one label byte for CIFAR-10;
    coarse then fine for CIFAR-100), pixels stored as 3 planes of 32x32 (CHW) -> HWC.

    Args:
      source_dir: directory holding ``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz``
        or their extracted folder (``cifar-10-batches-bin/``, ``cifar-100-binary/``).
      name: ``"cifar10"`` or ``"cifar100"``.

    Returns:
      ``(arrays, label_names)``: arrays as :func:`read_mnist` (images ``(N, 32, 32, 3)``,
      plus ``"coarse_label"`` for CIFAR-100) and ``{label_key: [names]}`` from the archive.
    """
    source_dir = Path(source_dir)
    spec = _CIFAR[name]
    label_keys: tuple[str, ...] = spec["label_keys"]
    record = len(label_keys) + 3072
    members = _Members(source_dir, name)
    try:
        names: dict[str, list[str]] = {}
        for key, (member, count) in spec["label_files"].items():
            data, where = members.read(member)
            names[key] = [line.strip() for line in data.decode().splitlines() if line.strip()]
            if len(names[key]) != count:
                raise ValueError(f"{where}: {len(names[key])} label names, expected {count}.")
        out: Arrays = {}
        for split, files in spec["splits"].items():
            chunks = []
            for member in files:
                data, where = members.read(member)
                if not data or len(data) % record:
                    raise ValueError(
                        f"{where}: {len(data):,} bytes is not a positive multiple of the "
                        f"{record}-byte record ({len(label_keys)} label byte(s) + 3072 pixel "
                        f"bytes); the standard file is {spec['per_file'][split] * record:,} "
                        "bytes. Truncated or wrong file?"
                    )
                rows = np.frombuffer(data, np.uint8).reshape(-1, record)
                _warn_size(where, len(rows), spec["per_file"][split])
                for j, key in enumerate(label_keys):
                    _check_labels(rows[:, j], len(names[key]), f"{where} ({key})")
                chunks.append(rows)
            rows = np.concatenate(chunks)
            arrays = {
                "image": rows[:, len(label_keys):].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
            }
            for j, key in enumerate(label_keys):
                arrays[key] = rows[:, j].astype(np.int64)
            out[split] = arrays
    finally:
        members.close()
    return out, names


DIGITS_TEST_SIZE = 360


def read_digits() -> Arrays:
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 images), split train/test.

    Formula: pixel counts 0..16 become ``round(v * 255 / 16)`` (uint8); a fixed permutation
    (``np.random.default_rng(0)``) puts 360 examples (20%) in ``test``, 1,437 in ``train``.

    Returns:
      ``{"train": {"image": (1437, 8, 8, 1), "label": (1437,)}, "test": {... 360 ...}}``.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: works offline

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = np.sort(order[:DIGITS_TEST_SIZE]), np.sort(order[DIGITS_TEST_SIZE:])
    return {
        "train": {"image": images[train], "label": labels[train]},
        "test": {"image": images[test], "label": labels[test]},
    }
