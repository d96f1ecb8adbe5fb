"""Dropout (Srivastava et al. 2014) and spatial dropout (Tompson et al. 2015).

``rate`` is the probability of DROPPING a unit (as in Flax, Keras and PyTorch; stax's
``Dropout(rate)`` meant the keep probability, a known trap). Kept units are scaled by
``1 / (1 - rate)`` during training ("inverted dropout"), so evaluation is the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcnn.functional._checks import check_float


def _check_rate(rate: float) -> None:
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"`rate` is the drop probability and must be in [0, 1], got {rate!r}.")


def _drop(x: jax.Array, rate: float, key: jax.Array | None, train: bool,
          mask_shape: tuple[int, ...]) -> jax.Array:
    check_float(x, "x")
    _check_rate(rate)
    if not train or rate == 0.0:
        return x
    if rate == 1.0:
        return jnp.zeros_like(x)
    if key is None:
        raise ValueError("dropout with train=True and rate > 0 needs a PRNG `key`, got None; "
                         "pass e.g. `jax.random.key(0)` or call with train=False.")
    keep = jax.random.bernoulli(key, 1.0 - rate, mask_shape)
    return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


def dropout(x: jax.Array, rate: float, key: jax.Array | None, train: bool) -> jax.Array:
    """Inverted dropout: zero each element with probability ``rate``, scale the rest.

    Training: ``y = x * m / (1 - rate)`` with ``m ~ Bernoulli(1 - rate)`` per element, so
    ``E[y] = x``. Evaluation (``train=False``): ``y = x``.

    Args:
        x: floating array of any shape.
        rate: probability of dropping a unit, in ``[0, 1]``.
        key: PRNG key; may be ``None`` when ``train`` is False or ``rate`` is 0.
        train: apply dropout only when True.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> y = dropout(jnp.ones((2, 4)), 0.5, jax.random.key(0), train=True)
        >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
        >>> dropout(jnp.ones(3), 0.5, None, train=False)
        Array([1., 1., 1.], dtype=float32)
    """
    return _drop(x, rate, key, train, jnp.shape(x))


def spatial_dropout(x: jax.Array, rate: float, key: jax.Array | None, train: bool) -> jax.Array:
    """Spatial (channel) dropout: drop whole feature maps of each example.

    For NHWC ``x`` of shape ``(N, *spatial, C)`` one Bernoulli draw per ``(n, c)`` is broadcast
    over all spatial positions: ``y[n, ..., c] = x[n, ..., c] * m[n, c] / (1 - rate)``. Adjacent
    pixels of a feature map are strongly correlated, so element-wise dropout barely regularises
    convolutional layers; dropping whole channels does (Tompson et al. 2015).

    Args:
        x: floating array ``(N, *spatial, C)`` with at least one spatial axis.
        rate: probability of dropping a channel, in ``[0, 1]``.
        key: PRNG key; may be ``None`` when ``train`` is False or ``rate`` is 0.
        train: apply dropout only when True.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> y = spatial_dropout(jnp.ones((1, 4, 4, 8)), 0.5, jax.random.key(1), train=True)
        >>> bool(jnp.all((y == 0).all(axis=(1, 2)) | (y == 2).all(axis=(1, 2))))
        True
    """
    if jnp.ndim(x) < 3:
        raise ValueError(
            f"`x` must be (N, *spatial, C) with at least one spatial axis for spatial_dropout, "
            f"got shape {jnp.shape(x)}; use `dropout` for (N, features) inputs."
        )
    shape = jnp.shape(x)
    return _drop(x, rate, key, train, (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],))
