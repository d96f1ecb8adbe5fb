"""TFDS builders that write ArrayRecord datasets from local files, without TensorFlow.

TFDS's own builders download their sources and encode images with ``tf.image.encode_png``,
so ``download_and_prepare`` needs TensorFlow and the internet. The subclasses here keep the
built-in name, version and features (so ``tfds.data_source("mnist", data_dir=...)`` and
``tfds.builder("mnist")`` read the result with the stock TFDS class), but generate their
examples from arrays parsed by :mod:`jaxcnn.data._sources` and hand TFDS PNG bytes
(:func:`encode_png`): TFDS then only serialises protos and writes ArrayRecord, neither of
which needs TF.

``digits`` is a new dataset (scikit-learn's bundled 8x8 handwritten digits), registered with
TFDS under that name on import of :mod:`jaxcnn.data`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import cifar as _tfds_cifar
from tensorflow_datasets.image_classification import mnist as _tfds_mnist

from jaxcnn.data import _sources


def encode_png(image: np.ndarray) -> bytes:
    """PNG-encode one uint8 ``(H, W, C)`` image (C = 1 grey or 3 RGB), 8 bits, no filtering.

    Written directly (signature, ``IHDR``, one zlib ``IDAT``, ``IEND``) rather than through
    Pillow, whose per-image overhead made preparing MNIST's 70,000 images take ~20 s of
    encoding; any PNG reader decodes the result (tested against Pillow).

    Example:
      >>> import numpy as np
      >>> encode_png(np.zeros((2, 2, 1), np.uint8))[:4]
      b'\\x89PNG'
    """
    height, width, channels = image.shape
    if image.dtype != np.uint8 or channels not in (1, 3):
        raise ValueError(f"encode_png takes uint8 (H, W, 1) or (H, W, 3) images, got "
                         f"{image.dtype} {image.shape}.")
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # filter byte 0: none
    rows[:, 1:] = image.reshape(height, width * channels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def decode_image(data: bytes, channels: int) -> np.ndarray:
    """Decode PNG or JPEG bytes to a uint8 ``(H, W, channels)`` array with Pillow.

    Example:
      >>> import numpy as np
      >>> x = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
      >>> bool((decode_image(encode_png(x), 1) == x).all())
      True
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        mode = "L" if channels == 1 else "RGB"
        if image.mode != mode:  # e.g. CMYK or palette JPEGs in ImageNet
            image = image.convert(mode)
        array = np.asarray(image)
    return array[..., None] if array.ndim == 2 else array


class _FromArrays:
    """Builder mixin: examples come from ``{split: {feature: array}}`` given to ``__init__``."""

    def __init__(self, *, arrays: _sources.Arrays | None = None,
                 label_names: dict[str, list[str]] | None = None, **kwargs: Any):
        self._arrays = arrays
        self._label_names = label_names or {}
        super().__init__(**kwargs)

    def _load_arrays(self) -> _sources.Arrays:
        if self._arrays is None:
            raise RuntimeError(
                f"{self.name} is prepared offline from local files: run "
                f"`python -m jaxcnn.data.prepare {self.name} --from DIR --data-dir OUT`."
            )
        return self._arrays

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        arrays = self._load_arrays()
        for key, names in self._label_names.items():
            self.info.features[key].names = names
        return {split: self._generate_examples(split, cols) for split, cols in arrays.items()}

    def _generate_examples(self, split: str, cols: dict[str, np.ndarray]):
        keys = list(self.info.features.keys())
        for index in range(len(cols["label"])):
            example = {}
            for key in keys:
                if key == "image":
                    example[key] = encode_png(cols["image"][index])
                elif key == "id":  # the format of TFDS's CIFAR builder
                    example[key] = f"{split}_{index:05d}"
                else:
                    example[key] = int(cols[key][index])
            yield index, example


class Mnist(_FromArrays, _tfds_mnist.MNIST, skip_registration=True):
    name = "mnist"


class FashionMnist(_FromArrays, _tfds_mnist.FashionMNIST, skip_registration=True):
    name = "fashion_mnist"


class Cifar10(_FromArrays, _tfds_cifar.Cifar10, skip_registration=True):
    name = "cifar10"


class Cifar100(_FromArrays, _tfds_cifar.Cifar100, skip_registration=True):
    name = "cifar100"


class Digits(_FromArrays, tfds.core.GeneratorBasedBuilder):
    """scikit-learn's handwritten digits (UCI optdigits test set): 1,797 8x8 images, 10 classes.

    Prepared from the copy bundled with scikit-learn, so it needs neither internet nor files:
    ``tfds.builder("digits", data_dir=OUT).download_and_prepare(file_format="array_record")``.
    """

    name = "digits"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "8x8x1 uint8 images (0..16 scaled to 0..255); 1437/360 split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Optical recognition of handwritten digits (UCI), as bundled with "
                "scikit-learn: 8x8 images of pixel counts 0..16, scaled to 0..255. Train and "
                "test are a fixed 80/20 split (np.random.default_rng(0))."
            ),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
            }),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
            citation="Alpaydin, E. and Kaynak, C. (1998). Optical Recognition of Handwritten "
                     "Digits. UCI Machine Learning Repository.",
        )

    def _load_arrays(self) -> _sources.Arrays:
        return self._arrays if self._arrays is not None else _sources.read_digits()


BUILDERS: dict[str, type] = {
    cls.name: cls for cls in (Mnist, FashionMnist, Cifar10, Cifar100, Digits)
}


def version_dir(builder_cls: type, data_dir: str | os.PathLike) -> Path:
    """``data_dir/name/version``: where TFDS keeps a prepared dataset."""
    return Path(data_dir) / builder_cls.name / str(builder_cls.VERSION)


def is_prepared(path: Path) -> bool:
    """TFDS writes ``dataset_info.json`` last, inside a folder renamed into place when done."""
    return (path / "dataset_info.json").is_file()


def write(name: str, data_dir: str | os.PathLike, *, arrays: _sources.Arrays | None = None,
          label_names: dict[str, list[str]] | None = None, overwrite: bool = False) -> Path:
    """Write dataset ``name`` as TFDS ArrayRecord under ``data_dir``; return its version dir.

    The dataset is generated in a temporary folder inside ``data_dir`` and renamed into
    place, so an interrupted run never leaves a folder that looks complete.
    """
    builder_cls = BUILDERS[name]
    data_dir = Path(data_dir)
    final = version_dir(builder_cls, data_dir)
    if is_prepared(final) and not overwrite:
        return final
    data_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-incomplete-", dir=data_dir))
    try:
        builder = builder_cls(arrays=arrays, label_names=label_names, data_dir=scratch,
                              file_format="array_record")
        # TFDS prints where it writes (our scratch folder, which is misleading): keep quiet.
        with contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare(
                download_dir=scratch / "downloads",
                download_config=tfds.download.DownloadConfig(try_download_gcs=False),
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            if is_prepared(final) and not overwrite:  # another process won the race
                return final
            os.replace(final, scratch / "previous")
        try:
            os.replace(version_dir(builder_cls, scratch), final)
        except OSError:  # the destination appeared meanwhile (a concurrent prepare)
            if not is_prepared(final):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final
