"""Tests for jaxcnn.augment against numpy / scipy.ndimage / colorsys references."""

from __future__ import annotations

import colorsys
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from jax.test_util import check_grads

from jaxcnn import augment as A

RNG = np.random.default_rng(0)


def _image(h=8, w=8, c=3, seed=0, lo=0.05, hi=0.95):
    return np.random.default_rng(seed).uniform(lo, hi, (h, w, c)).astype(np.float32)


def _keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


def _coord_image(h, w):
    """Channel 0 = row + 1, channel 1 = column + 1 (zero padding is distinguishable)."""
    rows, cols = np.meshgrid(np.arange(h) + 1.0, np.arange(w) + 1.0, indexing="ij")
    return jnp.asarray(np.stack([rows, cols, np.ones_like(rows)], -1), jnp.float32)


# --------------------------------------------------------------------- shapes and dtypes

KEY = jax.random.key(0)
PER_IMAGE = [
    ("random_crop", lambda x: A.random_crop(KEY, x, padding=2)),
    ("random_crop_reflect", lambda x: A.random_crop(KEY, x, padding=3, padding_mode="reflect")),
    ("random_flip", lambda x: A.random_flip(KEY, x, vertical=True)),
    ("flip_left_right", A.flip_left_right),
    ("flip_up_down", A.flip_up_down),
    ("translate", lambda x: A.translate(x, 2, -1, fill=0.5)),
    ("random_translate", lambda x: A.random_translate(KEY, x, (2, 3))),
    ("rotate", lambda x: A.rotate(x, 33.0)),
    ("random_rotate", lambda x: A.random_rotate(KEY, x, (-10, 40))),
    ("zoom", lambda x: A.zoom(x, 0.7)),
    ("random_zoom", lambda x: A.random_zoom(KEY, x, (0.8, 1.3))),
    ("adjust_brightness", lambda x: A.adjust_brightness(x, 1.3)),
    ("adjust_contrast", lambda x: A.adjust_contrast(x, 0.6)),
    ("adjust_saturation", lambda x: A.adjust_saturation(x, 1.7)),
    ("adjust_hue", lambda x: A.adjust_hue(x, -0.2)),
    ("color_jitter", lambda x: A.color_jitter(KEY, x, 0.4, 0.4, 0.4, 0.1)),
    ("cutout", lambda x: A.cutout(KEY, x, 3)),
    ("rgb_to_hsv", A.rgb_to_hsv),
    ("hsv_to_rgb", A.hsv_to_rgb),
]
RESIZING = [
    ("random_crop_size", lambda x: A.random_crop(KEY, x, size=(6, 5), padding=0), (6, 5, 3)),
    ("random_resized_crop", lambda x: A.random_resized_crop(KEY, x, (5, 7)), (5, 7, 3)),
    ("center_crop", lambda x: A.center_crop(x, 6), (6, 6, 3)),
    ("resized_crop", lambda x: A.resized_crop(x, 1, 2, 5, 4, (10, 3)), (10, 3, 3)),
    ("rgb_to_grayscale", A.rgb_to_grayscale, (8, 9, 1)),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name, fn", PER_IMAGE, ids=[n for n, _ in PER_IMAGE])
def test_shape_and_dtype_preserved(name, fn, dtype):
    x = jnp.asarray(_image(8, 9), dtype)
    out = jax.eval_shape(fn, x)  # traces the whole function (all checks) without compiling
    assert (out.shape, out.dtype) == (x.shape, dtype), name


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name, fn, shape", RESIZING, ids=[n for n, *_ in RESIZING])
def test_resizing_output_shape_static(name, fn, shape, dtype):
    out = jax.eval_shape(fn, jnp.asarray(_image(8, 9), dtype))
    assert (out.shape, out.dtype) == (shape, dtype), name


def test_bfloat16_runs_and_close_to_float32():
    x = _image(8, 8)
    fn = jax.jit(lambda x: A.color_jitter(KEY, A.rotate(x, 20.0), 0.3, 0.3, 0.3, 0.1))
    out16 = fn(jnp.asarray(x, jnp.bfloat16))
    assert out16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out16, np.float32), fn(jnp.asarray(x)), atol=3e-2)


# --------------------------------------------------------------------- flips, shifts, rotation


