"""Classic filter kernels against scipy.ndimage and the textbook formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxcnn import filters

# jaxcnn boundary -> scipy.ndimage mode ("symm" repeats the edge pixel, as ndimage "reflect").
NDIMAGE_MODES = {"symm": "reflect", "wrap": "wrap", "fill": "constant"}


def _image(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("size,sigma", [(3, 0.5), (5, 1.0), (7, 2.0), ((5, 9), (1.0, 2.5)),
                                        (9, (2.0, 0.7))])
def test_gaussian_matches_ndimage_impulse_response(size, sigma):
    g = filters.gaussian(size, sigma)
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(float(g.sum()), 1.0, atol=1e-6)
    h, w = (size, size) if isinstance(size, int) else size
    impulse = np.zeros((h, w))
    impulse[h // 2, w // 2] = 1.0
    expected = ndimage.gaussian_filter(impulse, sigma, mode="constant",
                                       radius=(h // 2, w // 2))
    np.testing.assert_allclose(np.asarray(g), expected, atol=1e-6)


def test_gaussian_numpy_formula_and_grad():
    y, x = np.mgrid[-2:3, -3:4]
    ref = np.exp(-(y**2 + x**2) / (2 * 1.3**2))
    np.testing.assert_allclose(np.asarray(filters.gaussian((5, 7), 1.3)), ref / ref.sum(),
                               atol=1e-6)
    # Differentiable in sigma: a wider Gaussian puts less mass at the centre.
    assert float(jax.grad(lambda s: filters.gaussian(5, s)[2, 2])(1.0)) < 0
    assert jax.jit(filters.gaussian, static_argnums=0)(5, 1.0).shape == (5, 5)


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize("boundary", ["symm", "wrap", "fill"])
def test_box_is_ndimage_uniform_filter(size, boundary):
    img = _image((9, 10))
    np.testing.assert_allclose(np.asarray(filters.box(size).sum()), 1.0, atol=1e-6)
    got = filters.apply(img, filters.box(size), boundary=boundary)
    expected = ndimage.uniform_filter(img.astype(np.float64), size,
                                      mode=NDIMAGE_MODES[boundary])
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_box_even_and_rectangular_shapes():
    assert filters.box((2, 4)).shape == (2, 4)
    np.testing.assert_allclose(np.asarray(filters.box((2, 4))), np.full((2, 4), 1 / 8))


@pytest.mark.parametrize("name", ["sobel", "prewitt"])
@pytest.mark.parametrize("axis", [0, 1, -2, -1])
@pytest.mark.parametrize("boundary", ["symm", "wrap", "fill"])
def test_derivatives_match_ndimage(name, axis, boundary):
    img = _image((8, 11), seed=1)
    got = filters.apply(img, getattr(filters, name)(axis), boundary=boundary)
    expected = getattr(ndimage, name)(img.astype(np.float64), axis=axis,
                                      mode=NDIMAGE_MODES[boundary])
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_sobel_axis_semantics():
    # axis 0 = d/dy: responds to a horizontal edge (bright bottom half), not a vertical one.
    horizontal = np.zeros((6, 6), np.float32)
    horizontal[3:] = 1.0
    assert float(jnp.abs(filters.apply(horizontal, filters.sobel(0))).max()) == 4.0
    assert float(jnp.abs(filters.apply(horizontal, filters.sobel(1))).max()) == 0.0
    assert float(filters.apply(horizontal, filters.sobel(0))[2, 2]) > 0  # dark -> bright


@pytest.mark.parametrize("boundary", ["symm", "wrap", "fill"])
def test_laplacian_matches_ndimage_laplace(boundary):
    img = _image((7, 9), seed=2)
    got = filters.apply(img, filters.laplacian(), boundary=boundary)
    expected = ndimage.laplace(img.astype(np.float64), mode=NDIMAGE_MODES[boundary])
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_laplacian_diagonal_is_sum_of_8_neighbours_minus_8_centre():
    img = _image((6, 7), seed=3).astype(np.float64)
    p = np.pad(img, 1, mode="symmetric")
    neighbours = sum(p[1 + dy:7 + dy, 1 + dx:8 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                     if (dy, dx) != (0, 0))
    got = filters.apply(img.astype(np.float32), filters.laplacian(diagonal=True))
    np.testing.assert_allclose(np.asarray(got), neighbours - 8 * img, atol=1e-5)


def _gabor_numpy(h, w, sigma, theta, lam, psi, gamma):
    y, x = np.mgrid[-(h // 2):h // 2 + 1, -(w // 2):w // 2 + 1].astype(np.float64)
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    return np.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2)) * np.cos(2 * np.pi * xr / lam
                                                                            + psi)


@pytest.mark.parametrize("size,sigma,theta,lam,psi,gamma", [
    (7, 2.0, 0.0, 4.0, 0.0, 1.0),
    (9, 1.5, np.pi / 4, 3.0, np.pi / 2, 0.5),
    ((5, 11), 3.0, 2.0, 6.0, 1.0, 2.0),
    (15, 4.0, -np.pi / 3, 8.0, np.pi, 0.8),
])
def test_gabor_matches_numpy_formula(size, sigma, theta, lam, psi, gamma):
    h, w = (size, size) if isinstance(size, int) else size
    got = filters.gabor(size, sigma, theta, lam, phase=psi, gamma=gamma)
    assert got.dtype == jnp.float32 and got.shape == (h, w)
    np.testing.assert_allclose(np.asarray(got), _gabor_numpy(h, w, sigma, theta, lam, psi, gamma),
                               atol=1e-5)


def test_gabor_jit_and_grad_in_theta():
    f = jax.jit(lambda t: filters.gabor(7, 2.0, t, 4.0).sum())
    np.testing.assert_allclose(float(f(0.5)), _gabor_numpy(7, 7, 2.0, 0.5, 4.0, 0, 1).sum(),
                               atol=1e-4)
    assert np.isfinite(float(jax.grad(f)(0.5)))


@pytest.mark.parametrize("kernel", [filters.sobel(1), filters.gaussian(5, 1.0),
                                    filters.box((2, 3))])
def test_apply_rgb_equals_per_channel(kernel):
    rgb = _image((9, 8, 3), seed=4)
    got = filters.apply(rgb, kernel)
    for c in range(3):
        np.testing.assert_allclose(np.asarray(got[..., c]),
                                   np.asarray(filters.apply(rgb[..., c], kernel)), atol=1e-6)


def test_apply_batch_equals_per_image_and_jit():
    batch = _image((3, 8, 8, 2), seed=5)
    k = filters.gabor(5, 1.5, 0.3, 4.0)
    got = jax.jit(filters.apply, static_argnames=("boundary", "mode"))(batch, k, mode="valid")
    assert got.shape == (3, 4, 4, 2)
    for n in range(3):
        np.testing.assert_allclose(np.asarray(got[n]),
                                   np.asarray(filters.apply(batch[n], k, mode="valid")),
                                   atol=1e-6)


def test_apply_per_channel_kernels_and_bfloat16():
    rgb = _image((6, 6, 3), seed=6)
    ks = jnp.stack([filters.sobel(0), filters.sobel(1), filters.laplacian()], axis=-1)
    got = filters.apply(rgb, ks)
    for c, k in enumerate([filters.sobel(0), filters.sobel(1), filters.laplacian()]):
        np.testing.assert_allclose(np.asarray(got[..., c]),
                                   np.asarray(filters.apply(rgb[..., c], k)), atol=1e-6)
    out = filters.apply(jnp.asarray(rgb, jnp.bfloat16), filters.gaussian(3, 1.0))
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32),
                               np.asarray(filters.apply(rgb, filters.gaussian(3, 1.0))),
                               atol=0.05)


@pytest.mark.parametrize("call,err,match", [
    (lambda: filters.gaussian(4, 1.0), ValueError, "size.*odd"),
    (lambda: filters.gaussian(0, 1.0), ValueError, "size"),
    (lambda: filters.gaussian(5, 0.0), ValueError, "sigma.*> 0"),
    (lambda: filters.gaussian(5, (1.0, -1.0)), ValueError, "sigma"),
    (lambda: filters.gaussian(5, (1.0, 1.0, 1.0)), ValueError, "sigma.*shape"),
    (lambda: filters.box(0), ValueError, "size"),
    (lambda: filters.box((3, 3, 3)), ValueError, "size"),
    (lambda: filters.sobel(2), ValueError, "axis"),
    (lambda: filters.prewitt(-3), ValueError, "axis"),
    (lambda: filters.gabor(6, 1.0, 0.0, 4.0), ValueError, "size.*odd"),
    (lambda: filters.gabor(5, -1.0, 0.0, 4.0), ValueError, "sigma"),
    (lambda: filters.gabor(5, 1.0, 0.0, 0.0), ValueError, "wavelength"),
    (lambda: filters.gabor(5, 1.0, 0.0, 4.0, gamma=0.0), ValueError, "gamma"),
    (lambda: filters.apply(np.ones(5, np.float32), filters.box(3)), ValueError, "image"),
    (lambda: filters.apply(np.ones((1, 2, 5, 5, 1), np.float32), filters.box(3)), ValueError,
     "image"),
    (lambda: filters.apply(np.ones((5, 5), np.uint8), filters.box(3)), TypeError, "image"),
    (lambda: filters.apply(np.ones((5, 5), np.float32), filters.box(3), boundary="reflect"),
     ValueError, "boundary"),
    (lambda: filters.apply(np.ones((5, 5, 3), np.float32), np.ones((3, 3, 2), np.float32)),
     ValueError, "channel"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
