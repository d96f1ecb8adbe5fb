"""Batch-level helpers: normalisation, one-hot labels, batch checks, host-to-device prefetch."""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.functional._checks import check_channels, check_float, check_labels, check_rank


def normalize(images: Any, mean: Sequence[float], std: Sequence[float], *,
              max_value: float = 255.0, dtype: Any = None) -> Any:
    """Per-channel standardisation of images stored on a ``0..max_value`` scale.

    Formula: ``y[..., c] = (x[..., c] / max_value - mean[c]) / std[c]``.

    Works on numpy arrays (returns numpy: the host-side pipeline uses it) and on JAX arrays
    (returns JAX; pure, so fine under ``jit``/``vmap``/``grad``).

    Args:
      images: ``(..., C)`` array, e.g. uint8 NHWC batches, or float images still on the
        ``0..max_value`` scale.
      mean: ``C`` per-channel means on the 0..1 scale (e.g. ``SPECS["cifar10"].mean`` or
        ``Dataset.mean``).
      std: ``C`` per-channel standard deviations on the 0..1 scale, all > 0.
      max_value: the value of a white pixel in ``images``: 255 for uint8, 1 for images
        already in ``[0, 1]``.
      dtype: output dtype. Default: the input dtype for floating inputs (float32 and
        bfloat16 are computed in that dtype), float32 for integer inputs.

    Example:
      >>> import numpy as np
      >>> x = np.array([[[[0, 255]]]], np.uint8)  # one 1x1 image with 2 channels
      >>> normalize(x, mean=(0.5, 0.5), std=(0.5, 0.25))
      array([[[[-1.,  2.]]]], dtype=float32)
    """
    mean = np.asarray(mean, np.float64).reshape(-1)
    std = np.asarray(std, np.float64).reshape(-1)
    if mean.shape != std.shape:
        raise ValueError(f"`mean` has {mean.size} entries but `std` has {std.size}; both must "
                         f"have one entry per channel.")
    if (std <= 0).any():
        raise ValueError(f"`std` must be > 0 for every channel, got {std.tolist()}.")
    if np.ndim(images) < 1:
        raise ValueError(f"`images` must have a channel axis (..., C), got shape "
                         f"{np.shape(images)}.")
    check_channels(np.shape(images)[-1], mean.size, "images", "len(mean)")
    in_dtype = np.dtype(images.dtype)
    if dtype is None:
        dtype = in_dtype if jnp.issubdtype(in_dtype, jnp.floating) else np.float32
    dtype = np.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}.")
    # One multiply-add with constants folded on the host, cast to the output dtype so
    # bfloat16 inputs are not promoted to float32.
    scale = (1.0 / (max_value * std)).astype(dtype)
    offset = (-mean / std).astype(dtype)
    if isinstance(images, np.ndarray) and images.ndim > 1 and images.size:
        # numpy runs one inner loop per pixel when broadcasting a length-C vector (~80x
        # slower for C = 3); constants tiled over a whole row make it one long loop.
        out = images.reshape(images.shape[0], -1).astype(dtype)
        reps = out.shape[1] // mean.size
        out *= np.tile(scale, reps)
        out += np.tile(offset, reps)
        return out.reshape(images.shape)
    return images.astype(dtype) * scale + offset


def one_hot(labels: Any, num_classes: int, *, dtype: Any = jnp.float32) -> jax.Array:
    """One-hot encode integer class labels (wraps ``jax.nn.one_hot``).

    Formula: ``y[..., k] = 1 if labels[...] == k else 0`` for ``k < num_classes``.

    Args:
      labels: integer array of any shape, values in ``[0, num_classes)`` (checked when
        concrete; under ``jit`` an index outside gives an all-zero row, as ``jax.nn.one_hot``).
      num_classes: number of classes (> 0).
      dtype: output dtype (float32 default; bfloat16 fine).

    Example:
      >>> one_hot(jnp.array([0, 2]), 3)
      Array([[1., 0., 0.],
             [0., 0., 1.]], dtype=float32)
    """
    if not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    check_labels(labels, int(num_classes))
    return jax.nn.one_hot(labels, int(num_classes), dtype=dtype)


