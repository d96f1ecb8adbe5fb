"""Builders of small raw files in the official formats, and a TensorFlow-free subprocess."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

MNIST_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array, written from the format description."""
    magic = 0x0800 + array.ndim
    return struct.pack(f">i{array.ndim}i", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist_like(folder: Path, sizes=(("train", 12), ("test", 7)), seed: int = 0) -> dict:
    """Write the four gzip IDX files with random images/labels; return the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in sizes:
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        image_name, label_name = MNIST_NAMES[split]
        (folder / image_name).write_bytes(gzip.compress(idx_bytes(images)))
        (folder / label_name).write_bytes(gzip.compress(idx_bytes(labels)))
        arrays[split] = (images, labels)
    return arrays


def cifar_records(labels: list[np.ndarray], images: np.ndarray) -> bytes:
    """Binary CIFAR records: label byte(s), then the 3 colour planes of 32x32 (CHW)."""
    rows = [np.concatenate([[lab[i] for lab in labels], images[i].transpose(2, 0, 1).ravel()])
            for i in range(len(images))]
    return np.asarray(rows, np.uint8).tobytes()


def write_cifar(folder: Path, name: str, per_file: int = 3, seed: int = 0,
                corrupt: dict[str, bytes] | None = None, drop: str | None = None) -> dict:
    """Write a small ``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz``.

    Returns ``{split: (images NHWC, {label_key: labels})}`` in file order.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        prefix, archive = "cifar-10-batches-bin", "cifar-10-binary.tar.gz"
        files = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
        keys, classes = ["label"], [10]
        meta = {"batches.meta.txt": [f"class{i}" for i in range(10)]}
    else:
        prefix, archive = "cifar-100-binary", "cifar-100-binary.tar.gz"
        files = {"train": ["train.bin"], "test": ["test.bin"]}
        keys, classes = ["coarse_label", "label"], [20, 100]
        meta = {"coarse_label_names.txt": [f"super{i}" for i in range(20)],
                "fine_label_names.txt": [f"fine{i}" for i in range(100)]}
    members: dict[str, bytes] = {m: ("\n".join(v) + "\n").encode() for m, v in meta.items()}
    out = {}
    for split, names in files.items():
        all_images, all_labels = [], {k: [] for k in keys}
        for member in names:
            images = rng.integers(0, 256, (per_file, 32, 32, 3), dtype=np.uint8)
            labels = [rng.integers(0, c, per_file, dtype=np.uint8) for c in classes]
            members[member] = cifar_records(labels, images)
            all_images.append(images)
            for k, lab in zip(keys, labels, strict=True):
                all_labels[k].append(lab)
        out[split] = (np.concatenate(all_images),
                      {k: np.concatenate(v) for k, v in all_labels.items()})
    members.update(corrupt or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, data in members.items():
            if member == drop:
                continue
            info = tarfile.TarInfo(f"{prefix}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (folder / archive).write_bytes(buffer.getvalue())
    return out


# Makes `tensorflow` look not installed (find_spec -> None, import -> ModuleNotFoundError)
# even where it is installed, by wrapping every finder on sys.meta_path.
HIDE_TENSORFLOW = textwrap.dedent("""
    import sys

    class _HideTensorFlow:
        def __init__(self, finder):
            self._finder = finder

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "tensorflow":
                return None
            find_spec = getattr(self._finder, "find_spec", None)
            return find_spec(name, path, target) if find_spec else None

        def invalidate_caches(self):
            getattr(self._finder, "invalidate_caches", lambda: None)()

    sys.meta_path[:] = [_HideTensorFlow(f) for f in sys.meta_path]
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("tensorflow should be unimportable here")
""")


def python(code: str, **env: str) -> subprocess.Popen:
    """Start ``python -c HIDE_TENSORFLOW + code`` in the repo root (stdout+stderr piped)."""
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **env}
    full_env.pop("XLA_FLAGS", None)  # one device is enough in the child
    return subprocess.Popen(
        [sys.executable, "-c", HIDE_TENSORFLOW + textwrap.dedent(code)], cwd=REPO,
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-4000:]
    return out
