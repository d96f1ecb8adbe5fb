"""Eval-mode numpy forward passes of zoo networks, written from the papers and torchvision.

Everything is float64 NHWC with HWIO kernels, and reads only the variables (``params`` and
``batch_stats`` as nested dicts of numpy arrays): the structure is re-derived here (which
convolution strides, where the norms sit, when a shortcut projects, how a transition
compresses) and checked against the variables' shapes where the code under test decides it.
Padding is explicit: torchvision's ``padding=1`` for 3x3 convolutions pads both sides, also
at stride 2 on even inputs, where ``"SAME"`` would pad ``(0, 1)``.

``norm`` arguments default to :func:`batch_norm`; tests pass a wrong variant (e.g.
:func:`batch_norm_eps_outside`) to show the comparison would catch that bug.
"""

from __future__ import annotations

import jax
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

EPS = 1e-5  # BatchNorm epsilon of torchvision and of jaxcnn.layers.BatchNorm


def as_np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _pads(pad):
    return (pad, pad) if isinstance(pad, int) else tuple(pad)


def conv(x, kernel, stride=1, pad=0):
    """Cross-correlation; ``pad`` an int (both sides) or ``(low, high)``, the same per axis."""
    lo, hi = _pads(pad)
    x = np.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    win = sliding_window_view(x, kernel.shape[:2], axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", win, kernel)


def conv_layer(p, x, stride=1, pad=0):
    """``conv`` with the layer's kernel, plus its bias when it has one."""
    return conv(x, p["kernel"], stride, pad) + p.get("bias", 0.0)


def max_pool(x, window, stride, pad=0):
    """Max pool with ``-inf`` padding (PyTorch's ``MaxPool2d``), output size floored."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    win = sliding_window_view(x, (window, window), axis=(1, 2))[:, ::stride, ::stride]
    return win.max(axis=(-2, -1))


def avg_pool2(x):
    """``AvgPool2d(2, 2)``: odd sizes floored."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def batch_norm(x, p, s, eps=EPS):
    """Eval-mode BatchNorm: running statistics, epsilon inside the square root."""
    return (x - s["mean"]) / np.sqrt(s["var"] + eps) * p["scale"] + p["bias"]


def batch_norm_eps_outside(x, p, s, eps=EPS):
    """A plausible bug: epsilon added to the standard deviation."""
    return (x - s["mean"]) / (np.sqrt(s["var"]) + eps) * p["scale"] + p["bias"]


def head(p, x):
    """Global average pool, then the dense classifier."""
    return x.mean(axis=(1, 2)) @ p["kernel"] + p["bias"]


# ------------------------------------------------------------------ residual networks


def residual_block(p, s, x, *, stride, preact, bottleneck, stride_on="3x3", eps=EPS,
                   norm=batch_norm, strided_pad=1):
    """One residual block (He et al. 2016 v1 / torchvision, and "Identity Mappings" v2).

    v1: ``relu(bn(conv(...)) + shortcut)`` with a ``bn(conv1x1_s)`` projection; v2:
    ``conv(relu(bn(...))) + shortcut`` with the projection reading the pre-activated input,
    without a norm. ``strided_pad`` pads the 3x3 convolution when it has stride 2: torchvision's
1 on both sides (``(0, 1)`` would be "SAME" on an even input).
    """
    bn = lambda name, y: norm(y, p[name], s[name], eps)        # noqa: E731
    cv = lambda name, y, st, pad: conv_layer(p[name], y, st, pad)  # noqa: E731
    out = p["conv3" if bottleneck else "conv2"]["kernel"].shape[-1]
    project = stride != 1 or x.shape[-1] != out
    assert ("downsample_conv" in p) == project, "projection iff the shape changes (option B)"
    s1, s3 = (stride, 1) if stride_on == "1x1" else (1, stride)
    pad3 = strided_pad if stride != 1 else 1
    if not preact:
        if bottleneck:
            y = relu(bn("bn1", cv("conv1", x, s1, 0)))
            y = relu(bn("bn2", cv("conv2", y, s3, pad3 if s3 != 1 else 1)))
            y = bn("bn3", cv("conv3", y, 1, 0))
        else:
            y = relu(bn("bn1", cv("conv1", x, stride, pad3)))
            y = bn("bn2", cv("conv2", y, 1, 1))
        short = bn("downsample_bn", cv("downsample_conv", x, stride, 0)) if project else x
        return relu(y + short)
    pre = relu(bn("bn1", x))
    short = cv("downsample_conv", pre, stride, 0) if project else x
    if bottleneck:
        y = relu(bn("bn2", cv("conv1", pre, s1, 0)))
        y = relu(bn("bn3", cv("conv2", y, s3, pad3 if s3 != 1 else 1)))
        return cv("conv3", y, 1, 0) + short
    y = relu(bn("bn2", cv("conv1", pre, stride, pad3)))
    return cv("conv2", y, 1, 1) + short


def resnet(variables, x, *, stage_sizes, preact, bottleneck, cifar_stem, stride_on="3x3",
           eps=EPS, norm=batch_norm, strided_pad=1):
    """ResNet v1 / v2 / WRN: stem, stages (stride 2 in the first block of stages 2+), head.

    Stem: 7x7/2 pad 3 conv, [v1: BN + ReLU], 3x3/2 pad 1 max pool; or (CIFAR) a 3x3/1 pad 1
    conv alone. v2 ends with BN + ReLU before the pool.
    """
    p, s = as_np(variables["params"]), as_np(variables.get("batch_stats", {}))
    h = np.asarray(x, np.float64)
    if cifar_stem:
        h = conv_layer(p["stem_conv"], h, 1, 1)
    else:
        h = conv_layer(p["stem_conv"], h, 2, 3)
        if not preact:
            h = relu(norm(h, p["stem_bn"], s["stem_bn"], eps))
        h = max_pool(h, 3, 2, 1)
    for i, n_blocks in enumerate(stage_sizes, start=1):
        for j in range(1, n_blocks + 1):
            name = f"stage{i}_block{j}"
            h = residual_block(p[name], s.get(name, {}), h, stride=2 if i > 1 and j == 1 else 1,
                               preact=preact, bottleneck=bottleneck, stride_on=stride_on,
                               eps=eps, norm=norm, strided_pad=strided_pad)
    assert f"stage{len(stage_sizes)}_block{stage_sizes[-1] + 1}" not in p
    assert f"stage{len(stage_sizes) + 1}_block1" not in p
    if preact:
        h = relu(norm(h, p["post_bn"], s["post_bn"], eps))
    return head(p["head"], h)


# ------------------------------------------------------------------ DenseNet


def densenet(variables, x, *, block_config, growth_rate, cifar_stem, bottleneck=True,
             compression=0.5, eps=EPS, norm=batch_norm):
    """DenseNet(-BC) (Huang et al. 2017; torchvision's layout): BN-ReLU-1x1-BN-ReLU-3x3 layers
    concatenated, BN-ReLU-1x1 (``floor(compression * C)``)-avgpool transitions, BN-ReLU, head."""
    p, s = as_np(variables["params"]), as_np(variables["batch_stats"])
    bn_relu = lambda y, ps, ss: relu(norm(y, ps, ss, eps))    # noqa: E731
    h = np.asarray(x, np.float64)
    if cifar_stem:
        h = conv(h, p["conv0"]["kernel"], 1, 1)
    else:
        h = max_pool(bn_relu(conv(h, p["conv0"]["kernel"], 2, 3), p["norm0"], s["norm0"]),
                     3, 2, 1)
    for i, n_layers in enumerate(block_config, start=1):
        bp, bs = p[f"denseblock{i}"], s[f"denseblock{i}"]
        assert len(bp) == n_layers
        for j in range(1, n_layers + 1):
            lp, ls = bp[f"denselayer{j}"], bs[f"denselayer{j}"]
            y = bn_relu(h, lp["norm1"], ls["norm1"])
            if bottleneck:
                y = bn_relu(conv(y, lp["conv1"]["kernel"]), lp["norm2"], ls["norm2"])
            new = conv(y, lp["conv2"]["kernel"], 1, 1)
            assert new.shape[-1] == growth_rate
            h = np.concatenate([h, new], axis=-1)
        if i < len(block_config):
            tp, ts = p[f"transition{i}"], s[f"transition{i}"]
            assert tp["conv"]["kernel"].shape[-1] == int(compression * h.shape[-1])
            h = avg_pool2(conv(bn_relu(h, tp["norm"], ts["norm"]), tp["conv"]["kernel"]))
    return head(p["head"], bn_relu(h, p["norm5"], s["norm5"]))


# ------------------------------------------------------------------ highway networks


def highway_net(variables, x, *, stage_sizes, eps=EPS):
    """Convolutional highway net (Srivastava et al. 2015): ReLU stem, then per layer
    ``y = T * relu([bn](conv_H(x))) + (1 - T) * x`` with ``T = sigmoid(conv_T(x))`` (3x3,
    stride 1, pad 1), 2x2 max pooling between stages, global average, dense head."""
    p, s = as_np(variables["params"]), as_np(variables.get("batch_stats", {}))
    h = relu(conv_layer(p["stem_conv"], np.asarray(x, np.float64), 1, 1))
    for i, n_layers in enumerate(stage_sizes, start=1):
        if i > 1:
            h = max_pool(h, 2, 2)
        for j in range(1, n_layers + 1):
            name = f"stage{i}_highway{j}"
            lp = p[name]
            transform = conv_layer(lp["transform"], h, 1, 1)
            if "norm" in lp:
                transform = batch_norm(transform, lp["norm"], s[name]["norm"], eps)
            gate = sigmoid(conv_layer(lp["gate"], h, 1, 1))
            h = gate * relu(transform) + (1 - gate) * h
    assert f"stage{len(stage_sizes) + 1}_highway1" not in p
    return head(p["head"], h)


def assert_close(got, expected, tol=1e-4):
    """float32 agreement relative to the output's scale, which must be non-trivial."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    scale = np.abs(expected).max()
    assert 1e-2 < scale < 1e4, f"reference scale {scale} makes the comparison vacuous"
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


def differs(got, expected, tol=1e-4) -> bool:
    """Whether :func:`assert_close` would fail (for checks that a bug would be caught)."""
    try:
        assert_close(got, expected, tol)
    except AssertionError:
        return True
    return False
