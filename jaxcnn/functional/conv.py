"""Convolutions: standard, grouped, transposed, depthwise, separable and locally connected.

All functions take NHWC inputs ``(N, *spatial, C)`` with 1, 2 or 3 spatial dimensions (the
rank comes from the kernel) and HWIO kernels ``(*spatial, C_in // groups, C_out)``, as Flax
and ``lax`` do. Padding accepts every form of :func:`jaxcnn.functional.shapes.resolve_padding`
(``"SAME"``, ``"VALID"``, ``"CAUSAL"`` for 1-D, an int, one int per dimension or
``(low, high)`` pairs), so a given padding means the same zeros everywhere in the library.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn._native import onednn
from jaxcnn.functional._checks import check_channels, check_float, check_rank, normalize_tuple
from jaxcnn.functional.shapes import Padding, conv_output_size, resolve_padding, spatial_params

__all__ = ["conv", "conv_backend", "conv_transpose", "depthwise_conv", "local_conv",
           "separable_conv"]

Array = Any

# Spatial letters for lax dimension numbers; the last ``n`` are used for an n-D convolution.
_SPATIAL_LETTERS = "DHW"


_BACKENDS = ("auto", "xla")
# A JAX user context, not a plain context variable: its value is part of the key of every JAX
# trace and compilation cache, so a function traced under one choice is traced again under the
# other (with a context variable, `jit`, `checkpoint` and `scan` caches would replay the first).
_backend = jax.make_user_context("auto")


def conv_backend(name: str):
    """Choose, while tracing inside this block, who computes :func:`conv` and its gradients.

    ``"auto"`` (the default): 2-D float32 convolutions (grouped and depthwise included) of a
    computation placed on CPU run through oneDNN when ``jaxcnn._native.onednn.available()``
    (ResNet-18 train steps 2.1x faster than plain Flax's, benchmarks/RESULTS.md), and through
    ``lax.conv_general_dilated`` otherwise (other ranks and dtypes, GPU, TPU). ``"xla"``:
    always ``lax.conv_general_dilated``. Either way the results, their types (``vma``,
    sharding) and every JAX transformation are those of ``lax``. The choice is part of JAX's
    cache keys: a jitted function called under another choice is traced again.
    Setting ``JAXCNN_ONEDNN=0`` in the environment turns oneDNN off for the whole process.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> f = jax.jit(conv)
        >>> x = jax.random.normal(jax.random.key(0), (1, 8, 8, 3))
        >>> k = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
        >>> with conv_backend("xla"):
        ...     y_xla = f(x, k)
        ...     print(jax.make_jaxpr(f)(x, k).eqns[0].params["jaxpr"].eqns[0].primitive)
        conv_general_dilated
        >>> print(float(jnp.max(jnp.abs(f(x, k) - y_xla))) < 1e-5)
        True
    """
    if name not in _BACKENDS:
        raise ValueError(f"conv_backend `name` must be one of {_BACKENDS} (oneDNN where it "
                         f"applies, or always XLA), got {name!r}.")
    return _backend(name)


def _placed_on_cpu(*arrays: Array) -> bool:
    """Whether a computation on ``arrays`` runs on CPU: the arrays' own devices when they are
    concrete, else (under ``jit``) the default device, as ``jit`` places it."""
    devices = set()
    for a in arrays:
        if isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer):
            devices |= a.sharding.device_set
    if devices:
        return all(d.platform == "cpu" for d in devices)
    default = jax.config.jax_default_device
    if default is not None:
        return (default if isinstance(default, str) else default.platform) == "cpu"
    return jax.default_backend() == "cpu"


def _use_onednn(n: int, x: Array, kernel: Array) -> bool:
    return (n == 2 and x.dtype == jnp.float32 and kernel.dtype == jnp.float32
            and _backend.value == "auto" and onednn.available() and _placed_on_cpu(x, kernel))


def _dimension_numbers(n: int) -> tuple[str, str, str]:
    sp = _SPATIAL_LETTERS[-n:]
    return f"N{sp}C", f"{sp}IO", f"N{sp}C"


def _check_input(x: Array, kernel: Array, kernel_layout: str, kernel_name: str = "kernel"
                 ) -> int:
    """Validate dtypes and ranks of ``x`` and ``kernel``; return the number of spatial dims."""
    check_float(x, "x")
    check_float(kernel, kernel_name)
    check_rank(kernel, kernel_name, (3, 4, 5), kernel_layout)
    n = np.ndim(kernel) - 2
    if np.ndim(x) == n + 1:
        raise ValueError(
            f"`x` must have a batch axis (N, *spatial, C): got shape {np.shape(x)} for a {n}-D "
            f"`{kernel_name}` of shape {np.shape(kernel)}; for a single example pass `x[None]`."
        )
    check_rank(x, "x", n + 2, f"(N, *spatial, C) to match the {n}-D `{kernel_name}` "
               f"{np.shape(kernel)}")
    return n


def _check_bias(bias: Array | None, allowed: tuple[tuple[int, ...], ...], what: str) -> None:
    if bias is None:
        return
    check_float(bias, "bias")
    if tuple(np.shape(bias)) not in allowed:
        want = " or ".join(str(s) for s in allowed)
        raise ValueError(f"`bias` must have shape {want} ({what}), got {np.shape(bias)}.")


def _promote(*arrays: Array | None) -> tuple[Array | None, ...]:
    # lax convolutions need one dtype; follow jnp promotion (bf16 with bf16 stays bf16).
    dtype = jnp.result_type(*(a for a in arrays if a is not None))
    return tuple(None if a is None else jnp.asarray(a, dtype) for a in arrays)


def _add_bias(y: Array, bias: Array | None) -> Array:
    return y if bias is None else y + bias


def _conv(x, kernel, bias, stride, padding, dilation, groups, kernel_name="kernel"):
    n = _check_input(x, kernel, "(*spatial, C_in // groups, C_out)", kernel_name)
    strides, dilations = spatial_params(stride, dilation, n)
    if not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"`groups` must be a positive int, got {groups!r}.")
    c_in, c_out = x.shape[-1], kernel.shape[-1]
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"`groups`={groups} must divide both the channels of `x` ({c_in}, shape {x.shape}) "
            f"and the output channels `{kernel_name}`.shape[-1] ({c_out}, shape {kernel.shape})."
        )
    check_channels(c_in, kernel.shape[-2] * groups, "x",
                   f"`{kernel_name}`.shape[-2] * groups = {kernel.shape[-2]} * {groups} "
                   f"(`{kernel_name}` shape {kernel.shape})")
    _check_bias(bias, ((c_out,),), "one value per output channel")
    pads = resolve_padding(padding, x.shape[1:-1], kernel.shape[:-2], strides, dilations)
    x, kernel, bias = _promote(x, kernel, bias)
    if _use_onednn(n, x, kernel):
        y = onednn.conv(x, kernel, strides, pads, dilations, groups)
    else:
        y = lax.conv_general_dilated(x, kernel, strides, pads, rhs_dilation=dilations,
                                     dimension_numbers=_dimension_numbers(n),
                                     feature_group_count=groups)
    return _add_bias(y, bias)


def conv(x: Array, kernel: Array, bias: Array | None = None, *, stride: int | tuple = 1,
         padding: Padding = "SAME", dilation: int | tuple = 1, groups: int = 1) -> Array:
    """N-D convolution (cross-correlation, as in every deep-learning library) with groups.

    In 2-D, with stride ``s``, dilation ``d`` and low padding ``p`` (zeros outside ``x``)::

        y[n, i, j, o] = b[o] + sum_{di, dj, c} x[n, s*i + d*di - p, s*j + d*dj - p, c]
                                               * k[di, dj, c, o]

    where ``c`` runs over the ``C_in // groups`` channels of the group of ``o``. Output size
    per dimension: ``floor((W + p_lo + p_hi - d(F - 1) - 1) / s) + 1``. Wraps
    ``lax.conv_general_dilated`` (``feature_group_count=groups``).

    Args:
        x: input ``(N, *spatial, C_in)`` with 1-3 spatial dims; the batch axis is required
            (use ``x[None]`` for a single example).
        kernel: ``(*window, C_in // groups, C_out)`` (HWIO); its rank fixes the spatial rank.
        bias: optional ``(C_out,)``.
        stride: int or one int per spatial dim, >= 1. Default 1.
        padding: ``"SAME"`` (default; output ``ceil(W / s)``, extra zero on the high side),
            ``"VALID"``, ``"CAUSAL"`` (1-D: all ``d(F - 1)`` zeros on the left, WaveNet,
            van den Oord et al. 2016), an int, one int per dim or ``(low, high)`` pairs.
        dilation: kernel (atrous) dilation, int or per dim, >= 1 (Yu & Koltun 2016). Default 1.
        groups: feature groups (Krizhevsky et al. 2012; ResNeXt, Xie et al. 2017); must
            divide ``C_in`` and ``C_out``. ``groups=C_in`` is a depthwise convolution.

    Returns:
        ``(N, *out_spatial, C_out)`` in the promoted dtype of ``x``, ``kernel`` and ``bias``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.ones((2, 8, 8, 3))
        >>> conv(x, jnp.ones((3, 3, 3, 16)), stride=2).shape
        (2, 4, 4, 16)
        >>> conv(x, jnp.ones((3, 3, 1, 6)), padding="VALID", groups=3).shape
        (2, 6, 6, 6)
        >>> print(conv(jnp.ones((1, 4, 1)), jnp.ones((2, 1, 1)), padding="CAUSAL")[0, :, 0])
        [1. 2. 2. 2.]
    """
    return _conv(x, kernel, bias, stride, padding, dilation, groups)


def conv_transpose(x: Array, kernel: Array, bias: Array | None = None, *,
                   stride: int | tuple = 1, padding: Padding = "SAME",
                   dilation: int | tuple = 1, output_padding: int | tuple = 0) -> Array:
    """Transposed convolution: the gradient of :func:`conv` with respect to its input.

    Also called deconvolution or fractionally-strided convolution (Zeiler et al. 2010;
    Dumoulin & Visin 2016). Each input pixel scatters a copy of the kernel, weighted by its
    value, into the output; in 1-D with stride ``s``, dilation ``d`` and low padding ``p``::

        y[n, s*i + d*di - p, o] += x[n, i, c] * k[di, c, o]      (then + b[o])

    so ``conv_transpose(y, k) == vjp(lambda x: conv(x, k'), x)(y)`` with
    ``k' = jnp.swapaxes(k, -1, -2)`` and the same stride, padding and dilation: the kernel is
    *not* flipped in this scatter form (the gather form used internally flips it). This is
    PyTorch's ``ConvTranspose`` (our kernel is its weight permuted to ``(*window, I, O)``) and
    Flax's ``ConvTranspose(transpose_kernel=True)`` with in/out swapped; Flax's default
    ``transpose_kernel=False`` equals ours with the kernel flipped spatially.

    Output size per dimension, for input size ``W``, kernel ``F`` and padding
    ``(p_lo, p_hi)`` of the forward conv: ``(W - 1)*s - p_lo - p_hi + d(F - 1) + 1 +
    output_padding``. ``"SAME"`` gives ``W*s`` (the gradient of a SAME conv on a ``W*s``
    input) and ``"VALID"`` gives ``(W - 1)*s + d(F - 1) + 1`` (padding 0; Flax's VALID
    gives ``max(W*s, ...)`` instead, the two differ only when ``d(F - 1) + 1 < s``).

    Args:
        x: input ``(N, *spatial, C_in)`` with 1-3 spatial dims.
        kernel: ``(*window, C_in, C_out)`` with ``I`` the channels of ``x`` (Flax layout).
        bias: optional ``(C_out,)``.
        stride: upsampling factor, int or per dim, >= 1. Default 1.
        padding: the padding of the forward conv, in any form :func:`conv` accepts; it is
            cropped from the output. Default ``"SAME"``.
        dilation: kernel dilation, int or per dim, >= 1. Default 1.
        output_padding: extra rows added on the high side, int or per dim, each
            ``< max(stride, dilation)`` (PyTorch's rule); picks which of the input sizes
            that the forward conv maps to the same output size is produced. Default 0.

    Returns:
        ``(N, *out_spatial, C_out)`` in the promoted dtype of the inputs.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.ones((1, 4, 4, 8))
        >>> conv_transpose(x, jnp.ones((3, 3, 8, 2)), stride=2).shape
        (1, 8, 8, 2)
        >>> conv_transpose(x, jnp.ones((3, 3, 8, 2)), stride=2, padding=1,
        ...                output_padding=1).shape
        (1, 8, 8, 2)
        >>> print(conv_transpose(jnp.ones((1, 2, 1)), jnp.ones((3, 1, 1)), stride=2,
        ...                      padding="VALID")[0, :, 0])
        [1. 1. 2. 1. 1.]
    """
    n = _check_input(x, kernel, "(*window, C_in, C_out)")
    strides, dilations = spatial_params(stride, dilation, n)
    out_pads = normalize_tuple(output_padding, n, "output_padding", minimum=0)
    for op, s, d in zip(out_pads, strides, dilations, strict=True):
        if op >= max(s, d):
            raise ValueError(
                f"`output_padding` must be smaller than `stride` or `dilation` in every "
                f"dimension, got output_padding={output_padding!r}, stride={stride!r}, "
                f"dilation={dilation!r}."
            )
    check_channels(x.shape[-1], kernel.shape[-2], "x",
                   f"`kernel`.shape[-2] (`kernel` shape {kernel.shape})")
    _check_bias(bias, ((kernel.shape[-1],),), "one value per output channel")
    sizes, window = x.shape[1:-1], kernel.shape[:-2]
    effs = [d * (f - 1) + 1 for f, d in zip(window, dilations, strict=True)]
    same = isinstance(padding, str) and padding.upper() == "SAME"
    # Forward-conv input sizes: SAME pads are defined for a W*s input; for the other forms the
    # pads don't depend on size and the VALID size always fits the kernel.
    fwd_sizes = [w * s if same else (w - 1) * s + e
                 for w, s, e in zip(sizes, strides, effs, strict=True)]
    pads = resolve_padding(padding, fwd_sizes, window, strides, dilations)
    gather_pads = []
    out_sizes = []
    for w, s, e, (lo, hi), op in zip(sizes, strides, effs, pads, out_pads, strict=True):
        out = (w * s if same else (w - 1) * s - lo - hi + e) + op
        out_sizes.append(out)
        # Gather form over the s-dilated input: these pads make the flipped kernel read
        # exactly the rows the scatter form writes to; negative pads crop (lax allows it).
        lo_g = e - 1 - lo
        gather_pads.append((lo_g, out + e - 2 - lo_g - (w - 1) * s))
    if min(out_sizes) < 1:
        raise ValueError(
            f"`padding`={padding!r} crops more than the full output of the transposed conv: "
            f"input {x.shape}, `kernel` {kernel.shape}, stride {strides}, dilation {dilations} "
            f"give output spatial size {tuple(out_sizes)}."
        )
    x, kernel, bias = _promote(x, kernel, bias)
    flipped = lax.rev(kernel, tuple(range(n)))
    y = lax.conv_general_dilated(x, flipped, (1,) * n, gather_pads, lhs_dilation=strides,
                                 rhs_dilation=dilations,
                                 dimension_numbers=_dimension_numbers(n))
    return _add_bias(y, bias)


def _check_depthwise_kernel(x: Array, kernel: Array, name: str) -> None:
    c = np.shape(x)[-1]
    if np.ndim(kernel) >= 2 and (kernel.shape[-2] != 1 or kernel.shape[-1] % c):
        raise ValueError(
            f"`{name}` must have shape (*window, 1, C * depth_multiplier) with C = {c} channels "
            f"of `x` (shape {np.shape(x)}), got {np.shape(kernel)}."
        )


def depthwise_conv(x: Array, kernel: Array, bias: Array | None = None, *,
                   stride: int | tuple = 1, padding: Padding = "SAME",
                   dilation: int | tuple = 1) -> Array:
    """Depthwise convolution: each input channel convolved with its own filters.

    Output channel ``c * M + m`` (``M`` = depth multiplier) sees only input channel ``c``::

        y[n, i, j, c*M + m] = b[c*M + m] + sum_{di, dj} x[n, s*i + d*di - p, s*j + d*dj - p, c]
                                                      * k[di, dj, 0, c*M + m]

    This is exactly ``conv(x, kernel, bias, groups=C)`` (MobileNet, Howard et al. 2017); the
    kernel is Keras' ``DepthwiseConv2D`` kernel ``(*window, C, M)`` reshaped to
    ``(*window, 1, C * M)``.

    Args:
        x: input ``(N, *spatial, C)`` with 1-3 spatial dims.
        kernel: ``(*window, 1, C * depth_multiplier)``.
        bias: optional ``(C * depth_multiplier,)``.
        stride: int or per dim, >= 1. Default 1.
        padding: any form :func:`conv` accepts. Default ``"SAME"``.
        dilation: int or per dim, >= 1. Default 1.

    Returns:
        ``(N, *out_spatial, C * depth_multiplier)``.

    Example:
        >>> import jax.numpy as jnp
        >>> depthwise_conv(jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 1, 8)), stride=2).shape
        (2, 4, 4, 8)
    """
    _check_depthwise_kernel(x, kernel, "kernel")
    return _conv(x, kernel, bias, stride, padding, dilation, np.shape(x)[-1])


def separable_conv(x: Array, depthwise_kernel: Array, pointwise_kernel: Array,
                   bias: Array | None = None, *, stride: int | tuple = 1,
                   padding: Padding = "SAME", dilation: int | tuple = 1) -> Array:
    """Depthwise-separable convolution: a depthwise conv followed by a 1x1 pointwise conv.

    Keras ``SeparableConv2D`` semantics (Xception, Chollet 2017): stride, padding and dilation
    apply to the depthwise step, the pointwise step is a per-pixel matrix product, and the
    single bias comes after it::

        y = depthwise_conv(x, k_dw) @ k_pw + b

    Args:
        x: input ``(N, *spatial, C)`` with 1-3 spatial dims.
        depthwise_kernel: ``(*window, 1, C * depth_multiplier)`` (see :func:`depthwise_conv`).
        pointwise_kernel: ``(C * depth_multiplier, C_out)`` or ``(1, ..., 1,
            C * depth_multiplier, C_out)`` with one 1 per spatial dim.
        bias: optional ``(C_out,)``.
        stride: int or per dim, >= 1. Default 1.
        padding: any form :func:`conv` accepts. Default ``"SAME"``.
        dilation: int or per dim, >= 1. Default 1.

    Returns:
        ``(N, *out_spatial, C_out)``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.ones((2, 8, 8, 4))
        >>> separable_conv(x, jnp.ones((3, 3, 1, 4)), jnp.ones((4, 16))).shape
        (2, 8, 8, 16)
    """
    _check_depthwise_kernel(x, depthwise_kernel, "depthwise_kernel")
    y = _conv(x, depthwise_kernel, None, stride, padding, dilation, np.shape(x)[-1],
              kernel_name="depthwise_kernel")
    check_float(pointwise_kernel, "pointwise_kernel")
    n, pw_shape = y.ndim - 2, np.shape(pointwise_kernel)
    if not (len(pw_shape) == 2 or (len(pw_shape) == n + 2 and set(pw_shape[:n]) == {1})):
        raise ValueError(
            f"`pointwise_kernel` must have shape (C * depth_multiplier, C_out) or "
            f"{(1,) * n + ('C * depth_multiplier', 'C_out')}, got {pw_shape}."
        )
    if pw_shape[-2] != y.shape[-1]:
        raise ValueError(
            f"channel mismatch: `pointwise_kernel` (shape {pw_shape}) expects {pw_shape[-2]} "
            f"input channels but `depthwise_kernel` (shape {np.shape(depthwise_kernel)}) "
            f"produces {y.shape[-1]}."
        )
    _check_bias(bias, ((pw_shape[-1],),), "one value per output channel")
    y, pw, bias = _promote(y, jnp.reshape(pointwise_kernel, pw_shape[-2:]), bias)
    return _add_bias(y @ pw, bias)


def local_conv(x: Array, kernel: Array, bias: Array | None = None, *,
               window: int | tuple, stride: int | tuple = 1, padding: Padding = "VALID",
               dilation: int | tuple = 1) -> Array:
    """Locally connected layer: a convolution with unshared weights at every output position.

    In 2-D, with patch ``P[n, i, j]`` the window of ``x`` read by output ``(i, j)``
    (zero padded, strided and dilated exactly as in :func:`conv`)::

        y[n, i, j, o] = b[i, j, o] + sum_q flat(P[n, i, j])[q] * k[i, j, q, o]

    (or ``b[o]`` for a shared bias).

    The patch is flattened **channel-major**, in ``(C_in, *window)`` order: ``q = c * prod(window)
    + di * window[1] + dj``. This is the order ``lax.conv_general_dilated_local`` uses, so the
    kernel layout is Flax ``nn.ConvLocal``'s (Taigman et al. 2014, DeepFace). A conv kernel
    ``k_conv`` of shape ``(*window, C_in, C_out)`` becomes, at every position,
    ``jnp.moveaxis(k_conv, -2, 0).reshape(-1, C_out)``.

    Args:
        x: input ``(N, *spatial, C_in)`` with 1-3 spatial dims.
        kernel: ``(*out_spatial, prod(window) * C_in, C_out)``; ``out_spatial`` must match the
            output size given by ``window``, ``stride``, ``padding`` and ``dilation``.
        bias: optional, ``(*out_spatial, C_out)`` (unshared) or ``(C_out,)`` (shared).
        window: receptive-field size, int or per dim (the kernel only stores it flattened).
        stride: int or per dim, >= 1. Default 1.
        padding: any form :func:`conv` accepts. Default ``"VALID"``.
        dilation: window dilation, int or per dim, >= 1. Default 1.

    Returns:
        ``(N, *out_spatial, C_out)``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.ones((2, 6, 6, 3))
        >>> local_conv(x, jnp.ones((4, 4, 3 * 3 * 3, 5)), window=3).shape
        (2, 4, 4, 5)
    """
    n = _check_input(x, kernel, "(*out_spatial, prod(window) * C_in, C_out)")
    window = normalize_tuple(window, n, "window")
    strides, dilations = spatial_params(stride, dilation, n)
    pads = resolve_padding(padding, x.shape[1:-1], window, strides, dilations)
    out_spatial = tuple(conv_output_size(w, f, s, p, d) for w, f, s, p, d
                        in zip(x.shape[1:-1], window, strides, pads, dilations, strict=True))
    setting = (f"`x` shape {x.shape}, `window`={window}, stride {strides}, padding {pads}, "
               f"dilation {dilations}")
    if kernel.shape[:-2] != out_spatial:
        raise ValueError(
            f"`kernel`.shape[:-2] must equal the output spatial shape {out_spatial} given by "
            f"{setting}; got `kernel` shape {kernel.shape}."
        )
    patch = math.prod(window) * x.shape[-1]
    if kernel.shape[-2] != patch:
        raise ValueError(
            f"`kernel`.shape[-2] must equal prod(window) * C_in = {math.prod(window)} * "
            f"{x.shape[-1]} = {patch} for {setting}; got `kernel` shape {kernel.shape}."
        )
    c_out = kernel.shape[-1]
    _check_bias(bias, (out_spatial + (c_out,), (c_out,)), "unshared or shared")
    x, kernel, bias = _promote(x, kernel, bias)
    y = lax.conv_general_dilated_local(x, kernel, strides, pads, window, rhs_dilation=dilations,
                                       dimension_numbers=_dimension_numbers(n))
    return _add_bias(y, bias)
