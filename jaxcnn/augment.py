"""Data augmentation in JAX: pure, jit-compiled, per-example randomness via ``vmap``.

Every per-image function takes ONE image ``(H, W, C)`` with a floating dtype (float32 or
bfloat16; colour functions expect RGB in ``[0, 1]``, i.e. apply them before normalisation) and,
if it is random, a PRNG key first. A batch is augmented by splitting the key per example and
``vmap``-ing, which :func:`compose` does for you from a config list::

    augment = compose([("random_crop", {"padding": 4}), ("random_flip", {}),
                       ("cutout", {"size": 8})])
    images = augment(key, images)                  # (N, H, W, C), same key -> same output

Batch-level operations (:func:`mixup`) act on ``(images, labels)`` and may appear in the same
list; the pipeline then takes and returns labels too. Geometric resampling is bilinear
(``jax.scipy.ndimage.map_coordinates`` with ``order=1`` for rotation/zoom,
``jax.image.scale_and_translate`` with antialiasing for crop-and-resize). Resampling runs in
at least float32; every function returns the input dtype.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.ndimage import map_coordinates

from jaxcnn.functional._checks import check_channels, check_float, check_rank, normalize_tuple

__all__ = [
    "AUGMENTATIONS",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "center_crop",
    "color_jitter",
    "compose",
    "cutout",
    "flip_left_right",
    "flip_up_down",
    "hsv_to_rgb",
    "mixes_labels",
    "mixup",
    "random_crop",
    "random_flip",
    "random_resized_crop",
    "random_resized_crop_params",
    "random_rotate",
    "random_translate",
    "random_zoom",
    "resized_crop",
    "rgb_to_grayscale",
    "rgb_to_hsv",
    "rotate",
    "translate",
    "zoom",
]

# ITU-R 601-2 luma, the weights torchvision and PIL use for greyscale.
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
_PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)  # color_jitter ops, torchvision order


# ----------------------------------------------------------------------------- helpers


def _check_image(image: Any, name: str = "image") -> None:
    check_rank(image, name, 3, "(H, W, C) (one image; vmap over a batch)")
    check_float(image, name)


def _check_key(key: Any) -> None:
    """A typed key (``jax.random.key``) or a raw ``uint32[2]`` one (``jax.random.PRNGKey``).

    jax alone says ``invalid PRNG key data ... Got 0`` for a seed passed where a key belongs.
    """
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (jnp.issubdtype(dtype, jax.dtypes.prng_key)
                              or (dtype == jnp.uint32 and jnp.shape(key)[-1:] == (2,))):
        return
    raise TypeError(f"`key` must be a jax.random key, e.g. `jax.random.key(seed)` (split it per "
                    f"call), got {key!r}.")


def _compute_dtype(dtype: Any) -> Any:
    # bfloat16/float16 coordinates and interpolation weights are too coarse for 224-px images.
    return jnp.promote_types(dtype, jnp.float32)


def _check_int(value: Any, name: str) -> None:
    dtype = jnp.result_type(value)
    if not jnp.issubdtype(dtype, jnp.integer) or jnp.ndim(value) != 0:
        raise TypeError(f"`{name}` must be an integer scalar (pixels), got {value!r} with dtype "
                        f"{dtype} and shape {jnp.shape(value)}.")


def _check_range(value: Any, name: str, low: float | None = None, high: float | None = None
                 ) -> tuple[float, float]:
    """A validated ``(lo, hi)`` pair with ``low <= lo <= hi <= high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a (min, max) pair of numbers, got {value!r}.") from None
    if not lo <= hi or (low is not None and lo < low) or (high is not None and hi > high):
        bounds = f" within [{low}, {high}]" if low is not None or high is not None else ""
        raise ValueError(f"`{name}` must be a (min, max) pair with min <= max{bounds}, "
                         f"got {value!r}.")
    return lo, hi


def _jitter_range(value: Any, name: str, center: float, low: float, high: float,
                  clip_low: bool) -> tuple[float, float] | None:
    """torchvision ``ColorJitter`` ranges: ``v -> [center - v, center + v]`` or an explicit pair.

    Returns None for the identity range, so the op is skipped entirely.
    """
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"`{name}` must be non-negative, got {value!r}.")
        lo, hi = center - value, center + value
        if clip_low:
            lo = max(lo, low)
        value = (lo, hi)
    lo, hi = _check_range(value, name, low, high)
    return None if lo == hi == center else (lo, hi)


# Each random draw site compiles its own counter-based hash (seconds under vmap on CPU), so
# every function makes as few draws as possible: one vector instead of several scalars.


def _uniform(key: jax.Array, lo: float, hi: float, shape: tuple[int, ...] = ()) -> jax.Array:
    return jax.random.uniform(key, shape, jnp.float32, lo, hi)


def _randint_pair(key: jax.Array, lo: Sequence[int], hi: Sequence[int]) -> jax.Array:
    """Two independent integers ``lo[d] <= v[d] <= hi[d]`` (inclusive) from one draw."""
    return jax.random.randint(key, (2,), jnp.asarray(lo), jnp.asarray(hi) + 1)


# The resampling and colour-space kernels are jitted so eager calls compile once instead of
# op by op; inside a caller's jit they simply inline.
@functools.partial(jax.jit, static_argnames="fill")  # map_coordinates needs a static cval
def _warp(image: jax.Array, src_y: jax.Array, src_x: jax.Array, fill: float) -> jax.Array:
    """Bilinear samples of ``image`` at float grids ``(src_y, src_x)``; outside reads ``fill``."""
    ct = _compute_dtype(image.dtype)
    sample = lambda ch: map_coordinates(ch, (src_y, src_x), order=1, mode="constant", cval=fill)
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(image.astype(ct)).astype(image.dtype)


def _centred_linear(image: jax.Array, a: jax.Array, b: jax.Array, c: jax.Array, d: jax.Array,
                    fill: float) -> jax.Array:
    """Output pixel at offset ``(y, x)`` from the centre reads the source at offset
    ``(a y + b x, c y + d x)`` (the inverse map, so every output pixel gets one sample)."""
    h, w = image.shape[:2]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y = jnp.arange(h, dtype=jnp.float32)[:, None] - cy
    x = jnp.arange(w, dtype=jnp.float32)[None, :] - cx
    return _warp(image, cy + a * y + b * x, cx + c * y + d * x, fill)


