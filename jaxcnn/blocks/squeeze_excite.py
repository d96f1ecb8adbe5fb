"""Squeeze-and-excitation (Hu et al. 2018, "Squeeze-and-Excitation Networks", CVPR)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank

__all__ = ["SqueezeExcite"]

Array = jax.Array


class SqueezeExcite(nn.Module):
    """Channel attention: rescale each channel by a gate computed from global context.

    ``s = gate(W2 act(W1 mean_spatial(x) + b1) + b2)``, ``y[n, ..., c] = x[n, ..., c] * s[n, c]``
    with ``W1`` of shape ``(C, C // r)`` and ``W2`` of shape ``(C // r, C)``, so the block has
    ``2 * C * C / r + C / r + C`` parameters. The gates are sown as
    ``intermediates/gate`` (shape ``(N, C)``); read them with ``mutable=["intermediates"]``.

    Args:
        reduction: the reduction ratio ``r``; the hidden width is ``max(1, C // r)``. Default
            16 (the paper's choice).
        act: activation after the squeeze; default ``F.relu``.
        gate: gating function; default ``F.sigmoid`` (gates in (0, 1)).
        dtype: compute dtype of the two dense layers (None: promote like Flax).

    Input ``(N, *spatial, C)`` with 1-3 spatial dims; output of the same shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> se = SqueezeExcite(reduction=4)
        >>> x = jax.random.normal(jax.random.key(0), (2, 5, 5, 32))
        >>> variables = se.init(jax.random.key(1), x)
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'fc1': {'bias': (8,), 'kernel': (32, 8)}, 'fc2': {'bias': (32,), 'kernel': (8, 32)}}
        >>> y, state = se.apply(variables, x, mutable=["intermediates"])
        >>> y.shape, state["intermediates"]["gate"][0].shape
        ((2, 5, 5, 32), (2, 32))
    """

    reduction: int = 16
    act: Callable[[Array], Array] = F.relu
    gate: Callable[[Array], Array] = F.sigmoid
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        check_rank(x, "x", (3, 4, 5), "(N, *spatial, C) for SqueezeExcite")
        check_float(x, "x")
        if (isinstance(self.reduction, bool) or not isinstance(self.reduction, int)
                or self.reduction < 1):
            raise ValueError(f"`reduction` must be a positive int, got {self.reduction!r} "
                             f"(input shape {x.shape}).")
        channels = x.shape[-1]
        s = F.global_avg_pool(x)
        s = self.act(L.Dense(max(1, channels // self.reduction), dtype=self.dtype, name="fc1")(s))
        s = self.gate(L.Dense(channels, dtype=self.dtype, name="fc2")(s))
        self.sow("intermediates", "gate", s)
        return x * s.reshape(s.shape[0], *(1,) * (x.ndim - 2), channels).astype(x.dtype)
