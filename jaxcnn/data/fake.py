"""Fake datasets of a real dataset's shape, for smoke tests and throughput benchmarks.

``load_fake("fake_imagenet", "train")`` behaves like ``jaxcnn.data.load("imagenet2012",
"train")`` (same image shape, class count and split size, same ``indices``/``batches``
contract) but its images are a fixed pool of random pixels: a run on it checks that a config
compiles, steps and checkpoints, and measures speed. It learns nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import numpy as np

from jaxcnn.data.dataset import Dataset, _check_fits, _check_int, _shard_name

# name -> (image shape, classes, {split: examples}). Eval splits are kept small so a smoke
# test's evaluation is quick.
FAKE_SPECS = {
    "fake_imagenet": ((224, 224, 3), 1000, {"train": 1_281_167, "validation": 256,
                                             "test": 256}),
    "fake_cifar10": ((32, 32, 3), 10, {"train": 50_000, "test": 1_000}),
    "fake_mnist": ((28, 28, 1), 10, {"train": 60_000, "test": 1_000}),
}
_POOL = 64  # distinct random images; example i shows image i % 64


class FakeDataset:
    """Random images with the shape, classes and size of a real dataset split.

    Example:
        >>> ds = load_fake("fake_cifar10", "test")
        >>> batch = next(ds.batches(8, shuffle=False))
        >>> batch["image"].shape, batch["label"][:3].tolist(), len(ds)
        ((8, 32, 32, 3), [0, 1, 2], 1000)
    """

    # Same sharding/shuffling contract as a real dataset.
    indices = Dataset.indices
    num_batches = Dataset.num_batches

    def __init__(self, name: str, split: str, image_size: int | None = None):
        shape, self.num_classes, sizes = FAKE_SPECS[name]
        if split not in sizes:
            raise ValueError(f"unknown `split`={split!r} for {name}; choose one of "
                             f"{sorted(sizes)}.")
        if image_size:
            shape = (image_size, image_size, shape[-1])
        self.name, self.split, self.image_shape, self._size = name, split, shape, sizes[split]
        rng = np.random.default_rng(0)
        self._pool = rng.normal(size=(_POOL, *shape)).astype(np.float32)

    def __len__(self) -> int:
        return self._size

    def batches(self, batch_size: int, *, seed: int | None = None, epoch: int = 0,
                shuffle: bool = True, drop_remainder: bool = True, process_index: int = 0,
                process_count: int = 1, **_: object) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``{"image": float32 (B, H, W, C), "label": int32 (B,)}``; label = i % K."""
        batch_size = _check_int(batch_size, "batch_size", 1)
        order = self.indices(seed=seed, epoch=epoch, shuffle=shuffle,
                             process_index=process_index, process_count=process_count,
                             drop_remainder=drop_remainder)
        _check_fits(len(order), batch_size, drop_remainder, _shard_name(self, process_count))
        return self._batches(order, batch_size, drop_remainder)

    def _batches(self, order: np.ndarray, batch_size: int, drop_remainder: bool
                 ) -> Iterator[dict[str, np.ndarray]]:
        stop = len(order) - len(order) % batch_size if drop_remainder else len(order)
        for start in range(0, stop, batch_size):
            chosen = order[start:start + batch_size]
            yield {"image": self._pool[chosen % _POOL],
                   "label": (chosen % self.num_classes).astype(np.int32)}


def load_fake(name: str, split: str = "train", image_size: int | None = None) -> FakeDataset:
    """A :class:`FakeDataset` named in ``FAKE_SPECS`` (``fake_imagenet``, ``fake_cifar10``, ...).

    Example:
        >>> load_fake("fake_imagenet", "validation").image_shape
        (224, 224, 3)
    """
    if name not in FAKE_SPECS:
        close = difflib.get_close_matches(str(name), FAKE_SPECS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown fake dataset `name`={name!r}.{hint} Choose one of "
                         f"{sorted(FAKE_SPECS)}.")
    return FakeDataset(name, split, image_size)