def _blend(image: jax.Array, other: jax.Array, factor: Any) -> jax.Array:
    """``clip(factor * image + (1 - factor) * other, 0, 1)``, torchvision's ``_blend``."""
    ct = _compute_dtype(image.dtype)
    factor = jnp.asarray(factor, ct)
    out = factor * image.astype(ct) + (1 - factor) * other.astype(ct)
    return jnp.clip(out, 0, 1).astype(image.dtype)


def _gray(image: jax.Array) -> jax.Array:
    """Greyscale ``(..., 1)`` of an RGB or already-greyscale image, in the compute dtype."""
    if image.shape[-1] == 1:
        return image.astype(_compute_dtype(image.dtype))
    return rgb_to_grayscale(image).astype(_compute_dtype(image.dtype))


def _check_color(image: Any, name: str = "image") -> None:
    _check_image(image, name)
    if image.shape[-1] != 1:
        check_channels(image.shape[-1], 3, name, "the RGB channel count (or 1 for greyscale)")


def _check_pixels(image: Any, space: str) -> None:
    """Float ``(..., 3)`` pixels of a colour space."""
    check_float(image, "image")
    channels = jnp.shape(image)[-1] if jnp.ndim(image) else 0
    check_channels(channels, 3, "image", f"the {space} channel count")


def _check_factor(factor: Any, name: str) -> None:
    if isinstance(factor, int | float) and factor < 0:
        raise ValueError(f"`{name}` must be non-negative, got {factor!r}.")


# ----------------------------------------------------------------------------- flips


def flip_left_right(image: jax.Array) -> jax.Array:
    """Mirror an image horizontally: ``out[i, j] = image[i, W - 1 - j]``.

    Args:
        image: ``(H, W, C)`` float image.

    Example:
        >>> import jax.numpy as jnp
        >>> flip_left_right(jnp.arange(3.0).reshape(1, 3, 1))[..., 0]
        Array([[2., 1., 0.]], dtype=float32)
    """
    _check_image(image)
    return image[:, ::-1]


def flip_up_down(image: jax.Array) -> jax.Array:
    """Mirror an image vertically: ``out[i, j] = image[H - 1 - i, j]``.

    Args:
        image: ``(H, W, C)`` float image.

    Example:
        >>> import jax.numpy as jnp
        >>> flip_up_down(jnp.arange(3.0).reshape(3, 1, 1))[:, 0, 0]
        Array([2., 1., 0.], dtype=float32)
    """
    _check_image(image)
    return image[::-1]


def random_flip(key: jax.Array, image: jax.Array, horizontal: bool = True,
                vertical: bool = False, p: float = 0.5) -> jax.Array:
    """Flip left-right and/or up-down, each independently with probability ``p``.

    ``out = flip_lr(image)`` if ``u1 < p`` (when ``horizontal``), then ``flip_ud`` if ``u2 < p``
    (when ``vertical``), with ``u1, u2 ~ U[0, 1)`` from ``key``.

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        horizontal: allow left-right flips (the standard CIFAR/ImageNet augmentation).
        vertical: allow up-down flips (for data without a natural "up", e.g. aerial images).
        p: probability of each enabled flip, in ``[0, 1]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> random_flip(jax.random.key(0), jnp.ones((4, 4, 3))).shape
        (4, 4, 3)
    """
    _check_image(image)
    _check_key(key)
    if isinstance(p, int | float) and not 0.0 <= p <= 1.0:
        raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}.")
    flip_lr, flip_ud = jax.random.bernoulli(key, p, (2,))
    if horizontal:
        image = jnp.where(flip_lr, image[:, ::-1], image)
    if vertical:
        image = jnp.where(flip_ud, image[::-1], image)
    return image


# ----------------------------------------------------------------------------- crops/shifts


def random_crop(key: jax.Array, image: jax.Array, size: int | Sequence[int] | None = None,
                padding: int | Sequence[int] = 4, fill: float = 0.0,
                padding_mode: str = "constant") -> jax.Array:
    """Pad, then crop a window of ``size`` at a uniformly random position.

    ``out = pad(image)[top:top + h, left:left + w]`` with ``top ~ U{0, ..., H + 2 P_h - h}`` and
    ``left ~ U{0, ..., W + 2 P_w - w}``; the CIFAR recipe is ``padding=4`` with ``size = (H, W)``
    (He et al. 2016, "Deep Residual Learning for Image Recognition", sec. 4.2).

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        size: output ``(h, w)`` or one int for both; default ``(H, W)``. Must fit the padded image.
        padding: pixels added on each side, an int or ``(P_h, P_w)``; ``>= 0``.
        fill: value of the padding for ``padding_mode="constant"``.
        padding_mode: one of ``"constant"``, ``"reflect"``, ``"symmetric"``, ``"edge"``,
            ``"wrap"`` (``jnp.pad`` modes).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> random_crop(jax.random.key(0), jnp.ones((32, 32, 3)), padding=4).shape
        (32, 32, 3)
        >>> random_crop(jax.random.key(0), jnp.ones((32, 32, 3)), size=24, padding=0).shape
        (24, 24, 3)
    """
    _check_image(image)
    _check_key(key)
    h, w, c = image.shape
    pad_h, pad_w = normalize_tuple(padding, 2, "padding", minimum=0)
    out_h, out_w = (h, w) if size is None else normalize_tuple(size, 2, "size")
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"`padding_mode` must be one of {_PAD_MODES}, got {padding_mode!r}.")
    full_h, full_w = h + 2 * pad_h, w + 2 * pad_w
    if out_h > full_h or out_w > full_w:
        raise ValueError(
            f"crop `size` {(out_h, out_w)} is larger than the padded image: image {(h, w)} with "
            f"`padding` {(pad_h, pad_w)} gives {(full_h, full_w)}; use a smaller size or more "
            f"padding."
        )
    pads = ((pad_h, pad_h), (pad_w, pad_w), (0, 0))
    constant = padding_mode == "constant"
    extra = {"constant_values": jnp.asarray(fill, image.dtype)} if constant else {}
    padded = jnp.pad(image, pads, mode=padding_mode, **extra)
    top, left = _randint_pair(key, (0, 0), (full_h - out_h, full_w - out_w))
    return lax.dynamic_slice(padded, (top, left, 0), (out_h, out_w, c))


