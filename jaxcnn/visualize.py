"""Pictures of a CNN and of classic filters, written as PNG files with matplotlib (Agg).

* :func:`kernel_grid`: the first layer's learned kernels as an image grid (the "Gabor-like"
  edge and colour-blob detectors of a trained network).
* :func:`feature_maps`: the activations of one image at named layers (low, mid, high level),
  through :func:`jaxcnn.intermediates`.
* :func:`training_curves`: loss and accuracy of a run's ``metrics.jsonl``.
* :func:`confusion_matrix`: a labelled confusion matrix.
* :func:`filter_bank`: an image filtered by the hand-designed kernels of
  :mod:`jaxcnn.filters` (Gaussian low-pass, Sobel, Prewitt, Laplacian, Gabor), in one figure.

Figures are built with ``matplotlib.figure.Figure`` directly (no ``pyplot`` state, no backend
switch), so the functions are safe to call from scripts, tests and threads; each returns the
``Path`` it wrote (parent folders are created).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxcnn._extras import require

require("viz", __name__)

from matplotlib.figure import Figure  # noqa: E402

__all__ = ["confusion_matrix", "feature_maps", "filter_bank", "kernel_grid", "training_curves"]

Array = Any

_NORMALIZE = ("per_filter", "global")
# ITU-R BT.601 luma weights: how an RGB image is turned into the grey image the filters see.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _save(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "tight": the saved image grows to hold every artist, so a title wider than a small
    # grid (four 11x11 kernels) is not cut at the edges.
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    return path


def _host(x: Array) -> np.ndarray:
    """``x`` as a float32 numpy array (bfloat16 and jax arrays included)."""
    return np.asarray(x).astype(np.float32)


def _grid(n: int, max_cols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of a grid holding ``n`` panels: near-square, or rows of ``max_cols``."""
    cols = math.ceil(math.sqrt(n)) if max_cols is None else min(n, max_cols)
    return math.ceil(n / cols), cols


def _rescale(x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    """Min-max scale to [0, 1] over ``axes`` (a constant block becomes 0.5)."""
    lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.5)


