"""Classic hand-designed image filters (Gaussian, box, Sobel, Prewitt, Laplacian, Gabor).

Before CNNs *learned* their kernels, vision pipelines used fixed ones like these; the first
layer of a trained CNN ends up with similar edge and Gabor-like detectors. Every kernel is a
float32 ``(kh, kw)`` array laid out as ``k[row, col]`` (row = ``y`` pointing down,
col = ``x`` pointing right), meant to be applied as a *correlation* (no flip), like
``scipy.ndimage.correlate`` and like CNN layers: :func:`apply` does that with
:func:`jaxcnn.functional.correlate2d`.

Example:
    >>> import jax.numpy as jnp
    >>> img = jnp.zeros((4, 6)).at[:, 3:].set(1.0)      # dark left half, bright right half
    >>> print(apply(img, sobel(axis=1))[0])             # d/dx responds at the vertical edge
    [0. 0. 4. 4. 0. 0.]
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.functional._checks import check_rank, normalize_tuple
from jaxcnn.functional.correlate import correlate2d

__all__ = ["apply", "box", "gabor", "gaussian", "laplacian", "prewitt", "sobel"]


def _odd_size(size: int | tuple[int, int], name: str = "size") -> tuple[int, int]:
    hw = normalize_tuple(size, 2, name)
    if any(s % 2 == 0 for s in hw):
        raise ValueError(f"`{name}` must be odd (so the kernel has a centre pixel), got "
                         f"{size!r}.")
    return hw


def _positive(value: Any, name: str, shapes: tuple[tuple[int, ...], ...] = ((),)
              ) -> jnp.ndarray:
    """``value`` as float32, checked ``> 0`` when it is concrete (traced values pass through)."""
    if np.shape(value) not in shapes:
        raise ValueError(f"`{name}` must have shape {' or '.join(map(str, shapes))}, got "
                         f"{np.shape(value)}.")
    if not isinstance(value, jax.core.Tracer) and not np.all(np.asarray(value) > 0):
        raise ValueError(f"`{name}` must be > 0, got {value!r}.")
    return jnp.asarray(value, jnp.float32)


def _axis(axis: int) -> int:
    if axis not in (0, 1, -2, -1):
        raise ValueError(f"`axis` must be 0 (d/dy, rows) or 1 (d/dx, columns), got {axis!r}.")
    return axis % 2


def _centred(n: int) -> jnp.ndarray:
    return jnp.arange(n, dtype=jnp.float32) - (n - 1) / 2


def _derivative(axis: int, smooth: list[float]) -> jnp.ndarray:
    """Central difference along ``axis`` times ``smooth`` across it (a separable 3x3 kernel)."""
    diff, smooth = np.array([-1.0, 0.0, 1.0]), np.array(smooth)
    k = np.outer(diff, smooth) if _axis(axis) == 0 else np.outer(smooth, diff)
    return jnp.asarray(k, jnp.float32)


def gaussian(size: int | tuple[int, int], sigma: Any) -> jnp.ndarray:
    """Gaussian blur kernel, normalised to sum 1.

    ``g[y, x] = exp(-(y^2 / sigma_y^2 + x^2 / sigma_x^2) / 2) / Z`` with ``y, x`` measured from
    the centre pixel and ``Z`` the sum over the kernel (it matches
    ``scipy.ndimage.gaussian_filter`` with ``radius = size // 2``).

    Args:
        size: odd kernel size, an int or ``(kh, kw)``. ``~6 * sigma + 1`` keeps 99.7% of mass.
        sigma: standard deviation in pixels (> 0), a scalar or ``(sigma_y, sigma_x)``; may be
            traced (e.g. differentiated).

    Example:
        >>> g = gaussian(5, 1.0)
        >>> g.shape, g.dtype, round(float(g.sum()), 5)
        ((5, 5), dtype('float32'), 1.0)
        >>> [round(v, 3) for v in gaussian(3, 0.5)[1].tolist()]     # the middle row
        [0.084, 0.619, 0.084]
    """
    h, w = _odd_size(size)
    sy, sx = jnp.broadcast_to(_positive(sigma, "sigma", ((), (2,))), (2,))
    gy = jnp.exp(-0.5 * (_centred(h) / sy) ** 2)
    gx = jnp.exp(-0.5 * (_centred(w) / sx) ** 2)
    g = gy[:, None] * gx[None, :]
    return g / g.sum()


def box(size: int | tuple[int, int]) -> jnp.ndarray:
    """Box (mean) filter kernel: ``k[y, x] = 1 / (kh * kw)``.

    Args:
        size: positive kernel size, an int or ``(kh, kw)`` (even sizes are allowed; with
            ``mode="same"`` their anchor follows :func:`jaxcnn.functional.correlate2d`).

    Example:
        >>> print(box(2))
        [[0.25 0.25]
         [0.25 0.25]]
    """
    h, w = normalize_tuple(size, 2, "size")
    return jnp.full((h, w), 1.0 / (h * w), jnp.float32)


def sobel(axis: int) -> jnp.ndarray:
    """Sobel derivative kernel (central difference smoothed by ``[1, 2, 1]``), for correlation.

    ``axis=0``: ``d/dy`` = ``[-1, 0, 1]^T (x) [1, 2, 1]``, responds to *horizontal* edges;
    ``axis=1``: ``d/dx`` = ``[1, 2, 1]^T (x) [-1, 0, 1]``, responds to *vertical* edges.
    Applied with :func:`apply` (correlation, ``"symm"`` boundary) it equals
    ``scipy.ndimage.sobel(image, axis)`` (``mode="reflect"``); as a true convolution kernel
    it must be flipped, which negates it. Sobel, 1968.

    Args:
        axis: 0 (rows, ``y`` pointing down) or 1 (columns, ``x``); -2 and -1 also accepted.

    Example:
        >>> print(sobel(0))
        [[-1. -2. -1.]
         [ 0.  0.  0.]
         [ 1.  2.  1.]]
    """
    return _derivative(axis, [1.0, 2.0, 1.0])


def prewitt(axis: int) -> jnp.ndarray:
    """Prewitt derivative kernel (central difference smoothed by ``[1, 1, 1]``), for correlation.

    ``axis=0``: ``d/dy`` = ``[-1, 0, 1]^T (x) [1, 1, 1]`` (horizontal edges); ``axis=1``:
    ``d/dx`` = ``[1, 1, 1]^T (x) [-1, 0, 1]`` (vertical edges). Applied with :func:`apply` it
    equals ``scipy.ndimage.prewitt(image, axis)``. Prewitt, 1970.

    Args:
        axis: 0 (rows, ``y``) or 1 (columns, ``x``); -2 and -1 also accepted.

    Example:
        >>> print(prewitt(1))
        [[-1. 0. 1.]
         [-1. 0. 1.]
         [-1. 0. 1.]]
    """
    return _derivative(axis, [1.0, 1.0, 1.0])


def laplacian(diagonal: bool = False) -> jnp.ndarray:
    """Discrete Laplacian ``d^2/dy^2 + d^2/dx^2`` (symmetric, so correlation == convolution).

    4-neighbour ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (what ``scipy.ndimage.laplace``
    applies), or with ``diagonal=True`` the 8-neighbour ``[[1, 1, 1], [1, -8, 1], [1, 1, 1]]``.

    Args:
        diagonal: include the diagonal neighbours (default False).

    Example:
        >>> print(laplacian())
        [[ 0.  1.  0.]
         [ 1. -4.  1.]
         [ 0.  1.  0.]]
        >>> float(laplacian(diagonal=True).sum())
        0.0
    """
    if not isinstance(diagonal, bool | np.bool_):
        # Any non-empty string is truthy: laplacian("no") would silently be the 8-neighbour one.
        raise TypeError(f"`diagonal` must be a bool (include the diagonal neighbours), got "
                        f"{diagonal!r}.")
    k = np.ones((3, 3)) if diagonal else np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])
    k[1, 1] = -k.sum() + k[1, 1]
    return jnp.asarray(k, jnp.float32)


def gabor(size: int | tuple[int, int], sigma: Any, theta: Any, wavelength: Any,
          phase: Any = 0.0, gamma: Any = 1.0) -> jnp.ndarray:
    """Real Gabor kernel: a Gaussian envelope times a cosine carrier (not normalised).

    ``g[y, x] = exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * cos(2 pi x' / wavelength + phase)``
    with ``x' = x cos(theta) + y sin(theta)``, ``y' = -x sin(theta) + y cos(theta)``, ``x``
    (columns, right) and ``y`` (rows, down) measured from the centre pixel. ``theta=0``
    gives vertical stripes (a vertical-edge/bar detector). Daugman, 1985.

    Args:
        size: odd kernel size, an int or ``(kh, kw)``.
        sigma: standard deviation of the envelope in pixels (> 0).
        theta: orientation of the carrier's normal, radians (clockwise on screen, as ``y``
            points down).
        wavelength: carrier wavelength ``lambda`` in pixels (> 0).
        phase: carrier phase offset ``psi`` in radians (0: even/symmetric, pi/2: odd).
        gamma: spatial aspect ratio of the envelope (> 0; 1 = circular). All arguments but
            ``size`` may be traced (jit, grad).

    Example:
        >>> g = gabor(7, sigma=2.0, theta=0.0, wavelength=4.0)
        >>> g.shape, float(g[3, 3])
        ((7, 7), 1.0)
        >>> print(g[3, 1:6].round(2) + 0.0)      # cos(2 pi x / 4) * envelope along the row
        [-0.61  0.    1.    0.   -0.61]
    """
    h, w = _odd_size(size)
    sigma = _positive(sigma, "sigma")
    wavelength = _positive(wavelength, "wavelength")
    gamma = _positive(gamma, "gamma")
    y, x = _centred(h)[:, None], _centred(w)[None, :]
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    xr = x * cos + y * sin
    yr = -x * sin + y * cos
    envelope = jnp.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2))
    return (envelope * jnp.cos(2 * jnp.pi * xr / wavelength + phase)).astype(jnp.float32)


def apply(image: Any, kernel: Any, boundary: str = "symm", mode: str = "same") -> jnp.ndarray:
    """Filter an image, or a batch of images, with a 2-D kernel by correlation, per channel.

    ``y[i, j, c] = sum_{u, v} x[i + u - kh // 2, j + v - kw // 2, c] * k[u, v]`` (``"same"``
    mode, odd kernel), i.e. ``scipy.ndimage.correlate`` per channel, with the default
    ``"symm"`` boundary being ``scipy.ndimage``'s ``mode="reflect"``. Built on
    :func:`jaxcnn.functional.correlate2d` (vmapped over a batch).

    Args:
        image: ``(H, W)`` greyscale, ``(H, W, C)`` (RGB or any channels) or a batch
            ``(N, H, W, C)``; floating dtype, which the output keeps.
        kernel: ``(kh, kw)`` kernel applied to every channel, e.g. from this module, or
            ``(kh, kw, C)`` with one kernel per channel (not for ``(H, W)`` images).
        boundary: ``"symm"`` (default), ``"wrap"`` or ``"fill"`` (zeros); see
            :func:`jaxcnn.functional.correlate2d`.
        mode: ``"same"`` (default, output size = input size), ``"full"`` or ``"valid"``.

    Example:
        >>> import jax.numpy as jnp
        >>> rgb = jnp.ones((2, 16, 16, 3))
        >>> out = apply(rgb, gaussian(5, 1.0))
        >>> out.shape, round(float(out.mean()), 4)  # blurring a constant image changes nothing
        ((2, 16, 16, 3), 1.0)
    """
    check_rank(image, "image", (2, 3, 4), "(H, W), (H, W, C) or (N, H, W, C)")
    filt = partial(correlate2d, mode=mode, boundary=boundary)
    if np.ndim(image) == 4:
        return jax.vmap(filt, in_axes=(0, None))(image, kernel)
    return filt(image, kernel)