def translate(image: jax.Array, dy: int | jax.Array, dx: int | jax.Array,
              fill: float = 0.0) -> jax.Array:
    """Shift an image by whole pixels, filling the uncovered border.

    ``out[i, j] = image[i - dy, j - dx]`` where that is inside the image, else ``fill``: positive
    ``dy`` moves the content down, positive ``dx`` to the right. ``dy``/``dx`` may be traced.

    Args:
        image: ``(H, W, C)`` float image.
        dy: vertical shift in pixels (integer, Python or 0-d integer array).
        dx: horizontal shift in pixels (integer, Python or 0-d integer array).
        fill: value of the uncovered pixels.

    Example:
        >>> import jax.numpy as jnp
        >>> translate(jnp.arange(1.0, 5.0).reshape(1, 4, 1), 0, 1)[..., 0]
        Array([[0., 1., 2., 3.]], dtype=float32)
    """
    _check_image(image)
    _check_int(dy, "dy")
    _check_int(dx, "dx")
    h, w = image.shape[:2]
    src_rows = jnp.arange(h) - dy
    src_cols = jnp.arange(w) - dx
    inside = (((src_rows >= 0) & (src_rows < h))[:, None, None]
              & ((src_cols >= 0) & (src_cols < w))[None, :, None])
    # roll wraps around; the mask then replaces every wrapped pixel by the fill.
    shifted = jnp.roll(image, (dy, dx), axis=(0, 1))
    return jnp.where(inside, shifted, jnp.asarray(fill, image.dtype))


def random_translate(key: jax.Array, image: jax.Array, max_shift: int | Sequence[int],
                     fill: float = 0.0) -> jax.Array:
    """Translate by a uniformly random whole-pixel offset.

    ``out = translate(image, dy, dx, fill)`` with ``dy ~ U{-m_y, ..., m_y}``,
    ``dx ~ U{-m_x, ..., m_x}``.

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        max_shift: largest shift in pixels, an int or ``(m_y, m_x)``; ``>= 0``.
        fill: value of the uncovered pixels.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> random_translate(jax.random.key(0), jnp.ones((8, 8, 1)), 2).shape
        (8, 8, 1)
    """
    _check_image(image)
    _check_key(key)
    max_y, max_x = normalize_tuple(max_shift, 2, "max_shift", minimum=0)
    dy, dx = _randint_pair(key, (-max_y, -max_x), (max_y, max_x))
    return translate(image, dy, dx, fill)


# ----------------------------------------------------------------------------- rotate/zoom


def rotate(image: jax.Array, angle_degrees: float | jax.Array, fill: float = 0.0) -> jax.Array:
    """Rotate about the image centre, counter-clockwise as displayed (row 0 at the top).

    With ``(y, x)`` the offsets of an output pixel from the centre ``((H-1)/2, (W-1)/2)`` and
    ``t`` the angle, the output reads the source (bilinearly) at
    ``(cos t * y + sin t * x, -sin t * y + cos t * x)`` from the centre; samples outside the
    image read ``fill``. ``angle_degrees=90`` on a square image equals ``jnp.rot90(image)``.

    Args:
        image: ``(H, W, C)`` float image.
        angle_degrees: rotation angle in degrees (may be traced); positive is counter-clockwise.
        fill: value of pixels that come from outside the image (a Python number: static).

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[..., None]
        >>> rotate(x, 90.0)[..., 0].round(4)
        Array([[2., 4.],
               [1., 3.]], dtype=float32)
    """
    _check_image(image)
    t = jnp.deg2rad(jnp.asarray(angle_degrees, jnp.float32))
    cos, sin = jnp.cos(t), jnp.sin(t)
    return _centred_linear(image, cos, sin, -sin, cos, fill)


def random_rotate(key: jax.Array, image: jax.Array,
                  degrees: float | Sequence[float] = 15.0, fill: float = 0.0) -> jax.Array:
    """Rotate by a uniformly random angle: ``rotate(image, t, fill)``, ``t ~ U[lo, hi]`` degrees.

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        degrees: ``d >= 0`` for ``[-d, d]`` or an explicit ``(lo, hi)`` pair
            (torchvision ``RandomRotation`` convention).
        fill: value of pixels that come from outside the image (a Python number: static).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> random_rotate(jax.random.key(0), jnp.ones((8, 8, 3)), degrees=30).shape
        (8, 8, 3)
    """
    _check_image(image)
    _check_key(key)
    lo, hi = (-degrees, degrees) if isinstance(degrees, int | float) else degrees
    lo, hi = _check_range((lo, hi), "degrees")
    return rotate(image, _uniform(key, lo, hi), fill)


def zoom(image: jax.Array, scale: float | jax.Array, fill: float = 0.0) -> jax.Array:
    """Scale the content about the image centre, keeping the output size.

    The output pixel at offset ``(y, x)`` from the centre reads the source (bilinearly) at
    ``(y / s, x / s)``: ``s > 1`` zooms in (magnifies, cropping the border), ``s < 1`` zooms out
    (the uncovered border reads ``fill``). No antialiasing: for strong zoom-out prefer
    :func:`resized_crop`.

    Args:
        image: ``(H, W, C)`` float image.
        scale: magnification ``s > 0`` (may be traced).
        fill: value of pixels that come from outside the image (a Python number: static).

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(16.0).reshape(4, 4, 1)
        >>> bool(jnp.allclose(zoom(x, 1.0), x))
        True
    """
    _check_image(image)
    if isinstance(scale, int | float) and scale <= 0:
        raise ValueError(f"`scale` must be > 0, got {scale!r}.")
    inv = 1.0 / jnp.asarray(scale, jnp.float32)
    return _centred_linear(image, inv, 0.0, 0.0, inv, fill)


def random_zoom(key: jax.Array, image: jax.Array,
                scale_range: Sequence[float] = (0.9, 1.1), fill: float = 0.0) -> jax.Array:
    """Zoom by a uniformly random factor: ``zoom(image, s, fill)``, ``s ~ U[lo, hi]``.

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        scale_range: ``(lo, hi)`` with ``0 < lo <= hi``; ``> 1`` magnifies.
        fill: value of pixels that come from outside the image (a Python number: static).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> random_zoom(jax.random.key(0), jnp.ones((8, 8, 3)), (0.8, 1.2)).shape
        (8, 8, 3)
    """
    _check_image(image)
    _check_key(key)
    lo, hi = _check_range(scale_range, "scale_range", low=0.0)
    if lo <= 0:
        raise ValueError(f"`scale_range` must be positive, got {scale_range!r}.")
    return zoom(image, _uniform(key, lo, hi), fill)


