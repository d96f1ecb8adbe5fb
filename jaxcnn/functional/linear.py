"""The fully connected (dense) layer as a pure function."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcnn.functional._checks import check_float, check_rank


def dense(x: jax.Array, w: jax.Array, b: jax.Array | None = None) -> jax.Array:
    """Fully connected layer ``y = x @ w + b`` over the last axis of ``x``.

    Args:
        x: ``(..., in_features)`` floating array.
        w: ``(in_features, out_features)`` weights (Flax's layout; PyTorch stores the transpose).
        b: optional ``(out_features,)`` bias.

    Returns:
        ``(..., out_features)`` array.

    Example:
        >>> import jax.numpy as jnp
        >>> dense(jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.arange(4.0))
        Array([[3., 4., 5., 6.],
               [3., 4., 5., 6.]], dtype=float32)
    """
    check_float(x, "x")
    check_rank(w, "w", 2, "(in_features, out_features)")
    if jnp.ndim(x) < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"dense: `x` has shape {jnp.shape(x)} but `w` has shape {w.shape}; x's last axis must "
            f"equal w.shape[0] (in_features). Flatten feature maps first, e.g. "
            f"`x.reshape(x.shape[0], -1)`."
        )
    y = jnp.matmul(x, w.astype(x.dtype))
    if b is not None:
        if jnp.shape(b) != (w.shape[1],):
            raise ValueError(f"dense: `b` must have shape ({w.shape[1]},), got {jnp.shape(b)}.")
        y = y + b.astype(x.dtype)
    return y
