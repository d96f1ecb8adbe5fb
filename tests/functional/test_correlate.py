"""correlate2d / convolve2d against scipy.signal for every mode, boundary and size corner case."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import signal

import jaxcnn.functional as F

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")
FUNCS = {"correlate": (F.correlate2d, signal.correlate2d),
         "convolve": (F.convolve2d, signal.convolve2d)}

# (image (H, W), kernel (kh, kw)): odd, even, mixed, 1x1, kernel equal to / larger than the
# image (scipy swaps the inputs in "valid"), and a kernel taller but narrower than the image
# ("valid" is then an error, in scipy as here).
SIZES = [((6, 7), (1, 1)), ((6, 7), (3, 3)), ((6, 7), (2, 2)), ((6, 7), (2, 5)),
         ((6, 7), (4, 3)), ((6, 7), (6, 7)), ((3, 4), (5, 6)), ((2, 3), (4, 8)),
         ((1, 1), (2, 3)), ((4, 6), (5, 2))]


def _rand(rng, shape):
    return rng.normal(size=shape).astype(np.float32)


def _scipy(ref, x, k, mode, boundary, fillvalue):
    """scipy reference, channel by channel for (H, W, C) images / (kh, kw, C) kernels."""
    if x.ndim == 2:
        return ref(x, k, mode, boundary, fillvalue)
    ks = [k[..., c] if k.ndim == 3 else k for c in range(x.shape[-1])]
    return np.stack([ref(x[..., c], kc, mode, boundary, fillvalue)
                     for c, kc in enumerate(ks)], axis=-1)


def _mixed_valid(img_hw, k_hw):
    return not (all(i >= k for i, k in zip(img_hw, k_hw, strict=True))
                or all(k >= i for i, k in zip(img_hw, k_hw, strict=True)))


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("img_hw,k_hw", SIZES)
def test_matches_scipy_2d(func, mode, boundary, img_hw, k_hw):
    ours, ref = FUNCS[func]
    rng = np.random.default_rng([*img_hw, *k_hw])
    x, k = _rand(rng, img_hw), _rand(rng, k_hw)
    if mode == "valid" and _mixed_valid(img_hw, k_hw):
        with pytest.raises(ValueError):
            ref(x, k, mode, boundary, 1.5)
        with pytest.raises(ValueError, match="mode"):
            ours(x, k, mode, boundary, 1.5)
        return
    expected = ref(x.astype(np.float64), k.astype(np.float64), mode, boundary, 1.5)
    got = ours(jnp.asarray(x), jnp.asarray(k), mode, boundary, 1.5)
    assert got.dtype == jnp.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("img_hw,k_hw", [((5, 6), (3, 2)), ((3, 3), (4, 5))])
def test_matches_scipy_channels(func, mode, boundary, per_channel, img_hw, k_hw):
    ours, ref = FUNCS[func]
    rng = np.random.default_rng(7)
    x = _rand(rng, (*img_hw, 3))
    k = _rand(rng, (*k_hw, 3) if per_channel else k_hw)
    expected = _scipy(ref, x.astype(np.float64), k.astype(np.float64), mode, boundary, -0.5)
    got = ours(x, k, mode=mode, boundary=boundary, fillvalue=-0.5)
    assert got.shape == expected.shape
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("alias,name", [("pad", "fill"), ("circular", "wrap"),
                                        ("symmetric", "symm")])
def test_scipy_boundary_aliases(alias, name):
    rng = np.random.default_rng(3)
    x, k = _rand(rng, (5, 5)), _rand(rng, (3, 2))
    np.testing.assert_allclose(np.asarray(F.correlate2d(x, k, boundary=alias)),
                               signal.correlate2d(x, k, boundary=name), atol=1e-5)


def test_default_arguments_are_full_fill_zero():
    rng = np.random.default_rng(4)
    x, k = _rand(rng, (4, 5)), _rand(rng, (2, 3))
    np.testing.assert_allclose(np.asarray(F.correlate2d(x, k)), signal.correlate2d(x, k),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(F.convolve2d(x, k)), signal.convolve2d(x, k),
                               atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize("k_hw", [(2, 2), (3, 4)])
def test_convolution_is_correlation_with_flipped_kernel(mode, k_hw):
    rng = np.random.default_rng(5)
    x, k = _rand(rng, (6, 6)), _rand(rng, k_hw)
    np.testing.assert_allclose(np.asarray(F.convolve2d(x, k, mode)),
                               np.asarray(F.correlate2d(x, k[::-1, ::-1], mode)), atol=1e-5)


def test_same_mode_even_kernel_offsets_differ_as_in_scipy():
    # scipy centres convolve2d's "same" at (k-1)//2 of "full" but correlate2d's at k//2.
    rng = np.random.default_rng(6)
    x, k = _rand(rng, (5, 5)), _rand(rng, (2, 2))
    conv = np.asarray(F.convolve2d(x, k, "same"))
    corr = np.asarray(F.correlate2d(x, k[::-1, ::-1], "same"))
    full = np.asarray(F.convolve2d(x, k, "full"))
    np.testing.assert_allclose(conv, full[:5, :5], atol=1e-5)
    np.testing.assert_allclose(corr, full[1:, 1:], atol=1e-5)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_jit_with_traced_fillvalue(func, boundary):
    ours, ref = FUNCS[func]
    rng = np.random.default_rng(8)
    x, k = _rand(rng, (5, 6, 2)), _rand(rng, (3, 4))
    jitted = jax.jit(ours, static_argnames=("mode", "boundary"))
    got = jitted(x, k, mode="same", boundary=boundary, fillvalue=jnp.float32(2.0))
    expected = _scipy(ref, x, k, "same", boundary, 2.0)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_vmap_over_batch():
    rng = np.random.default_rng(9)
    xs, k = _rand(rng, (4, 5, 5, 3)), _rand(rng, (3, 3))
    f = partial(F.convolve2d, mode="same", boundary="wrap")
    got = jax.vmap(f, in_axes=(0, None))(xs, k)
    expected = np.stack([np.asarray(f(x, k)) for x in xs])
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_grads(func, boundary, mode):
    ours, _ = FUNCS[func]
    rng = np.random.default_rng(10)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(4, 5, 2)))
        k = jnp.asarray(rng.normal(size=(3, 2, 2)))
        check_grads(lambda a, b: ours(a, b, mode, boundary, 0.5), (x, k), order=1,
                    modes=("rev",))


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("kernel_dtype", [jnp.bfloat16, jnp.float32])
def test_bfloat16_dtype_preserved(func, kernel_dtype):
    ours, ref = FUNCS[func]
    rng = np.random.default_rng(11)
    x, k = _rand(rng, (6, 6, 3)), _rand(rng, (3, 3))
    got = ours(jnp.asarray(x, jnp.bfloat16), jnp.asarray(k, kernel_dtype), "same", "symm")
    assert got.dtype == jnp.bfloat16
    expected = _scipy(ref, x, k, "same", "symm", 0)
    np.testing.assert_allclose(np.asarray(got, np.float32), expected, atol=0.15, rtol=0.05)


def test_integer_kernel_is_cast_to_image_dtype():
    x = np.random.default_rng(12).normal(size=(4, 4)).astype(np.float32)
    k = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    got = F.correlate2d(x, k, "same")
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), signal.correlate2d(x, k, "same"), atol=1e-5)


@pytest.mark.parametrize("func", [F.correlate2d, F.convolve2d])
@pytest.mark.parametrize("image_shape,kernel_shape,kwargs,err,match", [
    ((5,), (3, 3), {}, ValueError, "image"),
    ((2, 5, 5, 1), (3, 3), {}, ValueError, "image"),
    ((5, 5), (3,), {}, ValueError, "kernel"),
    ((5, 5), (3, 3, 1), {}, ValueError, "kernel"),
    ((5, 5, 3), (3, 3, 2), {}, ValueError, "channel"),
    ((5, 5), (0, 3), {}, ValueError, "kernel.*empty"),
    ((0, 5), (3, 3), {}, ValueError, "image.*empty"),
    ((5, 5), (3, 3), {"mode": "SAME"}, ValueError, "mode.*'full', 'same', 'valid'"),
    ((5, 5), (3, 3), {"boundary": "reflect"}, ValueError, "boundary.*'fill'"),
    ((5, 5), (3, 3), {"fillvalue": [1.0, 2.0]}, ValueError, "fillvalue"),
    ((5, 3), (3, 5), {"mode": "valid"}, ValueError, r"mode.*\(5, 3\).*\(3, 5\)"),
])
def test_bad_inputs(func, image_shape, kernel_shape, kwargs, err, match):
    rng = np.random.default_rng(13)
    with pytest.raises(err, match=match):
        func(_rand(rng, image_shape), _rand(rng, kernel_shape), **kwargs)


def test_bad_dtypes():
    with pytest.raises(TypeError, match="image"):
        F.correlate2d(np.ones((4, 4), np.int32), np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="kernel"):
        F.convolve2d(np.ones((4, 4), np.float32), np.ones((2, 2), np.complex64))