# ----------------------------------------------------------------------------- cutout


def cutout(key: jax.Array, image: jax.Array, size: int | Sequence[int],
           fill: float = 0.0) -> jax.Array:
    """Fill a ``size`` square at a uniformly random centre (DeVries & Taylor 2017).

    ``cy ~ U{0, ..., H-1}``, ``cx ~ U{0, ..., W-1}``; pixels with
    ``cy - h//2 <= i < cy - h//2 + h`` and ``cx - w//2 <= j < cx - w//2 + w`` become ``fill``.
    The centre may lie near the border, so the patch can be partly outside the image, as in
    the paper ("Improved Regularization of Convolutional Neural Networks with Cutout").

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        size: patch side, an int or ``(h, w)``; ``1 <= h <= H``, ``1 <= w <= W``
            (the paper uses 16 for CIFAR-10, 8 for CIFAR-100).
        fill: value written into the patch, on the images' scale: 0 is black for ``[0, 1]``
            pixels (what the training step augments), the mean for normalised images.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> out = cutout(jax.random.key(0), jnp.ones((32, 32, 3)), size=8)
        >>> out.shape, 0 < int((out == 0).sum()) <= 8 * 8 * 3
        ((32, 32, 3), True)
    """
    _check_image(image)
    _check_key(key)
    h, w = image.shape[:2]
    size_h, size_w = normalize_tuple(size, 2, "size")
    if size_h > h or size_w > w:
        raise ValueError(f"cutout `size` {(size_h, size_w)} is larger than the image {(h, w)}; "
                         f"use a size of at most {(h, w)}.")
    cy, cx = _randint_pair(key, (0, 0), (h - 1, w - 1))
    top, left = cy - size_h // 2, cx - size_w // 2
    rows, cols = jnp.arange(h), jnp.arange(w)
    inside = (((rows >= top) & (rows < top + size_h))[:, None, None]
              & ((cols >= left) & (cols < left + size_w))[None, :, None])
    return jnp.where(inside, jnp.asarray(fill, image.dtype), image)


# ----------------------------------------------------------------------------- mixup


def mixup(key: jax.Array, images: jax.Array, labels: jax.Array, alpha: float = 0.2,
          per_example: bool = False) -> tuple[jax.Array, jax.Array]:
    """Mix a batch with a shuffled copy of itself (Zhang et al. 2018, "mixup").

    ``x' = lam * x + (1 - lam) * x[perm]`` and ``y' = lam * y + (1 - lam) * y[perm]`` with the
    SAME ``lam ~ Beta(alpha, alpha)`` and permutation for images and labels. As in the paper's
    reference code there is one ``lam`` for the whole batch; ``per_example=True`` draws one per
    example instead (lower-variance gradients, same expected mixing).

    It mixes the batch it is given: inside a ``pmap`` train step that is one device's slice,
    so examples are paired only within a device (as in most data-parallel implementations).

    Args:
        key: PRNG key.
        images: ``(N, ...)`` float batch (e.g. ``(N, H, W, C)``).
        labels: ``(N, K)`` float one-hot or soft labels (``jax.nn.one_hot(y, K)``).
        alpha: Beta concentration, ``> 0``; 0.2 for ImageNet, 1.0 for CIFAR in the paper.
        per_example: one ``lam`` per example instead of one per batch.

    Returns:
        ``(mixed_images, mixed_labels)`` with the input shapes and dtypes.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x, y = jnp.ones((4, 8, 8, 3)), jax.nn.one_hot(jnp.arange(4), 10)
        >>> xm, ym = mixup(jax.random.key(0), x, y, alpha=1.0)
        >>> xm.shape, ym.shape, bool(jnp.allclose(ym.sum(-1), 1.0))
        ((4, 8, 8, 3), (4, 10), True)
    """
    check_rank(images, "images", (2, 3, 4, 5), "(N, ...) e.g. (N, H, W, C)")
    check_float(images, "images")
    _check_key(key)
    check_rank(labels, "labels", 2, "(N, K) one-hot or soft labels")
    if not jnp.issubdtype(labels.dtype, jnp.floating):
        raise TypeError(f"`labels` must be float one-hot/soft labels of shape (N, K), got dtype "
                        f"{labels.dtype}; use `jax.nn.one_hot(labels, num_classes)`.")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"`images` and `labels` must have the same batch size, got "
                         f"images {images.shape} and labels {labels.shape}.")
    if isinstance(alpha, int | float) and not alpha > 0:
        raise ValueError(f"`alpha` must be > 0, got {alpha!r}.")
    n = images.shape[0]
    k_lam, k_perm = jax.random.split(key)
    # Beta(a, a) = G1 / (G1 + G2) = sigmoid(log G1 - log G2) for G ~ Gamma(a): one loggamma
    # draw (jax.random.beta makes two, each a costly-to-compile rejection loop), and log space
    # keeps small alphas from underflowing to 0 / 0.
    log_g = jax.random.loggamma(k_lam, alpha, (2, n) if per_example else (2,), jnp.float32)
    lam = jax.nn.sigmoid(log_g[0] - log_g[1])
    perm = jax.random.permutation(k_perm, n)

    def mix(x: jax.Array) -> jax.Array:
        ct = _compute_dtype(x.dtype)
        w = lam.reshape(lam.shape + (1,) * (x.ndim - 1)) if per_example else lam
        w = w.astype(ct)
        return (w * x.astype(ct) + (1 - w) * x[perm].astype(ct)).astype(x.dtype)

    return mix(images), mix(labels)


# ----------------------------------------------------------------------------- colour


def rgb_to_grayscale(image: jax.Array) -> jax.Array:
    """Luma of RGB pixels: ``gray = 0.2989 r + 0.587 g + 0.114 b`` (ITU-R 601-2, as torchvision).

    Args:
        image: ``(..., 3)`` float RGB.

    Returns:
        ``(..., 1)`` greyscale in the input dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> gray = rgb_to_grayscale(jnp.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
        >>> gray.shape, [round(v, 4) for v in gray[:, 0].tolist()]
        ((2, 1), [0.9999, 0.2989])
    """
    _check_pixels(image, "RGB")
    ct = _compute_dtype(image.dtype)
    # A weighted sum, not a matmul: accelerators may run float32 matmuls in reduced precision.
    gray = jnp.sum(image.astype(ct) * jnp.asarray(_GRAY_WEIGHTS, ct), axis=-1, keepdims=True)
    return gray.astype(image.dtype)