def test_flips_match_numpy_and_twice_is_identity():
    x = _image(5, 7)
    np.testing.assert_array_equal(A.flip_left_right(x), x[:, ::-1])
    np.testing.assert_array_equal(A.flip_up_down(x), x[::-1])
    np.testing.assert_array_equal(A.flip_left_right(A.flip_left_right(x)), x)
    np.testing.assert_array_equal(A.flip_up_down(A.flip_up_down(x)), x)


def test_random_flip_probability_and_values():
    x = jnp.asarray(_image(4, 4))
    outs = np.asarray(jax.jit(jax.vmap(lambda k: A.random_flip(k, x, vertical=True, p=0.3)))(
        _keys(2000)))
    lr = np.all(outs == np.asarray(x)[:, ::-1], axis=(1, 2, 3))
    ud = np.all(outs == np.asarray(x)[::-1], axis=(1, 2, 3))
    both = np.all(outs == np.asarray(x)[::-1, ::-1], axis=(1, 2, 3))
    same = np.all(outs == np.asarray(x), axis=(1, 2, 3))
    assert np.all(lr | ud | both | same)  # every output is one of the four flips
    assert np.mean(lr) + np.mean(both) == pytest.approx(0.3, abs=0.04)
    assert np.mean(ud) + np.mean(both) == pytest.approx(0.3, abs=0.04)
    np.testing.assert_array_equal(A.random_flip(KEY, x, p=0.0), x)


def _shift_reference(x, dy, dx, fill):
    h, w = x.shape[:2]
    out = np.full_like(x, fill)
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[i, j] = x[i - dy, j - dx]
    return out


@pytest.mark.parametrize("dy, dx", [(0, 0), (2, 0), (0, -3), (-1, 4), (5, 1), (9, -9)])
def test_translate_equals_shifted_array_with_fill(dy, dx):
    x = _image(5, 6, 2)
    np.testing.assert_array_equal(A.translate(x, dy, dx, fill=-1.0),
                                  _shift_reference(x, dy, dx, -1.0))


def test_translate_traced_shift_under_jit_and_vmap():
    x = _image(5, 6, 2)
    shifts = np.array([[0, 0], [1, -2], [-3, 2], [4, 4]], np.int32)
    out = jax.jit(jax.vmap(lambda s: A.translate(x, s[0], s[1], fill=0.25)))(shifts)
    for (dy, dx), o in zip(shifts, np.asarray(out), strict=True):
        np.testing.assert_array_equal(o, _shift_reference(x, dy, dx, 0.25))


def test_rotation_by_zero_is_identity():
    x = _image(6, 9)
    np.testing.assert_allclose(A.rotate(x, 0.0), x, atol=1e-6)
    np.testing.assert_allclose(A.rotate(x, 360.0), x, atol=1e-5)


@pytest.mark.parametrize("size", [6, 7])
@pytest.mark.parametrize("angle, k", [(90.0, 1), (-90.0, -1), (180.0, 2), (270.0, 3)])
def test_rotation_by_multiples_of_90_equals_rot90(size, angle, k):
    x = _image(size, size, 2)
    # jnp.rot90(k=1) is counter-clockwise as displayed: the top-right corner moves to top-left.
    assert np.rot90(x)[0, 0, 0] == x[0, -1, 0]
    np.testing.assert_allclose(A.rotate(x, angle), jnp.rot90(x, k), atol=1e-5)


@pytest.mark.parametrize("shape, angle", [((7, 7), 30.0), ((6, 9), -47.0), ((8, 5), 123.0)])
def test_rotation_matches_scipy(shape, angle):
    x = _image(*shape, 2)
    ref = np.stack([ndi.rotate(x[..., c], angle, reshape=False, order=1, mode="grid-constant",
                               cval=0.3) for c in range(2)], -1)
    np.testing.assert_allclose(A.rotate(x, angle, fill=0.3), ref, atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 0.6, 1.7])
def test_zoom_matches_scipy_affine_transform(scale):
    x = _image(7, 10, 1)
    centre = (np.array(x.shape[:2]) - 1) / 2
    ref = ndi.affine_transform(x[..., 0], np.eye(2) / scale, offset=centre - centre / scale,
                               order=1, mode="grid-constant", cval=0.0)
    np.testing.assert_allclose(A.zoom(x, scale)[..., 0], ref, atol=1e-5)


