"""``load(name, split)``: a prepared TFDS ArrayRecord split, iterated as numpy batches.

Reading needs neither TensorFlow nor the internet: ``tfds`` reads ArrayRecord through its
``data_source`` API and images are decoded with Pillow. Small datasets (MNIST,
Fashion-MNIST, CIFAR, digits) are decoded once into numpy and batched on the fly, which
``benchmarks/input_pipeline.py`` measured to be faster than a per-example grain pipeline;
ImageNet is streamed with grain (worker processes, per-example decode).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxcnn.data import _builders, _specs
from jaxcnn.data.pipeline import normalize as _normalize
from jaxcnn.functional._checks import check_labels, check_rank

_CHUNK = 4096  # records decoded per read when materialising a split
# absl flags grain reads with no fallback to their default in a program that never parsed
# flags (google/grain#1355): grain 0.2.18's profiler.is_worker_profiling_enabled(), when
# mp_prefetch starts its worker processes. Every other flag grain and array_record read falls
# back to its default by itself.
_GRAIN_UNGUARDED_FLAGS = ("grain_enable_multiprocess_worker_profiling",)
_flags_lock = threading.Lock()
_flags_users = 0
_flags_marked: list[str] = []
_IMAGENET_CROP = 0.875  # resize the short side to image_size / 0.875, then centre-crop


def center_pad(images: np.ndarray, image_size: int) -> np.ndarray:
    """Centre ``(N, H, W, C)`` images on a black ``image_size x image_size`` canvas.

    Formula: ``(image_size - H) // 2`` zero rows above, the rest below; same for columns.
    LeCun et al. (1998) fed LeNet-5 the 28x28 MNIST digits padded this way to 32x32.

    Args:
      images: ``(N, H, W, C)`` with ``H, W <= image_size``.
      image_size: output height and width.

    Example:
      >>> center_pad(np.ones((1, 28, 28, 1), np.uint8), 32)[0, :3, :3, 0]
      array([[0, 0, 0],
             [0, 0, 0],
             [0, 0, 1]], dtype=uint8)
    """
    height, width = images.shape[1:3]
    if image_size == height == width:
        return images
    if image_size < max(height, width):
        raise ValueError(f"`image_size`={image_size} is smaller than the {height}x{width} "
                         f"images; padding cannot shrink them: use image_size >= "
                         f"{max(height, width)}.")
    top, left = (image_size - height) // 2, (image_size - width) // 2
    return np.pad(images, ((0, 0), (top, image_size - height - top),
                           (left, image_size - width - left), (0, 0)))


def upsample_pad(images: np.ndarray, image_size: int) -> np.ndarray:
    """Enlarge 8x8 ``digits`` to ``image_size``: integer pixel replication, then zero padding.

    Formula: each pixel becomes an ``f x f`` block with ``f = max(1, 3 * image_size // 32)``,
    and the ``8f x 8f`` digit is centred on a black ``image_size`` square (:func:`center_pad`).
    For the default 32 that is a 24x24 digit with a 4-pixel border, much like MNIST's 20x20
    digits in 28x28 frames.

    Args:
      images: uint8 ``(N, 8, 8, C)``.
      image_size: output height and width, >= 8.

    Example:
      >>> big = upsample_pad(np.ones((1, 8, 8, 1), np.uint8), 32)
      >>> big.shape, int(big.sum())  # a 24x24 block of ones
      ((1, 32, 32, 1), 576)
    """
    image_size = _check_int(image_size, "image_size", 8)
    factor = max(1, 3 * image_size // 32)
    return center_pad(images.repeat(factor, axis=1).repeat(factor, axis=2), image_size)


def resize_center_crop(image: np.ndarray, image_size: int) -> np.ndarray:
    """Standard ImageNet evaluation crop: resize the short side, then take the centre square.

    Formula: short side -> ``round(image_size / 0.875)`` (bilinear), then the central
    ``image_size x image_size`` crop.

    Args:
      image: uint8 ``(H, W, C)`` of any size.
      image_size: output height and width (> 0).

    Example:
      >>> resize_center_crop(np.zeros((300, 500, 3), np.uint8), 224).shape
      (224, 224, 3)
    """
    from PIL import Image

    image_size = _check_int(image_size, "image_size", 1)
    check_rank(image, "image", (2, 3), "(H, W) or (H, W, C): one image")
    height, width = image.shape[:2]
    short = max(image_size, round(image_size / _IMAGENET_CROP))
    scale = short / min(height, width)
    new_h, new_w = max(short, round(height * scale)), max(short, round(width * scale))
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    resized = np.asarray(pil.resize((new_w, new_h), Image.BILINEAR))
    resized = resized[..., None] if resized.ndim == 2 else resized
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    return resized[top:top + image_size, left:left + image_size]


def _stored_labels_fix(name: str) -> str:
    return (f"the prepared {name} files do not match the dataset; prepare them again with "
            f"overwrite (`python -m jaxcnn.data.prepare {name} ... --overwrite`)")


class _Preprocess:
    """Decode one record to ``{"image": uint8 HWC, "label": int32}`` (picklable for grain)."""

    def __init__(self, name: str, channels: int, image_size: int, num_classes: int | None = None):
        self.name, self.channels, self.image_size = name, channels, image_size
        self.num_classes = num_classes

    def images(self, images: np.ndarray) -> np.ndarray:
        """Bring a batch of stored images to ``image_size`` (small datasets)."""
        if self.name == "digits":
            return upsample_pad(images, self.image_size)
        return center_pad(images, self.image_size)

    def __call__(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
        image = _builders.decode_image(record["image"], self.channels)
        if self.name == "imagenet2012":
            image = resize_center_crop(image, self.image_size)
        else:
            image = self.images(image[None])[0]
        label = np.int32(record["label"])
        # Streamed datasets are checked record by record (a plain comparison: this is per image).
        if self.num_classes is not None and not 0 <= label < self.num_classes:
            check_labels(label, self.num_classes, f"label of {self.name}",
                         _stored_labels_fix(self.name))
        return {"image": image, "label": label}


class _Finish:
    """Batch-level normalisation (picklable for grain)."""

    def __init__(self, mean: np.ndarray | None, std: np.ndarray | None):
        self.mean, self.std = mean, std

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.mean is None:
            return batch
        return {**batch, "image": _normalize(batch["image"], self.mean, self.std)}


class _Subset:
    """``source`` seen through an index array: what grain reads, in our order."""

    def __init__(self, source: Any, indices: np.ndarray):
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.source[int(self.indices[i])]


def _check_int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _check_fits(examples: int, batch_size: int, drop_remainder: bool, where: str) -> None:
    """Raise when an epoch of ``examples`` would yield no batch at all (an empty iterator)."""
    if examples == 0:
        raise ValueError(f"{where} has no examples to batch; use a non-empty split, or fewer "
                         f"processes than examples.")
    if drop_remainder and batch_size > examples:
        raise ValueError(
            f"`batch_size`={batch_size} is larger than the {examples} examples of {where}: with "
            f"drop_remainder=True not one batch would be produced. Use batch_size <= "
            f"{examples}, or drop_remainder=False.")


class Dataset:
    """One split of a prepared dataset (see :func:`load`).

    Attributes:
      name, split: as given to :func:`load`.
      info: the ``tfds.core.DatasetInfo`` (features, split sizes, citation).
      num_classes: number of classes.
      image_shape: ``(H, W, C)`` of the images in batches.
      mean, std: per-channel float32 statistics (0..1 scale) used to normalise batches.
      data_dir: the prepared ``name/version`` folder.
    """

    def __init__(self, name: str, split: str, builder: tfds.core.DatasetBuilder, *,
                 image_size: int | None = None):
        self.name, self.split = name, split
        self.spec = _specs.spec(name)
        self.info = builder.info
        self.num_classes = self.spec.num_classes
        self.data_dir = Path(os.fspath(builder.data_path))
        self._source = builder.as_data_source(
            split, decoders={"image": tfds.decode.SkipDecoding()})
        native = tuple(self.info.features["image"].shape)
        if image_size is None:
            image_size = {"imagenet2012": 224, "digits": 32}.get(name, native[0])
        smallest = native[0] if native[0] and name != "digits" else 8
        if not isinstance(image_size, int | np.integer) or image_size < smallest:
            stored = f" (stored images are {native[0]}x{native[1]})" if native[0] else ""
            raise ValueError(f"`image_size` must be an int >= {smallest} for {name}{stored}, "
                             f"got {image_size!r}.")
        self.image_shape = (int(image_size), int(image_size), native[-1])
        self._preprocess = _Preprocess(name, native[-1], int(image_size), self.num_classes)
        if self.spec.mean is not None:
            self.mean = np.asarray(self.spec.mean, np.float32)
            self.std = np.asarray(self.spec.std, np.float32)
        else:  # digits: statistics of the enlarged train split
            # The whole train split is this dataset's own images: decode them once, not twice.
            train = (self._arrays[0] if split == "train" else
                     self._preprocess.images(_read_split(builder, "train")[0])) / 255.0
            self.mean = train.mean(axis=(0, 1, 2)).astype(np.float32)
            self.std = train.std(axis=(0, 1, 2)).astype(np.float32)

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, split={self.split!r}, examples={len(self)}, "
                f"image_shape={self.image_shape}, num_classes={self.num_classes})")

    @functools.cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.spec.in_memory:
            raise ValueError(
                f"{self.name} is too large to decode into memory; iterate it with "
                "`.batches(...)`, which streams it with grain.")
        images, labels = _read_split(self._source)
        check_labels(labels, self.num_classes, f"labels of {self.name}/{self.split}",
                     _stored_labels_fix(self.name))
        return self._preprocess.images(images), labels

    @property
    def images(self) -> np.ndarray:
        """All images, uint8 ``(N, H, W, C)``, decoded on first access (small datasets)."""
        return self._arrays[0]

    @property
    def labels(self) -> np.ndarray:
        """All labels, int32 ``(N,)``."""
        return self._arrays[1]

    def indices(self, *, seed: int | None = None, epoch: int = 0, shuffle: bool = True,
                process_index: int = 0, process_count: int = 1,
                drop_remainder: bool = False) -> np.ndarray:
        """The example indices that process ``process_index`` visits in ``epoch``, in order.

        Formula: ``perm = default_rng([seed, epoch]).permutation(N)`` (identity if not
        ``shuffle``); process ``p`` of ``P`` takes ``perm[p::P]``. Every process computes the
        same ``perm`` without communicating, so the shards are disjoint and cover the split.
        With ``drop_remainder`` each shard is cut to ``N // P`` so all processes run the same
        number of steps.

        Args:
          seed: int >= 0, required when ``shuffle``; same on every process.
          epoch: int >= 0; each epoch gets a fresh permutation.
          shuffle: permute (training) or keep the stored order (evaluation).
          process_index, process_count: this process and the number of processes
            (``jax.process_index()``, ``jax.process_count()`` in multi-host training).
          drop_remainder: equalise shard sizes.

        Example:
          >>> import tempfile
          >>> ds = load("digits", "test", data_dir=tempfile.mkdtemp())
          >>> a = ds.indices(seed=0, process_index=0, process_count=2)
          >>> b = ds.indices(seed=0, process_index=1, process_count=2)
          >>> len(a), len(b), sorted([*a, *b]) == list(range(len(ds)))
          (180, 180, True)
        """
        n = len(self)
        process_count = _check_int(process_count, "process_count", 1)
        process_index = _check_int(process_index, "process_index", 0)
        if process_index >= process_count:
            raise ValueError(f"`process_index`={process_index} must be < "
                             f"`process_count`={process_count}.")
        epoch = _check_int(epoch, "epoch", 0)
        if shuffle:
            if seed is None:
                raise ValueError("`seed` is required when shuffle=True (the same int on every "
                                 "process), e.g. batches(128, seed=0, epoch=epoch).")
            order = np.random.default_rng([_check_int(seed, "seed", 0), epoch]).permutation(n)
        else:
            order = np.arange(n)
        shard = order[process_index::process_count]
        return shard[: n // process_count] if drop_remainder else shard

    def num_batches(self, batch_size: int, *, drop_remainder: bool = True,
                    process_index: int = 0, process_count: int = 1) -> int:
        """How many batches :meth:`batches` yields with these arguments (steps per epoch).

        Example:
          >>> import tempfile
          >>> load("digits", "test", data_dir=tempfile.mkdtemp()).num_batches(64)
          5
        """
        batch_size = _check_int(batch_size, "batch_size", 1)
        n = len(self.indices(shuffle=False, process_index=process_index,
                             process_count=process_count, drop_remainder=drop_remainder))
        return n // batch_size if drop_remainder else -(-n // batch_size)

    def batches(self, batch_size: int, *, seed: int | None = None, epoch: int = 0,
                shuffle: bool = True, drop_remainder: bool = True, process_index: int = 0,
                process_count: int = 1, normalize: bool = True, backend: str | None = None,
                worker_count: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of batches ``{"image": (B, H, W, C), "label": int32 (B,)}`` as numpy.

        Formula: batch ``i`` holds examples ``indices(...)[i * B:(i + 1) * B]`` (see
        :meth:`indices`), images normalised as ``(x / 255 - mean) / std`` (float32) unless
        ``normalize=False`` (uint8).

        Args:
          batch_size: examples per batch *on this process* (> 0).
          seed, epoch, shuffle, process_index, process_count: see :meth:`indices`.
          drop_remainder: drop the last incomplete batch (training); keep it for evaluation.
          normalize: float32 normalised images (default) or raw uint8 (e.g. to augment and
            normalise on the device).
          backend: ``"memory"`` (decode the split once, then slice numpy; default for small
            datasets) or ``"grain"`` (stream and decode per example; default for ImageNet).
            Both yield identical batches.
          worker_count: grain worker processes (0 = decode in this process's threads).

        Example:
          >>> import tempfile
          >>> ds = load("digits", "train", data_dir=tempfile.mkdtemp())
          >>> batch = next(ds.batches(32, seed=0))
          >>> batch["image"].shape, batch["image"].dtype, batch["label"].dtype
          ((32, 32, 32, 1), dtype('float32'), dtype('int32'))
        """
        batch_size = _check_int(batch_size, "batch_size", 1)
        worker_count = _check_int(worker_count, "worker_count", 0)
        order = self.indices(seed=seed, epoch=epoch, shuffle=shuffle,
                             process_index=process_index, process_count=process_count,
                             drop_remainder=drop_remainder)
        _check_fits(len(order), batch_size, drop_remainder, _shard_name(self, process_count))
        backend = backend or ("memory" if self.spec.in_memory else "grain")
        finish = _Finish(self.mean if normalize else None, self.std)
        if backend == "memory":
            images, labels = self._arrays
            return _memory_batches(images, labels, order, batch_size, drop_remainder, finish)
        if backend == "grain":
            return self._grain_batches(order, batch_size, drop_remainder, finish, worker_count)
        raise ValueError(f"`backend` must be 'memory' or 'grain', got {backend!r}.")

    def _grain_batches(self, order: np.ndarray, batch_size: int, drop_remainder: bool,
                       finish: _Finish, worker_count: int) -> Iterator[dict[str, np.ndarray]]:
        import grain  # heavy import, only for streaming

        pipeline = (grain.MapDataset.source(_Subset(self._source, order))
                    .map(self._preprocess)
                    .batch(batch_size, drop_remainder=drop_remainder)
                    .map(finish)
                    .to_iter_dataset())
        scope = contextlib.nullcontext()
        if worker_count:
            pipeline = pipeline.mp_prefetch(
                grain.MultiprocessingOptions(num_workers=worker_count))
            scope = _grain_flags_readable()
        with scope:
            iterator = iter(pipeline)
            try:
                yield from iterator
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()


@contextlib.contextmanager
def _grain_flags_readable() -> Iterator[None]:
    """While grain worker processes start and run: :data:`_GRAIN_UNGUARDED_FLAGS` readable.

    grain reads those absl flags from its own threads when it starts worker processes, and in
    a program that never parsed absl flags the read raises ``UnparsedFlagAccessError``. The
    library must not parse (or mark as parsed) the program's flags, so only for as long as a
    multi-process iteration runs, each of those flags, if not given, is marked present (read
    at its default, False); the marks are removed when the last such iteration ends. Whether
    flags are parsed, every value and every other flag stay as they were. Nothing is done
    when the program has parsed its flags.
    """
    from absl import flags

    global _flags_users
    with _flags_lock:
        if _flags_users == 0 and not flags.FLAGS.is_parsed():
            for name in _GRAIN_UNGUARDED_FLAGS:
                if name in flags.FLAGS and not flags.FLAGS[name].present:
                    flags.FLAGS[name].present = 1
                    _flags_marked.append(name)
        _flags_users += 1
    try:
        yield
    finally:
        with _flags_lock:
            _flags_users -= 1
            if _flags_users == 0:
                for name in _flags_marked:
                    flags.FLAGS[name].present = 0
                _flags_marked.clear()


def _shard_name(dataset: Any, process_count: int) -> str:
    shard = f" (this process's shard of {process_count})" if process_count > 1 else ""
    return f"{dataset.name}/{dataset.split}{shard}"


def _memory_batches(images: np.ndarray, labels: np.ndarray, order: np.ndarray,
                    batch_size: int, drop_remainder: bool,
                    finish: _Finish) -> Iterator[dict[str, np.ndarray]]:
    stop = len(order) - len(order) % batch_size if drop_remainder else len(order)
    for start in range(0, stop, batch_size):
        chosen = order[start:start + batch_size]
        yield finish({"image": images[chosen], "label": labels[chosen]})


def _read_split(source: Any, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a whole split (a data source, or a builder + split name) into numpy arrays."""
    if split is not None:
        source = source.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
    channels = source.dataset_info.features["image"].shape[-1]
    images, labels = [], []
    for start in range(0, len(source), _CHUNK):
        records = source.__getitems__(range(start, min(start + _CHUNK, len(source))))
        images.extend(_builders.decode_image(r["image"], channels) for r in records)
        labels.extend(r["label"] for r in records)
    shape = tuple(source.dataset_info.features["image"].shape)
    return (np.stack(images) if images else np.zeros((0, *shape), np.uint8),
            np.asarray(labels, np.int32))


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None, *,
         image_size: int | None = None) -> Dataset:
    """Open one split of a dataset prepared in TFDS ArrayRecord format (no TensorFlow needed).

    Formula: reads ``data_dir/name/version/`` (as ``tfds.data_source`` does); ``digits`` is
    prepared there on first use from the copy bundled with scikit-learn.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``, ``"cifar100"``,
        ``"imagenet2012"`` (TFDS names) or ``"digits"`` (scikit-learn's 8x8 digits, the
        offline default).
      split: ``"train"`` or ``"test"`` (``"validation"`` for ImageNet); TFDS slicing such as
        ``"train[:90%]"`` works.
      data_dir: folder holding prepared datasets. Default: ``$JAXCNN_DATA_DIR`` or
        ``~/.cache/jaxcnn/tensorflow_datasets``, then TFDS's ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``.
      image_size: height and width of the images in batches. ``digits``: default 32, the
        8x8 digits enlarged by pixel replication and centred on a black border
        (:func:`upsample_pad`); 32x32x1 suits LeNet-5. ``mnist``, ``fashion_mnist``,
        ``cifar*``: default native (28, 32); larger sizes are zero-padded around the centre
        (:func:`center_pad`), e.g. ``image_size=32`` for LeNet-5 on MNIST as in the paper.
        ``imagenet2012``: centre-crop size, default 224 (:func:`resize_center_crop`).

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: unknown ``name`` (with a "did you mean") or ``split``.
      FileNotFoundError: the dataset is not prepared; the message gives the command.

    Example:
      >>> import tempfile
      >>> ds = load("digits", "train", data_dir=tempfile.mkdtemp())
      >>> len(ds), ds.images.shape, ds.num_classes
      (1437, (1437, 32, 32, 1), 10)
    """
    spec = _specs.spec(name)
    if data_dir is not None:
        candidates = [Path(data_dir)]
    else:
        candidates = list(dict.fromkeys([_specs.default_data_dir(), _specs.tfds_data_dir()]))
    builder_cls = tfds.builder_cls(name)
    found = next((d for d in candidates
                  if _builders.is_prepared(_builders.version_dir(builder_cls, d))), None)
    if found is None and name == "digits":
        found = candidates[0]
        _builders.write(name, found)
    if found is None:
        looked = ", ".join(str(_builders.version_dir(builder_cls, d)) for d in candidates)
        if data_dir is None:
            where = "the default folders (`data_dir` not given)"
        else:
            missing = "" if Path(data_dir).is_dir() else ", a folder that does not exist"
            where = f"`data_dir`={os.fspath(data_dir)!r}{missing}"
        raise FileNotFoundError(
            f"dataset {name!r} is not prepared in {where}: no dataset_info.json in {looked}. "
            f"Pass the `data_dir` that holds it, or prepare it offline with\n    "
            f"{_specs.prepare_command(name, candidates[0])}\nwhere DIR holds {spec.needs}.")
    builder = tfds.builder(name, data_dir=os.fspath(found))
    available = list(builder.info.splits)
    if not isinstance(split, str) or split.partition("[")[0] not in available:
        raise ValueError(f"unknown `split`={split!r} for {name}; available: "
                         f"{', '.join(available)} (TFDS slicing like 'train[:90%]' works).")
    if builder.info.splits[split].num_examples == 0:
        raise ValueError(f"`split`={split!r} of {name} holds no examples; choose a non-empty "
                         f"slice (sizes: " + ", ".join(
                             f"{s} {builder.info.splits[s].num_examples}" for s in available)
                         + ").")
    file_format = builder.info.file_format
    if file_format != tfds.core.FileFormat.ARRAY_RECORD:
        raise ValueError(
            f"{builder.data_path} holds {getattr(file_format, 'value', 'tfrecord')} files; "
            "reading without "
            "TensorFlow needs ArrayRecord. Regenerate with `--file_format array_record`, or "
            "read it with tfds.load after `pip install -e \".[tf]\"`.")
    return Dataset(name, split, builder, image_size=image_size)