def rgb_to_hsv(image: jax.Array) -> jax.Array:
    """Convert RGB in ``[0, 1]`` to HSV, all three in ``[0, 1]`` (hue as a fraction of a turn).

    ``v = max(r, g, b)``, ``s = (v - min) / v``, and the hue is the hexcone angle
    ``h = (60 deg * {(g - b)/c, 2 + (b - r)/c, 4 + (r - g)/c}) mod 360 deg / 360 deg`` for the
    channel that is the maximum, with ``c = v - min`` (``h = s = 0`` for greys), as Python's
    ``colorsys`` and torchvision.

    Args:
        image: ``(..., 3)`` float RGB.

    Example:
        >>> import jax.numpy as jnp
        >>> rgb_to_hsv(jnp.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5]])).round(4)
        Array([[0.3333, 1.    , 1.    ],
               [0.    , 0.    , 0.5   ]], dtype=float32)
    """
    _check_pixels(image, "RGB")
    return _rgb_to_hsv(image)


@jax.jit
def _rgb_to_hsv(image: jax.Array) -> jax.Array:
    ct = _compute_dtype(image.dtype)
    r, g, b = jnp.moveaxis(image.astype(ct), -1, 0)
    maxc = jnp.maximum(jnp.maximum(r, g), b)
    minc = jnp.minimum(jnp.minimum(r, g), b)
    chroma = maxc - minc
    grey = chroma == 0
    # Double `where`: keeps gradients finite for greys (0/0 in the untaken branch).
    s = jnp.where(grey, 0.0, chroma / jnp.where(grey, 1.0, maxc))
    safe = jnp.where(grey, 1.0, chroma)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = jnp.where(maxc == r, bc - gc, jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = jnp.where(grey, 0.0, jnp.mod(h / 6.0, 1.0))
    return jnp.stack([h, s, maxc], axis=-1).astype(image.dtype)


def hsv_to_rgb(image: jax.Array) -> jax.Array:
    """Convert HSV (all in ``[0, 1]``) back to RGB; the inverse of :func:`rgb_to_hsv`.

    With ``i = floor(6h) mod 6``, ``f = 6h - floor(6h)``, ``p = v(1 - s)``, ``q = v(1 - sf)``,
    ``t = v(1 - s(1 - f))``, ``(r, g, b)`` is ``(v,t,p), (q,v,p), (p,v,t), (p,q,v), (t,p,v),
    (v,p,q)`` for ``i = 0..5`` (hexcone model, as ``colorsys``).

    Args:
        image: ``(..., 3)`` float HSV.

    Example:
        >>> import jax.numpy as jnp
        >>> hsv_to_rgb(jnp.array([[1 / 3, 1.0, 1.0]])).round(4)
        Array([[0., 1., 0.]], dtype=float32)
    """
    _check_pixels(image, "HSV")
    return _hsv_to_rgb(image)


@jax.jit
def _hsv_to_rgb(image: jax.Array) -> jax.Array:
    ct = _compute_dtype(image.dtype)
    h, s, v = jnp.moveaxis(image.astype(ct), -1, 0)
    h6 = jnp.mod(h, 1.0) * 6.0
    sector = jnp.floor(h6)
    f = h6 - sector
    i = sector.astype(jnp.int32) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    cases = [i == k for k in range(6)]
    r = jnp.select(cases, [v, q, p, p, t, v])
    g = jnp.select(cases, [t, v, v, q, p, p])
    b = jnp.select(cases, [p, p, t, v, v, q])
    return jnp.stack([r, g, b], axis=-1).astype(image.dtype)


def adjust_brightness(image: jax.Array, factor: float | jax.Array) -> jax.Array:
    """Scale brightness: ``clip(factor * image, 0, 1)`` (torchvision ``adjust_brightness``).

    Args:
        image: ``(H, W, C)`` float image in ``[0, 1]``.
        factor: ``>= 0``; 0 gives black, 1 the original, 2 doubles the brightness.

    Example:
        >>> import jax.numpy as jnp
        >>> adjust_brightness(jnp.full((1, 2, 3), 0.4), 1.5)[0, 0]
        Array([0.6, 0.6, 0.6], dtype=float32)
    """
    _check_image(image)
    _check_factor(factor, "factor")
    return _blend(image, jnp.zeros_like(image), factor)


def adjust_contrast(image: jax.Array, factor: float | jax.Array) -> jax.Array:
    """Scale contrast about the mean grey: ``clip(f * image + (1 - f) * mean(gray(image)), 0, 1)``.

    The mean is over all pixels of the greyscale image (torchvision ``adjust_contrast``).

    Args:
        image: ``(H, W, 3)`` RGB or ``(H, W, 1)`` greyscale float image in ``[0, 1]``.
        factor: ``>= 0``; 0 gives a uniform grey image, 1 the original.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([[0.2, 0.6]])[..., None]
        >>> adjust_contrast(x, 0.5)[..., 0]
        Array([[0.3, 0.5]], dtype=float32)
    """
    _check_color(image)
    _check_factor(factor, "factor")
    return _blend(image, jnp.mean(_gray(image)), factor)


def adjust_saturation(image: jax.Array, factor: float | jax.Array) -> jax.Array:
    """Scale saturation: ``clip(f * image + (1 - f) * gray(image), 0, 1)``.

    torchvision ``adjust_saturation``; ``factor=0`` gives the greyscale image in every channel.

    Args:
        image: ``(H, W, 3)`` RGB float image in ``[0, 1]`` (greyscale ``(H, W, 1)`` is returned
            unchanged up to clipping).
        factor: ``>= 0``; 0 gives greyscale, 1 the original, 2 doubles the saturation.

    Example:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> print(np.round(np.asarray(adjust_saturation(jnp.array([[[1.0, 0.0, 0.0]]]), 0.0)), 4))
        [[[0.2989 0.2989 0.2989]]]
    """
    _check_color(image)
    _check_factor(factor, "factor")
    return _blend(image, _gray(image), factor)


def adjust_hue(image: jax.Array, delta: float | jax.Array) -> jax.Array:
    """Rotate the hue: ``hsv_to_rgb((h + delta) mod 1, s, v)`` (torchvision ``adjust_hue``).

    Args:
        image: ``(H, W, 3)`` RGB float image in ``[0, 1]`` (greyscale ``(H, W, 1)`` has no hue
            and is returned unchanged).
        delta: hue shift as a fraction of a full turn, in ``[-0.5, 0.5]``; 0 is the identity,
            ``1/3`` maps red to green.

    Example:
        >>> import jax.numpy as jnp
        >>> adjust_hue(jnp.array([[[1.0, 0.0, 0.0]]]), 1 / 3).round(4)
        Array([[[0., 1., 0.]]], dtype=float32)
    """
    _check_color(image)
    if isinstance(delta, int | float) and not -0.5 <= delta <= 0.5:
        raise ValueError(f"`delta` (hue shift) must be in [-0.5, 0.5], got {delta!r}.")
    if image.shape[-1] == 1:
        return image
    hsv = rgb_to_hsv(image.astype(_compute_dtype(image.dtype)))
    hsv = hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + delta, 1.0))
    return hsv_to_rgb(hsv).astype(image.dtype)