def check_batch(batch: Mapping[str, Any], num_classes: int, *, finite: bool = False
                ) -> Mapping[str, Any]:
    """Check one host batch before it goes to the device; return it unchanged.

    A jitted training step cannot raise on values (they are traced), so the checks that need
    them run here, on the numpy batch: ``label`` holds one integer in ``[0, num_classes)`` per
    image, ``image`` is a floating ``(N, H, W, C)`` array and, with ``finite=True`` (the
    training config's ``check_finite_inputs``), holds no NaN or Inf. Cost: one pass over the
    labels, plus one over the pixels when ``finite``.

    Args:
      batch: ``{"image": (N, H, W, C) float, "label": (N,) int, ...}`` (other keys pass).
      num_classes: number of classes of the model's head.
      finite: also require every pixel to be finite.

    Raises:
      ValueError: missing entries, mismatched sizes, labels outside the range, non-finite
        pixels (with ``finite``).
      TypeError: integer images or non-integer labels.

    Example:
      >>> import numpy as np
      >>> batch = {"image": np.zeros((2, 4, 4, 1), np.float32), "label": np.array([0, 9])}
      >>> check_batch(batch, 10, finite=True) is batch
      True
      >>> batch["image"][1, 0, 0, 0] = np.nan
      >>> check_batch(batch, 10, finite=True)
      Traceback (most recent call last):
      ...
      ValueError: `batch['image']` must be finite (finite=True) but holds 1 NaN/Inf value(s)...
    """
    missing = [k for k in ("image", "label") if k not in batch]
    if missing:
        raise ValueError(f"`batch` must have 'image' and 'label' entries, got keys "
                         f"{sorted(batch)}.")
    images, labels = batch["image"], batch["label"]
    check_rank(images, "batch['image']", 4, "(N, H, W, C)")
    check_float(images, "batch['image']")
    if np.shape(labels) != np.shape(images)[:1]:
        raise ValueError(f"`batch['label']` must have shape (N,) = {np.shape(images)[:1]}, one "
                         f"label per image, got shape {np.shape(labels)}.")
    check_labels(labels, num_classes, "batch['label']")
    if finite:
        bad = ~np.isfinite(np.asarray(images))
        if bad.any():
            examples = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
            raise ValueError(
                f"`batch['image']` must be finite (finite=True) but holds {int(bad.sum())} "
                f"NaN/Inf value(s), in example(s) {examples[:5].tolist()} of the batch; fix the "
                f"data source or its preprocessing (e.g. a division by a zero std).")
    return batch


def prefetch_to_device(iterator: Iterable[Any], size: int = 2,
                       sharding: jax.sharding.Sharding | None = None,
                       put: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """Copy batches to the accelerator ``size`` steps ahead (double buffering for ``size=2``).

    Formula: when batch ``t`` is handed out, batches ``t+1 .. t+size-1`` are already being
    transferred; ``jax.device_put`` is asynchronous, so the copy overlaps the step on ``t``.

    Args:
      iterator: yields pytrees of host (numpy) arrays, e.g. ``Dataset.batches(...)``.
      size: how many batches live on the device at once (>= 1; 2 = double buffering).
      sharding: optional ``jax.sharding.Sharding`` of the *global* batch, e.g.
        ``NamedSharding(mesh, P("data"))`` to split the leading axis across devices. With
        several processes each one passes its own shard (``process_index``/``process_count``
        in ``Dataset.batches``), assembled with ``jax.make_array_from_process_local_data``.
      put: optional function placing one host batch (instead of ``sharding``), e.g. a
        training strategy's ``put_batch`` that reshapes for ``pmap``.

    Example:
      >>> import numpy as np
      >>> batches = ({"x": np.full((2, 3), i, np.float32)} for i in range(3))
      >>> [float(b["x"].sum()) for b in prefetch_to_device(batches, size=2)]
      [0.0, 6.0, 12.0]
    """
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"`size` must be an int >= 1, got {size!r}.")
    if put is not None and sharding is not None:
        raise ValueError("pass either `sharding` or `put` to prefetch_to_device, not both.")
    return _prefetch(iter(iterator), int(size), put or functools.partial(_put, sharding=sharding))


def _put(batch: Any, sharding: jax.sharding.Sharding | None) -> Any:
    if sharding is None:
        return jax.device_put(batch)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def _prefetch(source: Iterator[Any], size: int, put: Callable[[Any], Any]) -> Iterator[Any]:
    queue = collections.deque(put(batch) for batch in itertools.islice(source, size))
    while queue:
        yield queue.popleft()
        queue.extend(put(batch) for batch in itertools.islice(source, 1))
