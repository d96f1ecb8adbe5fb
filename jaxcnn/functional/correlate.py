"""2-D correlation and convolution of images with ``scipy.signal.correlate2d`` semantics.

Deep-learning "convolution" layers compute a *cross-correlation*: the kernel slides over the
image without being flipped. Signal processing defines convolution with the kernel flipped
by 180 degrees. For an image ``x`` and a kernel ``k`` of size ``(kh, kw)``::

    correlation:  y[i, j] = sum_{u, v} x[i + u, j + v] * k[u, v]
    convolution:  y[i, j] = sum_{u, v} x[i - u, j - v] * k[u, v]
                          = sum_{u, v} x[i + u', j + v'] * k[kh - 1 - u', kw - 1 - v']

so ``convolve2d(x, k)`` equals ``correlate2d(x, flip(k))``, and the two agree whenever the
kernel is symmetric. Both functions here reproduce ``scipy.signal.correlate2d`` and
``scipy.signal.convolve2d`` exactly (modes, boundaries and corner cases, see
:func:`correlate2d`), built on ``jnp.pad`` plus one depthwise ``lax.conv_general_dilated``.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn.functional._checks import check_channels, check_float, check_rank

__all__ = ["convolve2d", "correlate2d"]

_MODES = ("full", "same", "valid")
# scipy's aliases are accepted too, mapped to the jnp.pad mode that extends the image.
_BOUNDARIES = {"fill": "constant", "pad": "constant", "wrap": "wrap", "circular": "wrap",
               "symm": "symmetric", "symmetric": "symmetric"}


def _check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")


def _validate(image: Any, kernel: Any, mode: str, boundary: str, fillvalue: Any
              ) -> tuple[jnp.ndarray, jnp.ndarray]:
    _check_choice(mode, "mode", _MODES)
    _check_choice(boundary, "boundary", tuple(_BOUNDARIES))
    if np.ndim(fillvalue) != 0:
        raise ValueError(f"`fillvalue` must be a scalar, got shape {np.shape(fillvalue)}.")
    check_rank(image, "image", (2, 3), "(H, W) or (H, W, C)")
    check_float(image, "image")
    image = jnp.asarray(image)
    kernel = jnp.asarray(kernel)
    check_rank(kernel, "kernel", (2, 3) if image.ndim == 3 else 2,
               "(kh, kw) or (kh, kw, C)" if image.ndim == 3 else "(kh, kw) for an (H, W) image")
    if not (jnp.issubdtype(kernel.dtype, jnp.floating)
            or jnp.issubdtype(kernel.dtype, jnp.integer)):
        raise TypeError(f"`kernel` must be a real (float or integer) array, got dtype "
                        f"{kernel.dtype}.")
    if kernel.size == 0:
        raise ValueError(f"`kernel` must not be empty, got shape {kernel.shape}.")
    if image.size == 0:
        raise ValueError(f"`image` must not be empty, got shape {image.shape}.")
    if kernel.ndim == 3:
        check_channels(image.shape[-1], kernel.shape[-1], "image", "`kernel.shape[-1]` (one "
                       "kernel per channel)")
    if mode == "valid":
        img_hw, k_hw = image.shape[:2], kernel.shape[:2]
        if not (all(i >= k for i, k in zip(img_hw, k_hw, strict=True))
                or all(k >= i for i, k in zip(img_hw, k_hw, strict=True))):
            raise ValueError(
                f"`mode`='valid' needs `image` {img_hw} to be at least as large as `kernel` "
                f"{k_hw} in every spatial dimension, or the other way round (as scipy)."
            )
    return image, kernel


def _pads(size: int, k: int, mode: str, flipped: bool) -> tuple[int, int]:
    """``(low, high)`` padding of one image dimension so a VALID correlation gives ``mode``."""
    if mode == "full":
        return k - 1, k - 1
    if mode == "same":
        # scipy's "same" for convolve2d is the centred slice of "full" (offset (k-1)//2), but
        # for correlate2d it starts at k//2: the two differ by one pixel for even kernels.
        lo = k // 2 if flipped else (k - 1) // 2
        return lo, k - 1 - lo
    # "valid" with a kernel larger than the image: scipy swaps the inputs, which gives the
    # positions where the image lies wholly inside the kernel, i.e. zero padding of k - size.
    extra = max(k - size, 0)
    return extra, extra


def _correlate(image: Any, kernel: Any, mode: str, boundary: str, fillvalue: Any,
               flipped: bool) -> jnp.ndarray:
    image, kernel = _validate(image, kernel, mode, boundary, fillvalue)
    squeeze = image.ndim == 2
    x = image[..., None] if squeeze else image
    channels = x.shape[-1]
    kernel = kernel.astype(x.dtype)
    if flipped:
        kernel = kernel[::-1, ::-1]
    if kernel.ndim == 2:
        kernel = jnp.broadcast_to(kernel[..., None], (*kernel.shape, channels))

    pads = [_pads(n, k, mode, flipped) for n, k in zip(x.shape[:2], kernel.shape[:2],
                                                       strict=True)]
    # In "valid" mode nothing outside the image is read, except the zeros of the swapped case.
    pad_mode = "constant" if mode == "valid" else _BOUNDARIES[boundary]
    extra = {"constant_values": jnp.asarray(fillvalue if mode != "valid" else 0, x.dtype)
             } if pad_mode == "constant" else {}
    x = jnp.pad(x, [*pads, (0, 0)], mode=pad_mode, **extra)

    # Depthwise: every channel is correlated with its own (possibly shared) 2-D kernel.
    out = lax.conv_general_dilated(
        x[None], kernel[:, :, None, :], window_strides=(1, 1), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
        precision=lax.Precision.HIGHEST,
    )[0]
    return out[..., 0] if squeeze else out


def correlate2d(image: Any, kernel: Any, mode: str = "full", boundary: str = "fill",
                fillvalue: Any = 0) -> jnp.ndarray:
    """2-D cross-correlation of an image with a kernel, exactly as ``scipy.signal.correlate2d``.

    ``y[i, j] = sum_{u, v} x[i + u, j + v] * k[u, v]`` (no kernel flip; this is what CNN
    "convolution" layers compute), with ``x`` extended beyond its borders by ``boundary``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` floating array (float32, bfloat16, ...). A
            multi-channel image is filtered channel by channel (no mixing across channels).
        kernel: ``(kh, kw)`` real array, shared by all channels, or ``(kh, kw, C)`` for one
            kernel per channel (only with an ``(H, W, C)`` image). It is cast to
            ``image.dtype``, so the output has the image's dtype.
        mode: ``"full"`` (default): every overlap, output ``(H + kh - 1, W + kw - 1)``;
            ``"same"``: output ``(H, W)``, the slice of ``"full"`` that starts at
            ``(kh // 2, kw // 2)``; ``"valid"``: output ``(H - kh + 1, W - kw + 1)``, only
            positions where no boundary value is read. As in scipy, ``"valid"`` with a kernel
            at least as large as the image in every dimension swaps the roles (output
            ``(kh - H + 1, kw - W + 1)``), and a kernel larger in one dimension only raises.
        boundary: how the image is extended: ``"fill"`` (default, alias ``"pad"``): with
            ``fillvalue``; ``"wrap"`` (alias ``"circular"``): periodically; ``"symm"`` (alias
            ``"symmetric"``): mirrored with the edge repeated (``d c b a | a b c d | d c b a``,
            ``scipy.ndimage``'s ``"reflect"``). Ignored in ``"valid"`` mode.
        fillvalue: scalar used by ``boundary="fill"`` (default 0).

    Returns:
        The correlation, ``(H', W')`` or ``(H', W', C)``, in ``image.dtype``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(16.0).reshape(4, 4)
        >>> k = jnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> correlate2d(x, k).shape, correlate2d(x, k, mode="valid").shape
        ((5, 5), (3, 3))
        >>> print(correlate2d(x, k, mode="valid")[0])    # 0*1 + 1*2 + 4*3 + 5*4
        [34. 44. 54.]
        >>> correlate2d(jnp.ones((8, 8, 3)), k, mode="same", boundary="symm").shape
        (8, 8, 3)
    """
    return _correlate(image, kernel, mode, boundary, fillvalue, flipped=False)


def convolve2d(image: Any, kernel: Any, mode: str = "full", boundary: str = "fill",
               fillvalue: Any = 0) -> jnp.ndarray:
    """True 2-D convolution (kernel flipped 180 degrees), exactly as ``scipy.signal.convolve2d``.

    ``y[i, j] = sum_{u, v} x[i - u, j - v] * k[u, v]``, i.e. the correlation of ``x`` with
    ``k[::-1, ::-1]``, with ``x`` extended beyond its borders by ``boundary``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` floating array; channels are filtered independently.
        kernel: ``(kh, kw)`` real array shared by all channels, or ``(kh, kw, C)`` (one kernel
            per channel, with an ``(H, W, C)`` image). Cast to ``image.dtype``.
        mode: ``"full"`` (default), ``"same"`` or ``"valid"``, as in :func:`correlate2d`,
            except that ``"same"`` is the slice of ``"full"`` that starts at
            ``((kh - 1) // 2, (kw - 1) // 2)`` (scipy's centring). Hence for even-sized kernels
            ``convolve2d(x, k, "same")`` and ``correlate2d(x, flip(k), "same")`` differ by a
            one-pixel shift; in ``"full"`` and ``"valid"`` they are always equal. As in scipy,
            ``"valid"`` convolution is commutative: with a kernel at least as large as the
            image, the roles are swapped.
        boundary: ``"fill"`` (alias ``"pad"``), ``"wrap"`` (alias ``"circular"``) or
            ``"symm"`` (alias ``"symmetric"``), as in :func:`correlate2d`.
        fillvalue: scalar used by ``boundary="fill"`` (default 0).

    Returns:
        The convolution, ``(H', W')`` or ``(H', W', C)``, in ``image.dtype``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(20.0).reshape(4, 5)
        >>> k = jnp.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> bool(jnp.allclose(convolve2d(x, k), correlate2d(x, jnp.flip(k))))
        True
        >>> bool(jnp.allclose(convolve2d(x, k), correlate2d(x, k)))   # k is not symmetric
        False
        >>> impulse = jnp.zeros((3, 3)).at[1, 1].set(1.0)
        >>> k2 = jnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> print(convolve2d(impulse, k2, mode="valid"))    # convolution copies the kernel...
        [[1. 2.]
         [3. 4.]]
        >>> print(correlate2d(impulse, k2, mode="valid"))   # ...correlation flips it
        [[4. 3.]
         [2. 1.]]
    """
    return _correlate(image, kernel, mode, boundary, fillvalue, flipped=True)
