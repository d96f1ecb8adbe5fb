"""Output-size arithmetic and padding resolution against brute-force counting."""

import numpy as np
import pytest

import jaxcnn.functional as F
from jaxcnn.functional.shapes import resolve_padding


def _count_windows(size, kernel, stride, lo, hi, dilation):
    """Number of window start positions that fit, counted one by one."""
    eff = dilation * (kernel - 1) + 1
    return sum(1 for start in range(0, size + lo + hi, stride) if start + eff <= size + lo + hi)


@pytest.mark.parametrize("size", [1, 5, 8, 13])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv_output_size_matches_counting(size, kernel, stride, dilation, padding):
    eff = dilation * (kernel - 1) + 1
    if size + 2 * padding < eff:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.conv_output_size(size, kernel, stride, padding, dilation)
        return
    expected = _count_windows(size, kernel, stride, padding, padding, dilation)
    assert F.conv_output_size(size, kernel, stride, padding, dilation) == expected


def test_textbook_examples():
    # CS231n: 7x7 input, 3x3 filter, stride 2, no padding -> 3; AlexNet conv1 -> 55.
    assert F.conv_output_size(7, 3, stride=2) == 3
    assert F.conv_output_size(227, 11, stride=4) == 55
    assert F.pool_output_size(55, 3, stride=2) == 27
    assert F.pool_output_size(224, 2) == 112


@pytest.mark.parametrize("size,window,stride,pad", [(5, 2, 2, 0), (6, 3, 2, 1), (7, 2, 3, 0),
                                                    (10, 3, 3, 1), (4, 2, 2, 0)])
def test_pool_ceil_mode_matches_pytorch_rule(size, window, stride, pad):
    # PyTorch: out = ceil((W + 2P - K) / S) + 1, minus one if the last window starts in the
    # right padding.
    out = -(-(size + 2 * pad - window) // stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    assert F.pool_output_size(size, window, stride, pad, ceil_mode=True) == out


@pytest.mark.parametrize("size", [1, 4, 7, 8])
@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_gives_ceil_output(size, kernel, stride):
    ((lo, hi),) = resolve_padding("SAME", (size,), (kernel,), (stride,), (1,))
    assert F.conv_output_size(size, kernel, stride, (lo, hi)) == -(-size // stride)
    assert hi - lo in (0, 1)  # extra pixel, if any, on the high side (XLA / TF convention)


def test_padding_forms_agree():
    pairs = resolve_padding(((1, 2), (0, 3)), (8, 8), (3, 3), (1, 1), (1, 1))
    assert pairs == ((1, 2), (0, 3))
    assert resolve_padding([1, 2], (8, 8), (3, 3), (1, 1), (1, 1)) == ((1, 1), (2, 2))
    assert resolve_padding("valid", (8,), (3,), (1,), (1,)) == ((0, 0),)


@pytest.mark.parametrize("padding,match", [
    ("FULL", "must be one of"),
    (-1, "non-negative"),
    ([1], "one entry per spatial dimension"),
    ("CAUSAL", "only defined for 1-D"),
])
def test_padding_errors(padding, match):
    with pytest.raises(ValueError, match=match):
        resolve_padding(padding, (8, 8), (3, 3), (1, 1), (1, 1))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"larger than the padded input.*\(3, 3\)"):
        resolve_padding("VALID", (3, 3), (5, 5), (1, 1), (1, 1))


@pytest.mark.parametrize("arg", ["stride", "kernel", "dilation", "size"])
def test_non_positive_arguments_are_named(arg):
    kwargs = dict(size=8, kernel=3, stride=1, dilation=1)
    kwargs[arg] = 0
    with pytest.raises(ValueError, match=arg):
        F.conv_output_size(**kwargs)


def test_count_params_on_abstract_and_concrete_trees():
    import jax
    import jax.numpy as jnp

    import jaxcnn

    abstract = jax.ShapeDtypeStruct((10, 2), jnp.float32)
    tree = {"a": jnp.ones((3, 3, 1, 6)), "b": [np.zeros(6), abstract]}
    assert jaxcnn.count_params(tree) == 54 + 6 + 20
