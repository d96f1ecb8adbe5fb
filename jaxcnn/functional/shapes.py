"""Output-size arithmetic and padding resolution shared by convolution and pooling.

For one spatial dimension of size ``W``, a window (kernel) of size ``F`` with dilation ``D``,
stride ``S`` and symmetric zero padding ``P``::

    out = floor((W - D * (F - 1) - 1 + 2 * P) / S) + 1

``resolve_padding`` turns every padding form the library accepts into explicit
``(low, high)`` pairs, so each function validates and pads in exactly one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from jaxcnn.functional._checks import normalize_tuple

Padding = Union[str, int, Sequence[int], Sequence[tuple[int, int]]]  # noqa: UP007

_PADDING_STRINGS = ("SAME", "VALID", "CAUSAL")


def _effective(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | tuple[int, int] = 0,
                     dilation: int = 1) -> int:
    """Spatial output size of a convolution along one dimension.

    ``floor((W - D(F - 1) - 1 + 2P) / S) + 1``; ``padding`` is ``P`` on each side, or a
    ``(low, high)`` pair for asymmetric padding.

    Example:
        >>> conv_output_size(227, 11, stride=4)          # AlexNet conv1
        55
        >>> conv_output_size(32, 3, padding=1)           # "same" 3x3
        32
        >>> conv_output_size(7, 3, dilation=2)
        3
    """
    for arg, val in (("size", size), ("kernel", kernel), ("stride", stride),
                     ("dilation", dilation)):
        if int(val) < 1:
            raise ValueError(f"`{arg}` must be >= 1, got {val}.")
    lo, hi = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if lo < 0 or hi < 0:
        raise ValueError(f"`padding` must be non-negative, got {padding!r}.")
    eff = _effective(kernel, dilation)
    padded = size + lo + hi
    if padded < eff:
        raise ValueError(
            f"kernel of size {kernel} (dilation {dilation}, effective {eff}) is larger than the "
            f"padded input ({size} + {lo} + {hi} = {padded}); use a smaller kernel or more padding."
        )
    return (padded - eff) // stride + 1


def pool_output_size(size: int, window: int, stride: int | None = None,
                     padding: int | tuple[int, int] = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Spatial output size of a pooling window along one dimension.

    Same formula as :func:`conv_output_size`; ``stride`` defaults to ``window`` (non-overlapping
    pooling), and ``ceil_mode=True`` rounds up as PyTorch's ``ceil_mode`` does (the last window
    must still start inside the input or the left padding).

    Example:
        >>> pool_output_size(224, 2)
        112
        >>> pool_output_size(55, 3, stride=2)            # AlexNet overlapping pooling
        27
        >>> pool_output_size(5, 2, ceil_mode=True)
        3
    """
    stride = window if stride is None else stride
    out = conv_output_size(size, window, stride, padding, dilation)
    if ceil_mode:
        lo, hi = (padding, padding) if isinstance(padding, int) else tuple(padding)
        eff = _effective(window, dilation)
        rem = (size + lo + hi - eff) % stride
        if rem and out * stride < size + lo:
            out += 1
    return out


def resolve_padding(padding: Padding, in_sizes: Sequence[int], kernel_sizes: Sequence[int],
                    strides: Sequence[int], dilations: Sequence[int], name: str = "padding"
                    ) -> tuple[tuple[int, int], ...]:
    """Explicit ``(low, high)`` zero padding per spatial dimension, validated.

    Accepts ``"SAME"`` (XLA/TF convention: output ``ceil(W / S)``, the extra pixel of an odd
    total on the high side), ``"VALID"``, ``"CAUSAL"`` (1-D only: all ``D(F-1)`` on the left),
    an int (the same on every side), a sequence of ints (one per dimension, symmetric) or a
    sequence of ``(low, high)`` pairs. Raises when the kernel does not fit the padded input.

    Example:
        >>> resolve_padding("SAME", (8, 8), (3, 3), (2, 2), (1, 1))
        ((0, 1), (0, 1))
        >>> resolve_padding(1, (8,), (3,), (1,), (1,))
        ((1, 1),)
        >>> resolve_padding("CAUSAL", (10,), (3,), (1,), (2,))
        ((4, 0),)
    """
    n = len(in_sizes)
    effs = [_effective(k, d) for k, d in zip(kernel_sizes, dilations, strict=True)]
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in _PADDING_STRINGS:
            raise ValueError(
                f"`{name}` must be one of {_PADDING_STRINGS}, an int or (low, high) pairs, "
                f"got {padding!r}."
            )
        if mode == "VALID":
            pads = tuple((0, 0) for _ in range(n))
        elif mode == "CAUSAL":
            if n != 1:
                raise ValueError(
                    f"`{name}`='CAUSAL' is only defined for 1-D inputs, got {n} spatial dims."
                )
            pads = ((effs[0] - 1, 0),)
        else:
            pads = []
            for size, eff, s in zip(in_sizes, effs, strides, strict=True):
                out = -(-size // s)
                total = max((out - 1) * s + eff - size, 0)
                pads.append((total // 2, total - total // 2))
            pads = tuple(pads)
    elif isinstance(padding, int):
        pads = ((padding, padding),) * n
    else:
        items = list(padding)
        if len(items) != n:
            raise ValueError(
                f"`{name}` must have one entry per spatial dimension ({n}), got {padding!r}."
            )
        pads = []
        for item in items:
            if isinstance(item, int):
                pads.append((item, item))
            else:
                pair = tuple(int(v) for v in item)
                if len(pair) != 2:
                    raise ValueError(f"`{name}` entries must be ints or (low, high) pairs, "
                                     f"got {item!r} in {padding!r}.")
                pads.append(pair)
        pads = tuple(pads)
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ValueError(f"`{name}` must be non-negative, got {padding!r}.")
    for dim, (size, eff, k, (lo, hi)) in enumerate(zip(in_sizes, effs, kernel_sizes, pads,
                                                       strict=True)):
        if size + lo + hi < eff:
            raise ValueError(
                f"window/kernel size {k} (effective {eff} with dilation) is larger than the "
                f"padded input in spatial dim {dim}: input {tuple(in_sizes)}, `{name}`={padding!r} "
                f"gives {size + lo + hi}; use a smaller kernel, more padding or a larger input."
            )
    return pads


def spatial_params(stride, dilation, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validated ``(strides, dilations)`` tuples of length ``n`` (both must be >= 1).

    Example:
        >>> spatial_params(2, 1, 2)
        ((2, 2), (1, 1))
    """
    return normalize_tuple(stride, n, "stride"), normalize_tuple(dilation, n, "dilation")
