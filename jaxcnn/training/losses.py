"""Classification losses: cross-entropy with label smoothing, L2 penalty, auxiliary heads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn.functional._checks import check_labels


def check_logits_labels(logits: jax.Array, labels: jax.Array) -> None:
    """``logits`` ``(N, K)``, ``labels`` ``(N,)`` integers in ``[0, K)`` (values when concrete).

    Example:
        >>> import numpy as np
        >>> check_logits_labels(np.zeros((2, 3)), np.array([0, 2]))
    """
    if np.ndim(logits) != 2:
        raise ValueError(f"`logits` must be (N, num_classes), got shape {np.shape(logits)}; "
                         f"flatten extra axes or pick the main head's output first.")
    if np.shape(labels) != np.shape(logits)[:1]:
        raise ValueError(f"`labels` must be (N,) = {np.shape(logits)[:1]} integer classes, got "
                         f"shape {np.shape(labels)} (one-hot labels: `labels.argmax(-1)`).")
    check_labels(labels, np.shape(logits)[1])


def _check_soft_labels(q: np.ndarray) -> None:
    """Concrete soft labels are distributions: non-negative rows that sum to 1."""
    sums = q.sum(-1)
    bad = np.flatnonzero((np.abs(sums - 1.0) > 1e-3) | (q < 0).any(-1))
    if bad.size:
        raise ValueError(f"soft `labels` must be non-negative rows summing to 1; row {bad[0]} sums "
                         f"to {sums[bad[0]]:.4g} (min {q[bad[0]].min():.4g}). Normalise them "
                         f"(`q / q.sum(-1, keepdims=True)`), or pass integer class indices.")


def cross_entropy(logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0
                  ) -> jax.Array:
    """Mean softmax cross-entropy over the batch, with optional label smoothing.

    ``loss = -sum_k q_k log softmax(z)_k`` with ``q = (1 - eps) * onehot(y) + eps / K``
    (Szegedy et al. 2016). Computed in float32 whatever the logits' dtype.

    Args:
        logits: ``(N, K)``.
        labels: ``(N,)`` integer class indices in ``[0, K)`` (the range is checked when the
            labels are concrete; under ``jit`` :func:`jaxcnn.data.check_batch` does it), or
            ``(N, K)`` float soft labels (rows summing to 1, e.g. from
            :func:`jaxcnn.augment.mixup`), used as ``q`` in place of ``onehot(y)``.
        label_smoothing: ``eps`` in ``[0, 1)``.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]))), 4)  # log 4
        1.3863
    """
    soft = np.ndim(labels) == 2 and jnp.issubdtype(jnp.result_type(labels), jnp.floating)
    if soft:
        if np.shape(labels) != np.shape(logits):
            raise ValueError(f"soft `labels` must have the shape of `logits` "
                             f"{np.shape(logits)}, got {np.shape(labels)}.")
        if not isinstance(labels, jax.core.Tracer):
            _check_soft_labels(np.asarray(labels, np.float64))
    else:
        check_logits_labels(logits, labels)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing}.")
    num_classes = logits.shape[-1]
    targets = labels.astype(jnp.float32) if soft else jax.nn.one_hot(labels, num_classes)
    targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets).mean()


def l2_penalty(params: Any, weight_decay: float) -> jax.Array:
    """``0.5 * weight_decay * sum ||W||^2`` over kernels (arrays with ndim > 1).

    Biases and normalization scales are not decayed, as in the ResNet and Flax ImageNet recipes.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(l2_penalty({"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, 0.1)), 6)
        0.2
    """
    if isinstance(weight_decay, int | float) and not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    leaves = [p for p in jax.tree_util.tree_leaves(params) if p.ndim > 1]
    return 0.5 * weight_decay * sum(jnp.sum(jnp.square(p.astype(jnp.float32))) for p in leaves)


def auxiliary_loss(outputs: jax.Array | Sequence[jax.Array], labels: jax.Array, *,
                   weights: Sequence[float] = (1.0, 0.3, 0.3), label_smoothing: float = 0.0
                   ) -> tuple[jax.Array, jax.Array]:
    """Weighted sum of cross-entropies of a main head and auxiliary heads (GoogLeNet).

    ``loss = sum_i w_i CE(z_i, y)``; Szegedy et al. 2015 weight the two auxiliary classifiers of
    GoogLeNet by 0.3 and the main one by 1.0. A single array is a model without auxiliary
    heads. Returns ``(total_loss, main_logits)``.

    Example:
        >>> import jax.numpy as jnp
        >>> z = jnp.zeros((2, 4)); y = jnp.array([0, 1])
        >>> total, main = auxiliary_loss((z, z, z), y)
        >>> round(float(total), 4)  # 1.6 * log 4
        2.2181
    """
    if not isinstance(outputs, tuple | list):
        return cross_entropy(outputs, labels, label_smoothing=label_smoothing), outputs
    if len(outputs) != len(weights):
        raise ValueError(f"model returned {len(outputs)} outputs but `weights` has "
                         f"{len(weights)} entries ({tuple(weights)}); give one weight per output "
                         f"(GoogLeNet with auxiliary heads: (1.0, 0.3, 0.3)).")
    total = sum(w * cross_entropy(z, labels, label_smoothing=label_smoothing)
                for w, z in zip(weights, outputs, strict=True))
    return total, outputs[0]