def _kernel_figure(kernel: Array, normalize: str = "per_filter") -> Figure:
    k = _host(kernel)
    if k.ndim != 4:
        raise ValueError(f"`kernel` must be a 4-D HWIO array (kh, kw, C_in, C_out) of a first "
                         f"convolution layer, got shape {k.shape}.")
    if k.shape[2] not in (1, 3):
        raise ValueError(f"`kernel` must have C_in = 1 (grey) or 3 (RGB) input channels to be "
                         f"shown as images, got shape {k.shape} (C_in = {k.shape[2]}).")
    if normalize not in _NORMALIZE:
        raise ValueError(f"`normalize` must be one of {_NORMALIZE}, got {normalize!r}.")
    kh, kw, c_in, c_out = k.shape
    k = _rescale(k, (0, 1, 2) if normalize == "per_filter" else None)
    rows, cols = _grid(c_out)
    fig = Figure(figsize=(1.0 * cols + 0.4, 1.0 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= c_out:
            fig.delaxes(ax)
            continue
        tile = k[..., 0, i] if c_in == 1 else k[..., i]
        ax.imshow(tile, cmap="gray" if c_in == 1 else None, vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{c_out} kernels {kh}x{kw}x{c_in} ({normalize.replace('_', ' ')} scale)",
                 fontsize=10)
    return fig


def kernel_grid(kernel: Array, path: str | os.PathLike, *,
                normalize: str = "per_filter") -> Path:
    """Save the filters of a first convolution layer as a grid of small images.

    Each output channel ``o`` is the image ``kernel[:, :, :, o]`` (grey for ``C_in = 1``, RGB
    for ``C_in = 3``), min-max scaled to [0, 1]:
    ``tile = (k - min) / (max - min)``, with ``min, max`` taken per filter (``"per_filter"``,
    every filter uses the full contrast range; Krizhevsky et al. 2012, Fig. 3) or over the
    whole kernel (``"global"``, filter magnitudes stay comparable). Zero is mid-grey only with
    ``"global"`` scaling of a symmetric kernel.

    Args:
        kernel: ``(kh, kw, C_in, C_out)`` HWIO kernel with ``C_in`` 1 or 3, e.g.
            ``variables["params"]["c1"]["kernel"]``.
        path: the PNG file to write.
        normalize: ``"per_filter"`` (default) or ``"global"``.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: ``kernel`` is not 4-D or has another number of input channels;
            unknown ``normalize``.

    Example:
        >>> import tempfile, numpy as np
        >>> k = np.random.default_rng(0).normal(size=(5, 5, 1, 6))
        >>> out = kernel_grid(k, tempfile.mkdtemp() + "/kernels.png")
        >>> out.name, out.stat().st_size > 1000
        ('kernels.png', True)
        >>> kernel_grid(k[0], "unused.png")
        Traceback (most recent call last):
        ...
        ValueError: `kernel` must be a 4-D HWIO array ...
    """
    return _save(_kernel_figure(kernel, normalize), path)


def _show_maps(subfig: Any, maps: np.ndarray, title: str, max_cols: int) -> None:
    """Draw ``maps`` ``(h, w, c)`` as one panel per channel, or as one strip when 1x1."""
    h, w, c = maps.shape
    subfig.suptitle(title, fontsize=9)
    if h == w == 1:  # a vector of features (dense layer, 1x1 map): one coloured strip
        ax = subfig.subplots()
        ax.imshow(maps.reshape(1, c), cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_yticks([])
        ax.set_xlabel("channel", fontsize=8)
        return
    rows, cols = _grid(c, max_cols)
    axes = subfig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < c:
            ax.imshow(maps[..., i], cmap="viridis", interpolation="nearest")
        else:
            ax.set_axis_off()


def _feature_figure(model: Any, variables: Mapping, image: Array, layer_names: Sequence[str],
                    max_channels: int = 16, max_cols: int = 8) -> Figure:
    from jaxcnn.inspect import intermediates

    if isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1:
        raise ValueError(f"`max_channels` must be a positive int, got {max_channels!r}.")
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    if not names:
        raise ValueError("`layer_names` must name at least one layer, got an empty sequence.")
    x = np.asarray(image)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"`image` must be one (H, W, C) image or a (1, H, W, C) batch, got "
                         f"shape {np.shape(image)}.")
    feats = intermediates(model, variables, x[None], names)
    panels = []
    for name in names:
        out = feats[name]
        out = _host(out[0] if isinstance(out, tuple) else out)[0]  # first call, first image
        if out.ndim == 1:
            out = out[None, None, :]
        if out.ndim != 3:
            raise ValueError(f"layer {name!r} in `layer_names` gives an output of shape "
                             f"{(1, *out.shape)}; feature maps need (N, H, W, C) or (N, C).")
        panels.append((name, out))
    heights = [1.6] + [1.1 if o.shape[:2] == (1, 1) else
                       1.0 * _grid(min(o.shape[-1], max_channels), max_cols)[0]
                       for _, o in panels]
    fig = Figure(figsize=(1.0 * max_cols + 0.5, sum(heights) + 0.35 * len(heights)),
                 layout="constrained")
    subfigs = fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    ax = subfigs[0].subplots()
    ax.imshow(_rescale(_host(x), None).squeeze(-1) if x.shape[-1] == 1 else
              _rescale(_host(x), None)[..., :3], cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    subfigs[0].suptitle(f"input {tuple(x.shape)}", fontsize=9)
    for sub, (name, out) in zip(subfigs[1:], panels, strict=True):
        h, w, c = out.shape
        if (h, w) == (1, 1):
            shown = f"all {c} values"
        elif c > max_channels:
            shown, out = f"first {max_channels} of {c} channels", out[..., :max_channels]
        else:
            shown = f"{c} channels"
        _show_maps(sub, out, f"{name}: {h}x{w}x{c} ({shown})", max_cols)
    return fig


def feature_maps(model: Any, variables: Mapping, image: Array, layer_names: Iterable[str],
                 path: str | os.PathLike, *, max_channels: int = 16) -> Path:
    """Save the feature maps of one image at the named layers, one block of panels per layer.

    For every name, ``a = intermediates(model, variables, image[None], layer_names)[name][0]``
    (:func:`jaxcnn.intermediates`) is drawn channel by channel, ``a[:, :, c]`` for the first
    ``max_channels`` channels, each panel with its own colour scale; an output without
    spatial extent (``(N, C)`` of a dense layer, or a ``1x1`` map) is drawn as one strip of
    ``C`` values. The input image is shown on top. Early layers respond to edges and strokes,
    later ones to larger parts, at lower resolution (Zeiler & Fergus 2014).

    Args:
        model: a Flax module, e.g. ``jaxcnn.models.create("lenet5")``.
        variables: its variables (``{"params": ..., "batch_stats": ...}``).
        image: one ``(H, W, C)`` image (or a ``(1, H, W, C)`` batch), preprocessed as the model
            expects.
        layer_names: submodule paths, e.g. ``["c1", "c3", "c5"]``.
        path: the PNG file to write.
        max_channels: most channels drawn per layer (default 16).

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: an unknown layer name (the message lists the available ones and the
            closest match), a layer output that is not ``(N, H, W, C)`` or ``(N, C)``, a bad
            ``image`` shape or ``max_channels``.

    Example:
        >>> import tempfile, jax, jax.numpy as jnp
        >>> from jaxcnn import models
        >>> net = models.create("lenet5", num_classes=10)
        >>> image = jnp.ones((32, 32, 1))
        >>> variables = net.init(jax.random.key(0), image[None])
        >>> out = feature_maps(net, variables, image, ["c1", "c3", "f6"],
        ...                    tempfile.mkdtemp() + "/maps.png")
        >>> out.stat().st_size > 1000
        True
    """
    return _save(_feature_figure(model, variables, image, layer_names, max_channels), path)


def training_curves(metrics_jsonl: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Save loss (left) and accuracy (right) against step from a run's ``metrics.jsonl``.

    The records written by :class:`jaxcnn.training.logging.MetricsLogger` (``train_loss``,
    ``train_accuracy``, ``eval_loss``, ``eval_accuracy``) are drawn by
    :func:`jaxcnn.training.logging.plot_curves`.

    Args:
        metrics_jsonl: the JSON-lines file (``<workdir>/metrics.jsonl``).
        path: the PNG file to write.

    Returns:
        ``Path(path)``.

    Raises:
        FileNotFoundError: ``metrics_jsonl`` does not exist.
        ValueError: ``metrics_jsonl`` holds no records.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "metrics.jsonl").write_text(
        ...     '{"step": 1, "train_loss": 2.0}\\n{"step": 2, "train_loss": 1.0}\\n')
        >>> training_curves(d / "metrics.jsonl", d / "curves.png").stat().st_size > 1000
        True
    """
    from jaxcnn.training.logging import plot_curves, read_metrics

    records = read_metrics(metrics_jsonl)
    if not records:
        raise ValueError(f"`metrics_jsonl` {os.fspath(metrics_jsonl)!r} holds no records; pass "
                         f"the metrics.jsonl of a run that logged at least one step.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return plot_curves(records, path)


def _confusion_figure(matrix: Array, class_names: Sequence[str] | None = None) -> Figure:
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"`matrix` must be a square (num_classes, num_classes) array, got "
                         f"shape {m.shape}.")
    n = m.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"`class_names` must have one name per row of `matrix` ({n}), got "
                         f"{len(names)}.")
    m = m.astype(np.float64)
    totals = m.sum(axis=1, keepdims=True)
    recall = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    size = min(max(4.0, 0.5 * n + 2.0), 16.0)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(recall, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, label="fraction of the true class", shrink=0.8)
    ax.set_xticks(range(n), names, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:  # beyond that, numbers in the cells are unreadable
        integral = np.all(m == np.round(m))
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:.0f}" if integral else f"{m[i, j]:.2g}",
                        ha="center", va="center", fontsize=8,
                        color="white" if recall[i, j] > 0.5 else "black")
    accuracy = np.trace(m) / max(m.sum(), 1.0)
    ax.set_title(f"confusion matrix (accuracy {accuracy:.4f}, {m.sum():.0f} examples)")
    return fig


def confusion_matrix(matrix: Array, path: str | os.PathLike,
                     class_names: Sequence[str] | None = None) -> Path:
    """Save a confusion matrix: cell ``(i, j)`` counts examples of class ``i`` predicted ``j``.

    Cells are coloured by the row-normalised rate ``m[i, j] / sum_j m[i, j]`` (the diagonal
    is each class's recall), annotated with the raw counts when there are at most 30
    classes; the title gives the accuracy ``trace(m) / sum(m)``.

    Args:
        matrix: ``(num_classes, num_classes)`` counts, rows = true class (e.g. the
            ``confusion_matrix.json`` of a training run).
        path: the PNG file to write.
        class_names: tick labels, one per class; default ``0 .. num_classes - 1``.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: ``matrix`` is not square, or ``class_names`` has the wrong length.

    Example:
        >>> import tempfile
        >>> out = confusion_matrix([[5, 1], [0, 4]], tempfile.mkdtemp() + "/cm.png",
        ...                        class_names=["cat", "dog"])
        >>> out.stat().st_size > 1000
        True
    """
    return _save(_confusion_figure(matrix, class_names), path)


def _grey(image: Array) -> np.ndarray:
    x = _host(image)
    if x.ndim == 3 and x.shape[-1] in (1, 3):
        x = x[..., 0] if x.shape[-1] == 1 else x @ _LUMA
    if x.ndim != 2:
        raise ValueError(f"`image` must be (H, W) grey, (H, W, 1) or (H, W, 3) RGB, got "
                         f"shape {np.shape(image)}.")
    if min(x.shape) < 9:
        raise ValueError(f"`image` must be at least 9x9 (the largest Gaussian), got shape "
                         f"{x.shape}.")
    return _rescale(x, None).astype(np.float32)


def _gaussian_sigma(size: int) -> float:
    """OpenCV's default sigma for a ``size`` Gaussian (``getGaussianKernel`` with sigma <= 0)."""
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def _filter_panels(grey: np.ndarray) -> list[tuple[str, np.ndarray, bool]]:
    """``(title, response, signed)`` for every filter of the demo."""
    from jaxcnn import filters

    panels = [("original", None, False)]  # None: not a filter (set below)
    for size in (3, 5, 7, 9):
        sigma = _gaussian_sigma(size)
        panels.append((f"Gaussian {size}x{size} (sigma {sigma:.2f})",
                       filters.gaussian(size, sigma), False))
    for name, fn in (("Sobel", filters.sobel), ("Prewitt", filters.prewitt)):
        panels.append((f"{name} vertical edges (d/dx)", fn(1), True))
        panels.append((f"{name} horizontal edges (d/dy)", fn(0), True))
    panels.append(("Laplacian", filters.laplacian(), True))
    panels.append(("Sobel gradient magnitude", None, False))
    for deg in (0, 45, 90, 135):
        g = filters.gabor(11, sigma=3.0, theta=np.deg2rad(deg), wavelength=6.0)
        # Zero mean: a pure band-pass, else flat regions keep a grey level from the DC term.
        panels.append((f"Gabor theta={deg} deg (lambda 6)", g - g.mean(), True))
    # Zero-padding every kernel to the largest size leaves its "same"-mode correlation
    # unchanged, so all filters run as one per-channel correlation (one compilation).
    kernels = [_host(k) for _, k, _ in panels if k is not None]
    size = max(k.shape[0] for k in kernels)
    stacked = np.stack([np.pad(k, (size - k.shape[0]) // 2) for k in kernels], axis=-1)
    tiled = np.broadcast_to(grey[..., None], (*grey.shape, len(kernels)))
    responses = iter(np.moveaxis(_host(filters.apply(tiled, stacked)), -1, 0))
    out = [(title, grey if k is None else next(responses), signed)
           for title, k, signed in panels]
    magnitude = np.hypot(out[5][1], out[6][1])  # Sobel d/dx and d/dy
    out[10] = (out[10][0], magnitude / max(float(magnitude.max()), 1e-12), False)
    return out


def _filter_figure(image: Array) -> Figure:
    panels = _filter_panels(_grey(image))
    rows, cols = _grid(len(panels), max_cols=5)
    h, w = panels[0][1].shape
    fig = Figure(figsize=(cols * 3.2, rows * 3.2 * h / w + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= len(panels):
            continue
        title, response, signed = panels[i]
        if signed:  # zero response is mid-grey, so positive and negative edges both show
            lim = float(np.percentile(np.abs(response), 99.5)) or 1.0
            ax.imshow(response, cmap="gray", vmin=-lim, vmax=lim)
        else:
            ax.imshow(response, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(title, fontsize=9)
    fig.suptitle("classic filters (correlation, jaxcnn.filters.apply)", fontsize=11)
    return fig


def filter_bank(image: Array, path: str | os.PathLike) -> Path:
    """Save one figure of an image filtered by the classic hand-designed kernels.

    The image is turned to grey (``0.299 R + 0.587 G + 0.114 B``), scaled to [0, 1] and
    correlated (:func:`jaxcnn.filters.apply`, reflected borders) with: Gaussian low-pass
    kernels of size 3, 5, 7, 9 (``sigma = 0.3 ((size - 1) / 2 - 1) + 0.8``, OpenCV's
    default), Sobel and Prewitt vertical-edge (``d/dx``) and horizontal-edge (``d/dy``)
    kernels, the 4-neighbour Laplacian and 11x11 Gabor kernels (``sigma = 3``,
    ``lambda = 6``, mean removed) at 0, 45, 90 and 135 degrees, plus the Sobel gradient magnitude
    ``sqrt(gx^2 + gy^2)``. Smoothed images share the [0, 1] grey scale; signed responses are
    drawn with zero as mid-grey. 15 panels in a 3x5 grid, the first the original.

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3)`` RGB image, any value range, at least 9x9;
            e.g. ``sklearn.datasets.load_sample_image("china.jpg")``.
        path: the PNG file to write.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: ``image`` has another shape or is smaller than 9x9.

    Example:
        >>> import tempfile, numpy as np
        >>> image = np.random.default_rng(0).uniform(size=(32, 48, 3))
        >>> filter_bank(image, tempfile.mkdtemp() + "/filters.png").stat().st_size > 1000
        True
    """
    return _save(_filter_figure(image), path)