# --------------------------------------------------------------------- crops and cutout


def test_random_crop_offsets_follow_range():
    h, pad = 8, 3
    x = _coord_image(h, h)
    outs = np.asarray(jax.jit(jax.vmap(lambda k: A.random_crop(k, x, padding=pad)))(_keys(3000)))
    # out[c, c] = padded[top + c, left + c] = image[top + c - pad, ...] (value row + 1).
    c = h // 2
    tops = outs[:, c, c, 0] - c + pad - 1
    lefts = outs[:, c, c, 1] - c + pad - 1
    for offs in (tops, lefts):
        assert set(np.unique(offs)) == set(range(2 * pad + 1))
        assert offs.mean() == pytest.approx(pad, abs=0.15)
    top, left = int(tops[0]), int(lefts[0])
    padded = np.pad(np.asarray(x), ((pad, pad), (pad, pad), (0, 0)))
    np.testing.assert_array_equal(outs[0], padded[top:top + h, left:left + h])


def test_random_crop_without_padding_is_a_window():
    x = _image(10, 12)
    out = np.asarray(A.random_crop(KEY, x, size=(4, 5), padding=0))
    windows = [x[i:i + 4, j:j + 5] for i in range(7) for j in range(8)]
    assert any(np.array_equal(out, win) for win in windows)


def test_random_translate_shifts_follow_range():
    x = _coord_image(9, 9)
    outs = np.asarray(jax.jit(jax.vmap(lambda k: A.random_translate(k, x, (2, 3))))(
        _keys(2000)))
    dy, dx = 4 - (outs[:, 4, 4, 0] - 1), 4 - (outs[:, 4, 4, 1] - 1)
    assert set(np.unique(dy)) == set(range(-2, 3))
    assert set(np.unique(dx)) == set(range(-3, 4))
    assert abs(dy.mean()) < 0.15 and abs(dx.mean()) < 0.2


def test_random_rotate_and_zoom_parameters_follow_range():
    # Bilinear sampling of a linear ramp (value = column offset from the centre) is exact, so
    # the pixels next to the centre read back cos(t) and -sin(t) (rotation) or 1 / s (zoom).
    ramp = jnp.asarray(np.tile(np.arange(9.0) - 4, (9, 1))[..., None], jnp.float32)

    def params(key):
        k_rot, k_zoom = jax.random.split(key)
        rot = A.random_rotate(k_rot, ramp, (-10.0, 30.0))
        zoomed = A.random_zoom(k_zoom, ramp, (0.8, 1.25))
        return jnp.arctan2(-rot[5, 4, 0], rot[4, 5, 0]), 1 / zoomed[4, 5, 0]

    angles, scales = (np.asarray(v) for v in jax.jit(jax.vmap(params))(_keys(2000)))
    angles = np.rad2deg(angles)
    assert -10 - 1e-3 <= angles.min() < -9.5 and 29.5 < angles.max() <= 30 + 1e-3
    assert angles.mean() == pytest.approx(10.0, abs=0.6)
    assert 0.8 - 1e-5 <= scales.min() < 0.81 and 1.24 < scales.max() <= 1.25 + 1e-5
    assert scales.mean() == pytest.approx(1.025, abs=0.01)