def color_jitter(key: jax.Array, image: jax.Array,
                 brightness: float | Sequence[float] = 0.0,
                 contrast: float | Sequence[float] = 0.0,
                 saturation: float | Sequence[float] = 0.0,
                 hue: float | Sequence[float] = 0.0) -> jax.Array:
    """Random brightness, contrast, saturation and hue changes in a random order.

    torchvision ``ColorJitter`` semantics: a number ``b`` for brightness/contrast/saturation
    draws the factor from ``U[max(0, 1 - b), 1 + b]``; a pair ``(lo, hi)`` from ``U[lo, hi]``
    (``lo >= 0``); ``hue = h`` draws the shift from ``U[-h, h]`` with ``0 <= h <= 0.5`` (or a
    pair within ``[-0.5, 0.5]``). The enabled adjustments are applied in a uniformly random
    order; identity ranges (the default 0) are skipped.

    Args:
        key: PRNG key.
        image: ``(H, W, 3)`` RGB float image in ``[0, 1]``.
        brightness: range for :func:`adjust_brightness` factors.
        contrast: range for :func:`adjust_contrast` factors.
        saturation: range for :func:`adjust_saturation` factors.
        hue: range for :func:`adjust_hue` shifts.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.uniform(jax.random.key(1), (8, 8, 3))
        >>> out = color_jitter(jax.random.key(0), x, brightness=0.4, contrast=0.4,
        ...                    saturation=0.4, hue=0.1)
        >>> out.shape, out.dtype
        ((8, 8, 3), dtype('float32'))
    """
    _check_color(image)
    _check_key(key)
    ranges = [
        _jitter_range(brightness, "brightness", 1.0, 0.0, math.inf, True),
        _jitter_range(contrast, "contrast", 1.0, 0.0, math.inf, True),
        _jitter_range(saturation, "saturation", 1.0, 0.0, math.inf, True),
        _jitter_range(hue, "hue", 0.0, -0.5, 0.5, False),
    ]
    enabled = [op for op, rng in enumerate(ranges) if rng is not None]
    if not enabled:
        return image
    lo = jnp.asarray([ranges[op][0] for op in enabled], jnp.float32)
    hi = jnp.asarray([ranges[op][1] for op in enabled], jnp.float32)
    u = jax.random.uniform(key, (2, len(enabled)))
    order = jnp.argsort(u[0])  # a uniformly random permutation
    factors = lo + (hi - lo) * u[1]
    kinds, factors = jnp.asarray(enabled)[order], factors[order]

    def step(i: jax.Array, img: jax.Array) -> jax.Array:
        # One generic step (brightness, contrast and saturation are blends towards black, the
        # mean grey and the grey image) so the body is compiled once, not per op and position;
        # under vmap a switch on the op would evaluate every branch at every position anyway.
        kind, factor = kinds[i], factors[i]
        gray = _gray(img)
        toward = jnp.where(kind == _BRIGHTNESS, 0.0,
                           jnp.where(kind == _CONTRAST, jnp.mean(gray), gray))
        out = _blend(img, toward, factor)
        if _HUE in enabled:
            out = jnp.where(kind == _HUE, adjust_hue(img, factor), out)
        return out

    return lax.fori_loop(0, len(enabled), step, image)


# ----------------------------------------------------------------------------- ImageNet crops


def resized_crop(image: jax.Array, top: float | jax.Array, left: float | jax.Array,
                 height: float | jax.Array, width: float | jax.Array,
                 size: int | Sequence[int], antialias: bool = True) -> jax.Array:
    """Resize the box ``[top, top + height) x [left, left + width)`` to a static ``size``.

    Output pixel ``o`` (per axis) samples the source at ``top + (o + 1/2) * height / h_out - 1/2``
    (pixel centres aligned, as ``torchvision.transforms.functional.resized_crop``) with a
    triangle (bilinear) kernel, widened by the downscale factor when ``antialias``. The box may
    be traced (dynamic crop, static output shape). Unlike cropping first, pixels just outside
    the box contribute to the output's border samples.

    Args:
        image: ``(H, W, C)`` float image.
        top: first row of the box (may be fractional or traced).
        left: first column of the box.
        height: box height ``> 0``.
        width: box width ``> 0``.
        size: output ``(h_out, w_out)`` or one int for both.
        antialias: low-pass filter when downscaling (torchvision's default).

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.arange(64.0).reshape(8, 8, 1)
        >>> bool(jnp.allclose(resized_crop(x, 2, 3, 4, 4, 4), x[2:6, 3:7]))
        True
        >>> resized_crop(x, 0, 0, 8, 8, (3, 5)).shape
        (3, 5, 1)
    """
    _check_image(image)
    out_h, out_w = normalize_tuple(size, 2, "size")
    h, w = image.shape[:2]
    box = {"top": top, "left": left, "height": height, "width": width}
    if all(isinstance(v, int | float) for v in box.values()):
        if height <= 0 or width <= 0:
            raise ValueError(f"crop box `height` and `width` must be > 0, got {box}.")
        if top < 0 or left < 0 or top + height > h or left + width > w:
            raise ValueError(f"crop box {box} is not inside the image of size {(h, w)}; the box "
                             f"must have top, left >= 0, top + height <= {h} and "
                             f"left + width <= {w}.")
    return _resize_box(image, top, left, height, width, (out_h, out_w), antialias)


