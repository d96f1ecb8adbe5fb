"""Activation functions.

Where :mod:`jax.nn` already has an activation it is re-exported unchanged (same gradients,
same numerics); this module adds the ones it lacks: the perceptron's sign ``step``,
``rectify`` (absolute-value rectification, Jarrett et al. 2009) and ``maxout``
(Goodfellow et al. 2013).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcnn.functional._checks import check_float

relu = jax.nn.relu
leaky_relu = jax.nn.leaky_relu
elu = jax.nn.elu
sigmoid = jax.nn.sigmoid
tanh = jnp.tanh
softmax = jax.nn.softmax
log_softmax = jax.nn.log_softmax
gelu = jax.nn.gelu
swish = jax.nn.swish


@jax.custom_jvp
def step(x: jax.Array) -> jax.Array:
    """Perceptron sign activation: ``+1`` where ``x >= 0`` and ``-1`` elsewhere.

    ``step(z) = 1 if z >= 0 else -1`` (Rosenblatt's perceptron). Its derivative is zero almost
    everywhere, so gradient descent cannot train through it; the gradient is defined as 0 (the
    perceptron learning rule updates on the error, not on this derivative).

    Args:
        x: array of any shape, floating dtype.

    Returns:
        Array of ``x``'s shape and dtype with values in ``{-1, +1}``.

    Example:
        >>> import jax.numpy as jnp
        >>> step(jnp.array([-2.0, 0.0, 3.0]))
        Array([-1.,  1.,  1.], dtype=float32)
    """
    check_float(x, "x")
    return jnp.where(x >= 0, jnp.ones_like(x), -jnp.ones_like(x))


@step.defjvp
def _step_jvp(primals, tangents):
    (x,), _ = primals, tangents
    y = step(x)
    return y, jnp.zeros_like(y)


def rectify(x: jax.Array) -> jax.Array:
    """Absolute-value rectification ``|x|`` (Jarrett et al. 2009, "R_abs").

    Keeps the magnitude of a filter response whatever its polarity, so a dark-on-light edge and
    a light-on-dark edge give the same feature. Gradient ``sign(x)`` (0 at 0).

    Args:
        x: array of any shape.

    Example:
        >>> import jax.numpy as jnp
        >>> rectify(jnp.array([-2.0, 0.5]))
        Array([2. , 0.5], dtype=float32)
    """
    return jnp.abs(x)


def maxout(x: jax.Array, pieces: int, axis: int = -1) -> jax.Array:
    """Maxout (Goodfellow et al. 2013): the maximum over groups of ``pieces`` adjacent channels.

    ``y[..., j] = max_{k < pieces} x[..., j * pieces + k]``, so ``C`` channels become
    ``C // pieces``. Preceded by a linear or conv layer with ``C_out * pieces`` units, maxout
    learns a convex piecewise-linear activation; with ``pieces=2`` and one piece fixed at 0 it
    reduces to ReLU.

    Args:
        x: array whose ``axis`` (default: last, channels in NHWC) has size divisible by ``pieces``.
        pieces: number of linear pieces per output unit, ``>= 1``.
        axis: the channel axis.

    Returns:
        Array with ``x.shape[axis] // pieces`` entries along ``axis``.

    Example:
        >>> import jax.numpy as jnp
        >>> maxout(jnp.array([[1.0, 3.0, -1.0, -2.0]]), pieces=2)
        Array([[ 3., -1.]], dtype=float32)
    """
    if not isinstance(pieces, int) or pieces < 1:
        raise ValueError(f"`pieces` must be a positive int, got {pieces!r}.")
    ndim = jnp.ndim(x)
    if ndim == 0:
        raise ValueError("`x` must have at least one axis for maxout, got a scalar.")
    axis = axis % ndim
    channels = x.shape[axis]
    if channels % pieces:
        raise ValueError(
            f"maxout: `x` has {channels} channels on axis {axis} (shape {x.shape}), not divisible "
            f"by `pieces`={pieces}; give the preceding layer a multiple of {pieces} outputs."
        )
    grouped = x.reshape(x.shape[:axis] + (channels // pieces, pieces) + x.shape[axis + 1:])
    return jnp.max(grouped, axis=axis + 1)
