"""Tests of jaxcnn.visualize: PNGs are written and not blank, grid layouts, bad input."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib import image as mpimg

from jaxcnn import models, visualize
from jaxcnn import visualize as V


def _assert_picture(path) -> np.ndarray:
    """The PNG exists and is not blank: pixel std > 0.01 (pixels in [0, 1])."""
    assert path.exists() and path.stat().st_size > 1000
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 50
    assert float(pixels[..., :3].std()) > 0.01
    return pixels


@pytest.fixture(scope="module")
def lenet():
    net = models.create("lenet5", num_classes=10)
    image = jnp.asarray(np.random.default_rng(0).normal(size=(32, 32, 1)), jnp.float32)
    return net, net.init(jax.random.key(0), image[None]), image


# kernel_grid

@pytest.mark.parametrize("c_in,c_out", [(1, 6), (3, 20), (3, 1)])
@pytest.mark.parametrize("normalize", ["per_filter", "global"])
def test_kernel_grid_one_axes_per_filter(c_in, c_out, normalize):
    k = np.random.default_rng(c_out).normal(size=(5, 5, c_in, c_out)).astype(np.float32)
    fig = V._kernel_figure(k, normalize)
    assert len(fig.axes) == c_out
    rows, cols = V._grid(c_out)
    assert rows * cols >= c_out > (rows - 1) * cols
    tiles = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert tiles[0].shape == ((5, 5) if c_in == 1 else (5, 5, 3))
    assert all(0.0 <= float(t.min()) and float(t.max()) <= 1.0 for t in tiles)
    if normalize == "per_filter":  # every filter uses the full range
        assert all(np.isclose(float(t.max()), 1.0) for t in tiles)


def _title_wider(fig, renderer):
    return fig._suptitle.get_window_extent(renderer).width > fig.bbox.width


def test_a_title_wider_than_the_grid_is_not_cut(tmp_path):
    """Four kernels make a figure narrower than its title: the saved PNG holds the whole
    title (its rendered extent fits the image) with a margin of background on each side."""
    k = np.random.default_rng(0).normal(size=(11, 11, 1, 4)).astype(np.float32)
    path = visualize.kernel_grid(k, tmp_path / "k.png")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = V._kernel_figure(k, "per_filter")
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert _title_wider(fig, renderer)  # the case this test is about
    title = fig._suptitle.get_window_extent(renderer)
    pixels = _assert_picture(path)
    assert pixels.shape[1] >= title.width  # at dpi 100, as saved
    # the left and right columns are background (white): nothing drawn touches the edge
    for column in (pixels[:, 0, :3], pixels[:, -1, :3]):
        assert float(column.min()) > 0.99


def test_kernel_grid_writes_png_and_takes_bfloat16(tmp_path):
    k = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 3, 8)), jnp.bfloat16)
    out = visualize.kernel_grid(k, tmp_path / "sub" / "k.png")
    assert out == tmp_path / "sub" / "k.png"
    _assert_picture(out)


@pytest.mark.parametrize("shape,match", [((5, 5, 6), "4-D HWIO"), ((5, 5, 2, 4), "C_in = 2")])
def test_kernel_grid_bad_kernel(tmp_path, shape, match):
    with pytest.raises(ValueError, match=f"`kernel`.*{match}"):
        visualize.kernel_grid(np.ones(shape), tmp_path / "k.png")


def test_kernel_grid_bad_normalize(tmp_path):
    with pytest.raises(ValueError, match="normalize"):
        visualize.kernel_grid(np.ones((3, 3, 1, 2)), tmp_path / "k.png", normalize="minmax")


# feature_maps

def test_feature_maps_layout_and_png(lenet, tmp_path):
    net, variables, image = lenet
    fig = V._feature_figure(net, variables, image, ["c1", "c3", "f6"], max_channels=4)
    # input + c1 (6 channels, 4 shown) + c3 (16 channels, 4 shown) + f6 (a vector: 1 strip)
    assert len(fig.axes) == 1 + 4 + 4 + 1
    strip = fig.axes[-1].get_images()[0].get_array()
    assert strip.shape == (1, 84)
    out = visualize.feature_maps(net, variables, image[None], ["c1", "s2", "c5"],
                                 tmp_path / "maps.png")
    _assert_picture(out)


def test_feature_maps_matches_intermediates(lenet):
    net, variables, image = lenet
    fig = V._feature_figure(net, variables, image, ["c1"])
    expected = net.apply(variables, image[None], capture_intermediates=True,
                         mutable=["intermediates"])[1]["intermediates"]["c1"]["__call__"][0]
    for c, ax in enumerate(fig.axes[1:]):
        np.testing.assert_allclose(ax.get_images()[0].get_array(), expected[0, ..., c],
                                   atol=1e-6)


def test_feature_maps_unknown_layer(lenet, tmp_path):
    net, variables, image = lenet
    with pytest.raises(ValueError, match="unknown layer name.*'c33'.*Did you mean 'c3'"):
        visualize.feature_maps(net, variables, image, ["c1", "c33"], tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("kwargs,match", [
    ({"max_channels": 0}, "max_channels"),
    ({"layer_names": []}, "layer_names"),
    ({"image": np.ones((2, 32, 32, 1), np.float32)}, "image"),
])
def test_feature_maps_bad_arguments(lenet, tmp_path, kwargs, match):
    net, variables, image = lenet
    args = {"image": image, "layer_names": ["c1"], **kwargs}
    with pytest.raises(ValueError, match=match):
        visualize.feature_maps(net, variables, args.pop("image"), args.pop("layer_names"),
                               tmp_path / "m.png", **args)


# training_curves, confusion_matrix

def test_training_curves(tmp_path):
    rng = np.random.default_rng(2)
    lines = [{"step": s, "train_loss": float(2 / s + rng.uniform(0, 0.1)),
              "train_accuracy": float(1 - 1 / s)} for s in range(1, 30)]
    lines += [{"step": 29, "eval_loss": 0.2, "eval_accuracy": 0.9}]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in lines))
    _assert_picture(visualize.training_curves(metrics, tmp_path / "out" / "curves.png"))


def test_training_curves_empty_or_missing(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="metrics_jsonl"):
        visualize.training_curves(tmp_path / "metrics.jsonl", tmp_path / "c.png")
    with pytest.raises(FileNotFoundError):
        visualize.training_curves(tmp_path / "nope.jsonl", tmp_path / "c.png")


def test_confusion_matrix(tmp_path):
    m = np.random.default_rng(3).integers(0, 10, (4, 4)) + 40 * np.eye(4, dtype=int)
    fig = V._confusion_figure(m, ["a", "b", "c", "d"])
    ax = fig.axes[0]
    recall = ax.get_images()[0].get_array()
    np.testing.assert_allclose(recall, m / m.sum(axis=1, keepdims=True))
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 16 and texts[0] == str(m[0, 0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "d"]
    assert f"{np.trace(m) / m.sum():.4f}" in ax.get_title()
    _assert_picture(visualize.confusion_matrix(m, tmp_path / "cm.png"))


@pytest.mark.parametrize("matrix,names,match", [
    (np.ones((3, 4)), None, "`matrix` must be a square"),
    (np.ones(3), None, "`matrix`"),
    (np.ones((3, 3)), ["a", "b"], "`class_names`.*3.*2"),
])
def test_confusion_matrix_bad_input(tmp_path, matrix, names, match):
    with pytest.raises(ValueError, match=match):
        visualize.confusion_matrix(matrix, tmp_path / "cm.png", class_names=names)


# filter_bank

def test_filter_bank_panels_match_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    grey = np.random.default_rng(4).uniform(size=(24, 30)).astype(np.float32)
    panels = dict((title, r) for title, r, _ in V._filter_panels(grey))
    assert len(panels) == 15
    np.testing.assert_allclose(panels["Sobel vertical edges (d/dx)"],
                               ndimage.sobel(grey, axis=1), atol=1e-5)
    np.testing.assert_allclose(panels["Prewitt horizontal edges (d/dy)"],
                               ndimage.prewitt(grey, axis=0), atol=1e-5)
    np.testing.assert_allclose(panels["Laplacian"], ndimage.laplace(grey), atol=1e-5)
    sigma = V._gaussian_sigma(9)
    np.testing.assert_allclose(panels[f"Gaussian 9x9 (sigma {sigma:.2f})"],
                               ndimage.gaussian_filter(grey, sigma, radius=4), atol=1e-5)
    magnitude = np.hypot(ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=0))
    np.testing.assert_allclose(panels["Sobel gradient magnitude"], magnitude / magnitude.max(),
                               atol=1e-5)


def test_filter_bank_png_rgb_and_grey(tmp_path):
    rng = np.random.default_rng(5)
    rgb = (rng.uniform(size=(40, 60, 3)) * 255).astype(np.uint8)
    fig = V._filter_figure(rgb)
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 15
    _assert_picture(visualize.filter_bank(rgb, tmp_path / "rgb.png"))
    _assert_picture(visualize.filter_bank(rgb[..., 0], tmp_path / "grey.png"))


@pytest.mark.parametrize("shape", [(5, 40, 40), (40, 40, 2), (8, 40)])
def test_filter_bank_bad_image(tmp_path, shape):
    with pytest.raises(ValueError, match="`image`"):
        visualize.filter_bank(np.ones(shape), tmp_path / "f.png")