@functools.partial(jax.jit, static_argnames=("size", "antialias"))
def _resize_box(image: jax.Array, top: Any, left: Any, height: Any, width: Any,
                size: tuple[int, int], antialias: bool) -> jax.Array:
    ct = _compute_dtype(image.dtype)
    scale = jnp.stack([size[0] / jnp.asarray(height, ct), size[1] / jnp.asarray(width, ct)])
    translation = -jnp.stack([jnp.asarray(top, ct), jnp.asarray(left, ct)]) * scale
    out = jax.image.scale_and_translate(image.astype(ct), (*size, image.shape[-1]), (0, 1),
                                        scale, translation, "linear", antialias=antialias)
    return out.astype(image.dtype)


def random_resized_crop_params(key: jax.Array, height: int, width: int,
                               scale: Sequence[float] = (0.08, 1.0),
                               ratio: Sequence[float] = (3 / 4, 4 / 3),
                               attempts: int = 10
                               ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Sample an Inception-style crop box ``(top, left, h, w)`` (int32 scalars).

    torchvision ``RandomResizedCrop.get_params``: draw ``area ~ U[scale] * H * W`` and
    ``log(aspect) ~ U[log ratio]``, ``w = round(sqrt(area * aspect))``,
    ``h = round(sqrt(area / aspect))``; take the first of ``attempts`` draws that fits
    (all drawn at once, no Python loop), with ``top ~ U{0..H-h}``, ``left ~ U{0..W-w}``; if
    none fits, fall back to the central crop of the largest box with aspect clipped to
    ``ratio``. Szegedy et al. 2015, "Going Deeper with Convolutions", sec. 6.

    Args:
        key: PRNG key.
        height: image height ``H`` (static).
        width: image width ``W`` (static).
        scale: ``(lo, hi)`` range of the box area as a fraction of the image, ``0 < lo <= hi``.
        ratio: ``(lo, hi)`` range of the aspect ratio ``w / h``, ``0 < lo <= hi``.
        attempts: candidates drawn before the fallback.

    Example:
        >>> import jax
        >>> top, left, h, w = random_resized_crop_params(jax.random.key(0), 32, 32)
        >>> bool(0 < h <= 32 and 0 < w <= 32 and top + h <= 32 and left + w <= 32)
        True
    """
    _check_key(key)
    height, width = normalize_tuple((height, width), 2, "(height, width)")
    s_lo, s_hi = _check_range(scale, "scale", low=0.0)
    r_lo, r_hi = _check_range(ratio, "ratio", low=0.0)
    if s_lo <= 0 or r_lo <= 0:
        raise ValueError(f"`scale` and `ratio` must be positive, got scale={scale!r}, "
                         f"ratio={ratio!r}.")
    attempts = normalize_tuple(attempts, 1, "attempts")[0]
    u = jax.random.uniform(key, (2 * attempts + 2,))
    u_area, u_ratio, u_offset = u[:attempts], u[attempts:-2], u[-2:]
    area = height * width * (s_lo + (s_hi - s_lo) * u_area)
    aspect = jnp.exp(math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * u_ratio)
    ws = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
    hs = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
    fits = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = jnp.argmax(fits)
    # Fallback, static: the whole image with its aspect clipped into `ratio`.
    if width / height < r_lo:
        fb_w, fb_h = width, round(width / r_lo)
    elif width / height > r_hi:
        fb_w, fb_h = round(height * r_hi), height
    else:
        fb_w, fb_h = width, height
    found = jnp.any(fits)
    h = jnp.where(found, hs[first], fb_h)
    w = jnp.where(found, ws[first], fb_w)
    # Offsets uniform over {0, ..., H - h}: floor(u * (H - h + 1)), u in [0, 1).
    top = jnp.minimum(jnp.floor(u_offset[0] * (height - h + 1)).astype(jnp.int32), height - h)
    left = jnp.minimum(jnp.floor(u_offset[1] * (width - w + 1)).astype(jnp.int32), width - w)
    top = jnp.where(found, top, (height - h) // 2)
    left = jnp.where(found, left, (width - w) // 2)
    return top, left, h, w


def random_resized_crop(key: jax.Array, image: jax.Array, size: int | Sequence[int],
                        scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3)) -> jax.Array:
    """Inception-style random-resized crop: a random box, resized to a static ``size``.

    ``resized_crop(image, *random_resized_crop_params(key, H, W, scale, ratio), size)``: the
    standard ImageNet training augmentation (torchvision ``RandomResizedCrop``, bilinear,
    antialiased).

    Args:
        key: PRNG key.
        image: ``(H, W, C)`` float image.
        size: output ``(h, w)`` or one int (224 for ImageNet).
        scale: ``(lo, hi)`` range of the box area as a fraction of the image.
        ratio: ``(lo, hi)`` range of the box aspect ratio ``w / h``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> random_resized_crop(jax.random.key(0), jnp.ones((48, 64, 3)), 32).shape
        (32, 32, 3)
    """
    _check_image(image)
    top, left, h, w = random_resized_crop_params(key, image.shape[0], image.shape[1], scale,
                                                 ratio)
    return resized_crop(image, top, left, h, w, size)


def center_crop(image: jax.Array, size: int | Sequence[int],
                crop_fraction: float = 0.875) -> jax.Array:
    """Central crop for evaluation, resized to ``size`` (the ImageNet "resize 256, crop 224").

    The box is the largest one with the output's aspect ratio that fits the image, shrunk by
    ``crop_fraction`` and centred; it is then resized with :func:`resized_crop`. For a square
    output this equals resizing the shorter side to ``size / crop_fraction`` and taking the
    central ``size`` (``224 / 0.875 = 256``).

    Args:
        image: ``(H, W, C)`` float image.
        size: output ``(h, w)`` or one int.
        crop_fraction: side of the box relative to the largest fitting box, in ``(0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> center_crop(jnp.ones((32, 40, 3)), 28).shape
        (28, 28, 3)
        >>> x = jnp.arange(16.0).reshape(4, 4, 1)
        >>> bool(jnp.allclose(center_crop(x, 4, crop_fraction=1.0), x))
        True
    """
    _check_image(image)
    out_h, out_w = normalize_tuple(size, 2, "size")
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"`crop_fraction` must be in (0, 1], got {crop_fraction!r}.")
    h, w = image.shape[:2]
    fit = min(h / out_h, w / out_w) * crop_fraction
    box_h, box_w = out_h * fit, out_w * fit
    return resized_crop(image, (h - box_h) / 2, (w - box_w) / 2, box_h, box_w, (out_h, out_w))


# ----------------------------------------------------------------------------- composition

_RANDOM = (random_crop, random_flip, random_translate, random_rotate, random_zoom,
           color_jitter, cutout, random_resized_crop)
_FIXED = (flip_left_right, flip_up_down, translate, rotate, zoom, adjust_brightness,
          adjust_contrast, adjust_saturation, adjust_hue, center_crop, resized_crop)
_BATCH = (mixup,)

AUGMENTATIONS: dict[str, Callable] = {fn.__name__: fn for fn in _RANDOM + _FIXED + _BATCH}
"""Names usable in a :func:`compose` config, mapped to their functions."""

_Stage = Callable[[jax.Array, jax.Array, jax.Array | None], tuple[jax.Array, jax.Array | None]]


def _parse_entry(position: int, entry: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if (isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[0], str)
            and isinstance(entry[1], dict)):
        return entry[0], dict(entry[1])
    raise TypeError(f"augmentation config entry {position} must be a name or a (name, kwargs) "
                    f"pair such as ('random_crop', {{'padding': 4}}), got {entry!r}.")


def _make_stage(position: int, entry: Any) -> _Stage:
    """One pipeline stage ``(key, images, labels) -> (images, labels)`` for a config entry."""
    name, kwargs = _parse_entry(position, entry)
    if name not in AUGMENTATIONS:
        close = difflib.get_close_matches(name, list(AUGMENTATIONS), n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown augmentation {name!r} at config position {position};{hint} "
                         f"known: {sorted(AUGMENTATIONS)}.")
    fn = AUGMENTATIONS[name]
    data_args = ("key", "images", "labels") if fn in _BATCH else (
        ("key", "image") if fn in _RANDOM else ("image",))
    signature = inspect.signature(fn)
    reserved = [k for k in kwargs if k in data_args]
    try:
        if reserved:
            raise TypeError(f"data arguments {reserved} are supplied by the pipeline")
        signature.bind_partial(**dict.fromkeys(data_args), **kwargs)
        missing = [p.name for p in signature.parameters.values()
                   if p.default is inspect.Parameter.empty and p.name not in data_args
                   and p.name not in kwargs]
        if missing:
            raise TypeError(f"missing required arguments {missing}")
    except TypeError as err:
        raise TypeError(f"bad arguments for augmentation {name!r} at config position "
                        f"{position}: {err}; pass the keyword arguments of its signature "
                        f"{name}{signature}.") from None
    op = functools.partial(fn, **kwargs)

    if fn in _BATCH:
        def stage(key, images, labels):
            if labels is None:
                raise ValueError(f"augmentation {name!r} (config position {position}) mixes "
                                 f"labels: call the pipeline as `apply(key, images, labels)`.")
            return op(key, images, labels)
    elif fn in _RANDOM:
        def stage(key, images, labels):
            keys = jax.random.split(key, images.shape[0])
            return jax.vmap(op)(keys, images), labels
    else:
        def stage(key, images, labels):
            return jax.vmap(op)(images), labels
    return stage


def mixes_labels(config: Sequence[str | tuple[str, dict[str, Any]]]) -> bool:
    """Whether a :func:`compose` config has batch-level entries (``mixup``) that mix labels.

    Its pipeline must then be called as ``apply(key, images, labels)`` with ``(N, K)`` float
    labels; the training step does so when this is True (``augment_labels``).

    Example:
        >>> mixes_labels([("random_flip", {})]), mixes_labels(["random_flip", "mixup"])
        (False, True)
    """
    if isinstance(config, str | dict):
        raise TypeError(f"`config` must be a list of (name, kwargs) entries, got {config!r}.")
    batch_names = {fn.__name__ for fn in _BATCH}
    return any(_parse_entry(i, entry)[0] in batch_names for i, entry in enumerate(config))


def compose(config: Sequence[str | tuple[str, dict[str, Any]]]
            ) -> Callable[..., jax.Array | tuple[jax.Array, jax.Array]]:
    """Build a jit-compiled batch pipeline from a config list of ``(name, kwargs)`` entries.

    ``apply(key, images, labels=None)`` runs the entries in order; entry ``i`` uses
    ``fold_in(key, i)``, split once per example for per-image augmentations (which are
    ``vmap``-ed), so the output is a deterministic function of ``key`` and every example gets
    independent randomness. Names come from :data:`AUGMENTATIONS`; deterministic functions
    (``center_crop``, ``rotate``, ...) ignore the key, batch-level ``mixup`` needs labels.
    Labels pass through untouched by per-image augmentations.

    Args:
        config: entries such as ``("random_crop", {"padding": 4})`` or a bare name
            ``"random_flip"``; kwargs are checked against the function signature now, values
            at the first call (trace time).

    Returns:
        ``apply(key, images, labels=None)`` taking ``(N, H, W, C)`` float images (and
        ``(N, K)`` float labels) and returning the images, or ``(images, labels)`` when labels
        are given.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> augment = compose([("random_crop", {"padding": 4}), ("random_flip", {}),
        ...                    ("cutout", {"size": 8})])
        >>> x = jax.random.uniform(jax.random.key(1), (16, 32, 32, 3))
        >>> out = augment(jax.random.key(0), x)
        >>> out.shape, bool((out == augment(jax.random.key(0), x)).all())
        ((16, 32, 32, 3), True)
        >>> compose([("random_flp", {})])
        Traceback (most recent call last):
        ...
        ValueError: unknown augmentation 'random_flp' at config position 0; did you mean
        'random_flip'? ...
    """
    if isinstance(config, str | dict):
        raise TypeError(f"`config` must be a list of (name, kwargs) entries, got {config!r}.")
    stages = [_make_stage(i, entry) for i, entry in enumerate(config)]

    def apply(key: jax.Array, images: jax.Array, labels: jax.Array | None = None):
        _check_key(key)
        check_rank(images, "images", 4, "(N, H, W, C)")
        check_float(images, "images")
        if labels is not None and jnp.shape(labels)[:1] != images.shape[:1]:
            raise ValueError(f"`labels` must have the batch size of `images`, got labels "
                             f"{jnp.shape(labels)} and images {images.shape}.")
        for i, stage in enumerate(stages):
            images, labels = stage(jax.random.fold_in(key, i), images, labels)
        return images if labels is None else (images, labels)

    return jax.jit(apply)
