"""Classification metrics as sums, so they aggregate exactly over batches and devices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn.training.losses import check_logits_labels


def classification_sums(logits: jax.Array, labels: jax.Array, num_classes: int, *,
                        mask: jax.Array | None = None, confusion: bool = False
                        ) -> dict[str, jax.Array]:
    """Per-batch sums: ``loss_sum``, ``correct``, ``correct_top5``, ``count`` (and ``confusion``).

    Examples with ``mask == 0`` (padding that completes the last batch) are not counted.
    ``confusion[i, j]`` counts examples of true class ``i`` predicted as ``j``. Labels outside
    ``[0, num_classes)`` raise when concrete (under ``jit`` they cannot be checked: they would
    count as wrong and be left out of the confusion matrix; the data pipeline checks them).

    Example:
        >>> import jax.numpy as jnp
        >>> s = classification_sums(jnp.eye(3), jnp.array([0, 1, 0]), 3, confusion=True)
        >>> int(s["correct"]), s["confusion"].tolist()
        (2, [[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) \
            or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    check_logits_labels(logits, labels)
    if logits.shape[-1] != num_classes:
        raise ValueError(f"`logits` has {logits.shape[-1]} classes (shape {logits.shape}) but "
                         f"`num_classes` is {num_classes}; they must be equal.")
    if mask is not None and jnp.shape(mask) != labels.shape:
        raise ValueError(f"`mask` must have the shape of `labels` {labels.shape} (1 keeps an "
                         f"example, 0 drops it), got {jnp.shape(mask)}.")
    keep = jnp.ones(labels.shape, bool) if mask is None else mask.astype(bool)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    pred = jnp.argmax(logits, -1)
    _, top = jax.lax.top_k(logits, min(5, logits.shape[-1]))
    sums = {
        "loss_sum": jnp.sum(jnp.where(keep, losses, 0.0)),
        "correct": jnp.sum(keep & (pred == labels)).astype(jnp.int32),
        "correct_top5": jnp.sum(keep & jnp.any(top == labels[:, None], -1)).astype(jnp.int32),
        "count": jnp.sum(keep).astype(jnp.int32),
    }
    if confusion:
        sums["confusion"] = jnp.zeros((num_classes, num_classes), jnp.int32).at[
            labels, pred].add(keep.astype(jnp.int32))
    return sums


def summarize(sums: dict[str, np.ndarray]) -> dict[str, float | list]:
    """Turn accumulated sums into means: loss, accuracy, top-5 accuracy, per-class accuracy.

    Example:
        >>> import numpy as np
        >>> summarize({"loss_sum": np.float32(3.0), "correct": 1, "correct_top5": 2, "count": 2})
        {'loss': 1.5, 'accuracy': 0.5, 'top5_accuracy': 1.0, 'count': 2}
    """
    missing = [k for k in ("loss_sum", "correct", "correct_top5", "count") if k not in sums]
    if missing:
        raise ValueError(f"`sums` must hold the entries of classification_sums; missing "
                         f"{missing}.")
    count = int(sums["count"])
    if count == 0:
        raise ValueError("no examples were evaluated (count is 0): `sums` must cover at least "
                         "one unmasked example; is the dataset empty?")
    out: dict[str, float | list] = {
        "loss": float(sums["loss_sum"]) / count,
        "accuracy": int(sums["correct"]) / count,
        "top5_accuracy": int(sums["correct_top5"]) / count,
        "count": count,
    }
    if "confusion" in sums:
        confusion = np.asarray(sums["confusion"])
        per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
        out["per_class_accuracy"] = [round(float(a), 6) for a in per_class]
        out["confusion_matrix"] = confusion.tolist()
    return out