@pytest.mark.parametrize("size", [4, 5])
def test_cutout_centres_follow_range(size):
    h = 12
    x = jnp.asarray(_image(h, h, 1))
    outs = np.asarray(jax.jit(jax.vmap(lambda k: A.cutout(k, x, size)))(_keys(3000)))
    centres = []
    for out in outs:
        rows = np.flatnonzero((out == 0).any(axis=(1, 2)))
        cols = np.flatnonzero((out == 0).any(axis=(0, 2)))
        # The patch starts at centre - size // 2 (clipped at 0); recover from whichever end is free.
        centres.append([r[0] + size // 2 if r[0] > 0 else r[-1] + 1 - size + size // 2
                        for r in (rows, cols)])
        assert len(rows) <= size and len(cols) <= size
        outside = np.ones_like(out, bool)
        outside[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = False
        np.testing.assert_array_equal(out[outside], np.asarray(x)[outside])
    centres = np.array(centres)
    assert set(np.unique(centres)) == set(range(h))
    assert centres.mean() == pytest.approx((h - 1) / 2, abs=0.2)


def test_resized_crop_matches_slice_and_scipy_bilinear():
    x = _image(16, 18, 2)
    np.testing.assert_allclose(A.resized_crop(x, 3, 4, 6, 7, (6, 7)), x[3:9, 4:11], atol=1e-6)
    # Upscaling (no antialias effect) of a box away from the border: plain bilinear sampling
    # at top + (o + 1/2) * h / h_out - 1/2.
    top, left, bh, bw, oh, ow = 4, 5, 6, 8, 15, 12
    ys = top + (np.arange(oh) + 0.5) * bh / oh - 0.5
    xs = left + (np.arange(ow) + 0.5) * bw / ow - 0.5
    grid = np.meshgrid(ys, xs, indexing="ij")
    ref = np.stack([ndi.map_coordinates(x[..., c], grid, order=1) for c in range(2)], -1)
    out = jax.jit(A.resized_crop, static_argnums=5)(x, top, left, bh, bw, (oh, ow))
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_center_crop_box_and_identity():
    x = _image(40, 40)
    same, crop = jax.jit(lambda x: (A.center_crop(x, 40, crop_fraction=1.0),
                                    A.center_crop(x, 32, crop_fraction=0.8)))(x)
    np.testing.assert_allclose(same, x, atol=1e-6)
    np.testing.assert_allclose(crop, x[4:36, 4:36], atol=1e-6)
    wide = _image(20, 30)  # box limited by the height, centred horizontally
    half, small = jax.jit(lambda x: (A.center_crop(x, 10, crop_fraction=0.5),
                                     A.center_crop(x, (3, 4))))(wide)
    np.testing.assert_allclose(half, wide[5:15, 10:20], atol=1e-6)
    assert small.shape == (3, 4, 3)


def test_random_resized_crop_params_area_and_ratio_in_range():
    h, w, scale, ratio = 64, 48, (0.2, 0.6), (0.5, 1.5)
    params = jax.jit(jax.vmap(lambda k: A.random_resized_crop_params(k, h, w, scale, ratio)))
    top, left, ch, cw = (np.asarray(p) for p in params(_keys(2000)))
    assert np.all((top >= 0) & (left >= 0) & (top + ch <= h) & (left + cw <= w))
    area = ch * cw / (h * w)
    # Rounding h and w to whole pixels moves the area and aspect slightly.
    assert area.min() >= scale[0] - 0.03 and area.max() <= scale[1] + 0.03
    assert area.min() < scale[0] + 0.05 and area.max() > scale[1] - 0.05
    aspect = cw / ch
    assert aspect.min() >= ratio[0] - 0.05 and aspect.max() <= ratio[1] + 0.08
    # log-uniform aspect: its log has mean ~ the mid-point of the log range.
    assert np.log(aspect).mean() == pytest.approx(np.log(ratio).mean(), abs=0.05)
    assert len(np.unique(top)) > 10 and len(np.unique(left)) > 10


def test_random_resized_crop_output_static_and_is_the_sampled_box():
    x = _image(24, 30)

    def crop_and_reference(key):
        box = A.random_resized_crop_params(key, 24, 30)
        return A.random_resized_crop(key, x, (12, 10)), A.resized_crop(x, *box, (12, 10))

    out, ref = jax.jit(jax.vmap(crop_and_reference))(_keys(4))
    assert out.shape == (4, 12, 10, 3)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    # Whole-image area with aspect >= 2 never fits a square image: central (W, W / 2) box.
    fallback = jax.jit(lambda k: A.random_resized_crop_params(k, 20, 20, (1.0, 1.0), (2.0, 3.0)))
    assert tuple(int(v) for v in fallback(KEY)) == (5, 0, 10, 20)


# --------------------------------------------------------------------- colour


def test_rgb_hsv_match_colorsys_and_round_trip():
    x = _image(4, 5, 3, lo=0.0, hi=1.0)
    x[0, 0] = [0.3, 0.3, 0.3]  # grey: hue and saturation 0
    x[0, 1] = [0.9, 0.2, 0.9]  # r == b maximum
    hsv = np.asarray(A.rgb_to_hsv(x))
    ref = np.array([colorsys.rgb_to_hsv(*p) for p in x.reshape(-1, 3)]).reshape(x.shape)
    np.testing.assert_allclose(hsv, ref, atol=1e-5)
    np.testing.assert_allclose(A.hsv_to_rgb(hsv), x, atol=1e-5)
    grey = A.rgb_to_grayscale(x)
    np.testing.assert_allclose(grey[..., 0], x @ np.array([0.2989, 0.587, 0.114]), atol=1e-6)


@pytest.mark.parametrize("delta", [0.0, 0.17, -0.45])
def test_adjust_hue_matches_colorsys(delta):
    x = _image(4, 4)
    ref = np.array([colorsys.hsv_to_rgb((h + delta) % 1.0, s, v) for h, s, v in
                    (colorsys.rgb_to_hsv(*p) for p in x.reshape(-1, 3))]).reshape(x.shape)
    np.testing.assert_allclose(A.adjust_hue(x, delta), ref, atol=1e-5)
    if delta == 0.0:
        np.testing.assert_allclose(A.adjust_hue(x, delta), x, atol=1e-6)


def test_brightness_contrast_saturation_formulas():
    x = _image(5, 6, lo=0.0, hi=1.0)
    gray = x @ np.array([0.2989, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(A.adjust_brightness(x, 1.4), np.clip(1.4 * x, 0, 1), atol=1e-6)
    np.testing.assert_allclose(A.adjust_contrast(x, 1.6),
                               np.clip(1.6 * x - 0.6 * gray.mean(), 0, 1), atol=1e-6)
    np.testing.assert_allclose(A.adjust_saturation(x, 0.3),
                               np.clip(0.3 * x + 0.7 * gray[..., None], 0, 1), atol=1e-6)
    # Saturation 0: greyscale replicated in every channel.
    np.testing.assert_allclose(A.adjust_saturation(x, 0.0), np.repeat(gray[..., None], 3, -1),
                               atol=1e-6)
    for fn in (A.adjust_brightness, A.adjust_contrast, A.adjust_saturation):
        np.testing.assert_allclose(fn(x, 1.0), x, atol=1e-6)
    one = x[..., :1]  # greyscale images: contrast uses the plain mean, hue is a no-op
    np.testing.assert_allclose(A.adjust_contrast(one, 0.0), np.full_like(one, one.mean()),
                               atol=1e-6)
    np.testing.assert_array_equal(A.adjust_hue(one, 0.3), one)


def test_color_jitter_brightness_factors_follow_range():
    x = jnp.asarray(_image(4, 4, lo=0.1, hi=0.5))  # factors <= 1.4 never clip
    outs = jax.jit(jax.vmap(lambda k: A.color_jitter(k, x, brightness=0.4)))(_keys(3000))
    factors = np.asarray(outs / x).reshape(3000, -1)
    np.testing.assert_allclose(factors, factors[:, :1].repeat(factors.shape[1], 1), rtol=1e-5)
    f = factors[:, 0]
    assert 0.6 - 1e-5 <= f.min() < 0.62 and 1.38 < f.max() <= 1.4 + 1e-5
    assert f.mean() == pytest.approx(1.0, abs=0.02)
    assert f.std() == pytest.approx(0.8 / np.sqrt(12), rel=0.08)


def test_color_jitter_identity_ranges_and_hue_only():
    x = jnp.asarray(_image(4, 4))
    np.testing.assert_array_equal(A.color_jitter(KEY, x), x)
    np.testing.assert_array_equal(A.color_jitter(KEY, x, brightness=(1.0, 1.0), hue=0.0), x)
    out = A.color_jitter(KEY, x, hue=0.2)  # hue only: saturation and value unchanged
    np.testing.assert_allclose(A.rgb_to_hsv(out)[..., 1:], A.rgb_to_hsv(x)[..., 1:], atol=1e-5)


# --------------------------------------------------------------------- mixup


def _recover_mix(mixed):
    """Partner j and lam of each row of mixed identity "images": row i = lam e_i + (1-lam) e_j."""
    pairs = []
    for i, row in enumerate(mixed):
        others = np.flatnonzero(np.arange(len(row)) != i)
        j = others[np.argmax(row[others])]
        j = j if row[j] > 0 else i  # lam == 1 or j == i: unmixed
        pairs.append((j, row[i] if j != i else 1.0))
        np.testing.assert_allclose(row.sum(), 1.0, atol=1e-5)
    return pairs


@pytest.mark.parametrize("per_example, n", [(False, 8), (True, 2000)])
def test_mixup_labels_mixed_consistently(per_example, n):
    alpha = 0.5
    x = np.eye(n, dtype=np.float32)
    y = RNG.dirichlet(np.ones(5), size=n).astype(np.float32)
    xm, ym = jax.jit(A.mixup, static_argnums=(3, 4))(KEY, x, y, alpha, per_example)
    assert xm.shape == x.shape and ym.shape == y.shape and xm.dtype == ym.dtype == jnp.float32
    pairs = _recover_mix(np.asarray(xm))
    js = np.array([j for j, _ in pairs])
    lams = np.array([lam for _, lam in pairs])
    np.testing.assert_allclose(ym, lams[:, None] * y + (1 - lams[:, None]) * y[js], atol=1e-5)
    assert sorted(js) == list(range(n))  # one permutation for images and labels
    moved = js != np.arange(n)
    if not per_example:
        np.testing.assert_allclose(lams[moved], lams[moved][0], atol=1e-6)  # one lam per batch
    else:
        lams = lams[moved]  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
        assert 0.0 <= lams.min() and lams.max() <= 1.0
        assert lams.mean() == pytest.approx(0.5, abs=0.03)
        assert lams.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), abs=0.015)


# --------------------------------------------------------------------- composition


CIFAR_CONFIG = [("random_crop", {"padding": 4}), ("random_flip", {}),
                ("color_jitter", {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2,
                                  "hue": 0.05}),
                ("random_rotate", {"degrees": 10}), ("cutout", {"size": 8})]


def test_compose_cifar_batch_of_256_jit_deterministic_per_key():
    images = RNG.uniform(size=(256, 32, 32, 3)).astype(np.float32)
    images[1] = images[0]
    labels = jax.nn.one_hot(RNG.integers(0, 10, 256), 10)
    augment = A.compose(CIFAR_CONFIG)
    out, out_labels = augment(jax.random.key(0), images, labels)
    assert out.shape == images.shape and out.dtype == images.dtype
    np.testing.assert_array_equal(out_labels, labels)  # labels untouched
    again, _ = augment(jax.random.key(0), images, labels)
    np.testing.assert_array_equal(out, again)
    other, _ = augment(jax.random.key(1), images, labels)
    assert not np.allclose(out, other)
    # Per-example randomness: identical inputs get different augmentations.
    assert not np.allclose(out[0], out[1])


def test_compose_imagenet_style_with_mixup():
    images = jnp.asarray(RNG.uniform(size=(4, 20, 24, 3)), jnp.bfloat16)
    labels = jax.nn.one_hot(jnp.arange(4), 6)
    augment = A.compose([("random_resized_crop", {"size": 16}), ("flip_left_right", {}),
                         ("mixup", {"alpha": 0.2})])
    out, mixed = augment(KEY, images, labels)
    assert out.shape == (4, 16, 16, 3) and out.dtype == jnp.bfloat16
    np.testing.assert_allclose(mixed.sum(-1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        augment(KEY, images)
    evaluate = A.compose([("center_crop", {"size": 16})])
    assert evaluate(KEY, images).shape == (4, 16, 16, 3)


def test_compose_config_errors():
    with pytest.raises(ValueError, match="did you mean 'random_crop'"):
        A.compose([("random_crpo", {"padding": 4})])
    with pytest.raises(TypeError, match="random_flip.*paddding"):
        A.compose([("random_flip", {"paddding": 4})])
    with pytest.raises(TypeError, match="cutout.*missing.*size"):
        A.compose(["cutout"])
    with pytest.raises(TypeError, match="data arguments"):
        A.compose([("rotate", {"image": 1, "angle_degrees": 3.0})])
    with pytest.raises(TypeError, match="config entry 0"):
        A.compose([("random_flip", 0.5)])
    with pytest.raises(ValueError, match="images"):
        A.compose(["random_flip"])(KEY, jnp.ones((8, 8, 3)))


# --------------------------------------------------------------------- gradients


def test_gradients():
    ops = [
        lambda x: A.rotate(x, 25.0, fill=0.1),
        lambda x: A.zoom(x, 1.3),
        lambda x: A.translate(x, 1, -2),
        lambda x: A.random_crop(KEY, x, padding=1),
        lambda x: A.adjust_hue(x, 0.1),
        lambda x: A.adjust_saturation(x, 0.7),
        lambda x: A.adjust_contrast(x, 1.2),
        lambda x: A.resized_crop(x, 1, 1, 4, 3, (5, 5)),
    ]
    fn = jax.jit(lambda x: jnp.concatenate([op(x).ravel() for op in ops]))
    with jax.enable_x64(True):
        x = jnp.asarray(_image(5, 5, 3, lo=0.2, hi=0.8), jnp.float64)
        check_grads(fn, (x,), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)
    grey = jax.jit(jax.grad(lambda x: A.rgb_to_hsv(x).sum()))(jnp.full((2, 2, 3), 0.5))
    assert np.all(np.isfinite(grey))  # 0 / 0 hue of greys must not poison gradients


# --------------------------------------------------------------------- bad inputs


X = jnp.ones((8, 8, 3))
BAD = [
    (lambda: A.random_crop(KEY, jnp.ones((2, 8, 8, 3))), ValueError, r"`image`.*rank 3"),
    (lambda: A.random_flip(KEY, jnp.ones((8, 8, 3), jnp.int32)), TypeError, "`image`.*float"),
    (lambda: A.random_crop(KEY, X, size=20, padding=4), ValueError, "`size`.*padded"),
    (lambda: A.random_crop(KEY, X, padding=-1), ValueError, "padding"),
    (lambda: A.random_crop(KEY, X, size=0), ValueError, "size"),
    (lambda: A.random_crop(KEY, X, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda: A.random_flip(KEY, X, p=1.5), ValueError, "`p`"),
    (lambda: A.translate(X, 1.5, 0), TypeError, "`dy`"),
    (lambda: A.random_translate(KEY, X, -1), ValueError, "max_shift"),
    (lambda: A.random_rotate(KEY, X, (10, -10)), ValueError, "degrees"),
    (lambda: A.zoom(X, 0.0), ValueError, "scale"),
    (lambda: A.random_zoom(KEY, X, (0.0, 1.0)), ValueError, "scale_range"),
    (lambda: A.cutout(KEY, X, 9), ValueError, r"`size`.*\(8, 8\)"),
    (lambda: A.adjust_brightness(X, -0.1), ValueError, "factor"),
    (lambda: A.adjust_saturation(jnp.ones((4, 4, 2)), 0.5), ValueError, "`image` has 2"),
    (lambda: A.adjust_hue(X, 0.7), ValueError, "delta"),
    (lambda: A.rgb_to_hsv(jnp.ones((4, 4))), ValueError, "`image` has 4 channels"),
    (lambda: A.color_jitter(KEY, X, brightness=-0.2), ValueError, "brightness"),
    (lambda: A.color_jitter(KEY, X, hue=0.6), ValueError, "hue"),
    (lambda: A.color_jitter(KEY, X, contrast=(1.5, 0.5)), ValueError, "contrast"),
    (lambda: A.mixup(KEY, jnp.ones((4, 8)), jnp.ones((3, 2))), ValueError, r"\(4, 8\).*\(3, 2\)"),
    (lambda: A.mixup(KEY, jnp.ones((4, 8)), jnp.arange(4)), ValueError, "`labels`.*rank 2"),
    (lambda: A.mixup(KEY, jnp.ones((4, 8)), jnp.ones((4, 2), jnp.int32)), TypeError, "one_hot"),
    (lambda: A.mixup(KEY, jnp.ones((4, 8)), jnp.ones((4, 2)), alpha=0.0), ValueError, "alpha"),
    (lambda: A.resized_crop(X, 4, 4, 6, 2, 4), ValueError, r"not inside the image of size"),
    (lambda: A.resized_crop(X, 0, 0, 0, 2, 4), ValueError, "height"),
    (lambda: A.center_crop(X, 4, crop_fraction=1.5), ValueError, "crop_fraction"),
    (lambda: A.random_resized_crop(KEY, X, 4, scale=(0.0, 1.0)), ValueError, "scale"),
    (lambda: A.random_resized_crop(KEY, X, 4, ratio=(2.0, 1.0)), ValueError, "ratio"),
]


@pytest.mark.parametrize("call, exc, match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_validation_happens_at_trace_time():
    fn = jax.jit(functools.partial(A.cutout, KEY, size=9))
    with pytest.raises(ValueError, match="size"):
        fn(X)
