"""Where a ResNet-18 train step spends its time: each convolution, XLA vs PyTorch (oneDNN).

For every distinct 3x3 convolution of ResNet-18 with the CIFAR stem, times the three
operations a training step runs: the forward convolution, the gradient with respect to the
input, and the gradient with respect to the kernel. Both frameworks run in this one process,
alternating (JAX, then PyTorch with ``channels_last``, per repetition), float32, on all cores;
each figure is the median over ``--repeats`` calls after a warm-up call.

A third JAX column computes the kernel gradient as ``kh * kw`` plain matrix products
``x_shift(NHW, C)^T @ g(NHW, K)`` instead of XLA's backward-filter convolution, to show
whether the matmul path (see issue 7) is worth it.

    python -m benchmarks.conv_ops                 # batch 128, 5 repeats
    python -m benchmarks.conv_ops --batch 32 --repeats 3

Needs ``torch`` (``pip install -e '.[bench]'``); without it only the JAX columns are shown.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# (spatial size, in channels, out channels, stride) of ResNet-18/CIFAR's 3x3 convolutions.
RESNET18_CIFAR_CONVS = [
    (32, 64, 64, 1), (32, 64, 128, 2), (16, 128, 128, 1), (16, 128, 256, 2),
    (8, 256, 256, 1), (8, 256, 512, 2), (4, 512, 512, 1),
]
# How many times each shape occurs in one ResNet-18/CIFAR forward pass (stem conv excluded).
OCCURRENCES = [4, 1, 3, 1, 3, 1, 3]


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def kernel_grad_by_matmul(x, g, kernel_shape, stride, pad):
    """Kernel gradient of a 2-D NHWC convolution as ``kh * kw`` matrix products.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
        >>> w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
        >>> conv = lambda w: lax.conv_general_dilated(
        ...     x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        >>> g = jnp.ones((2, 6, 6, 4))
        >>> ref = jax.vjp(conv, w)[1](g)[0]
        >>> bool(jnp.allclose(kernel_grad_by_matmul(x, g, w.shape, 1, 1), ref, atol=1e-4))
        True
    """
    kh, kw, c, k = kernel_shape
    n, ho, wo, _ = g.shape
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    g2 = g.reshape(-1, k)
    rows = []
    for i in range(kh):
        for j in range(kw):
            limit = (n, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, c)
            shifted = lax.slice(xp, (0, i, j, 0), limit, (1, stride, stride, 1))
            rows.append(lax.dot_general(shifted.reshape(-1, c), g2, (((0,), (0,)), ((), ()))))
    return jnp.stack(rows).reshape(kh, kw, c, k)


def _jax_ops(batch, size, cin, cout, stride, rng):
    x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) * 0.05, jnp.float32)
    out = (size + 2 - 3) // stride + 1
    g = jnp.asarray(rng.normal(size=(batch, out, out, cout)), jnp.float32)

    def conv(x, w):
        return lax.conv_general_dilated(x, w, (stride, stride), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    fwd = jax.jit(conv)
    bwd_x = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
    bwd_w = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    bwd_w_mm = jax.jit(lambda x, g: kernel_grad_by_matmul(x, g, w.shape, stride, 1))
    np.testing.assert_allclose(np.asarray(bwd_w_mm(x, g)), np.asarray(bwd_w(x, w, g)),
                               rtol=1e-3, atol=1e-2)
    return {
        "fwd": lambda: fwd(x, w).block_until_ready(),
        "bwd_x": lambda: bwd_x(x, w, g).block_until_ready(),
        "bwd_w": lambda: bwd_w(x, w, g).block_until_ready(),
        "bwd_w_mm": lambda: bwd_w_mm(x, g).block_until_ready(),
    }


def _torch_ops(torch, batch, size, cin, cout, stride):
    cl = torch.channels_last
    x = torch.randn(batch, cin, size, size).contiguous(memory_format=cl)
    w = (torch.randn(cout, cin, 3, 3) * 0.05).contiguous(memory_format=cl)
    out = (size + 2 - 3) // stride + 1
    g = torch.randn(batch, cout, out, out).contiguous(memory_format=cl)
    grad = torch.nn.grad
    return {
        "fwd": lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=1),
        "bwd_x": lambda: grad.conv2d_input(x.shape, w, g, stride=stride, padding=1),
        "bwd_w": lambda: grad.conv2d_weight(x, w.shape, g, stride=stride, padding=1),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(len(os.sched_getaffinity(0)))  # as many threads as XLA uses
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    header = ("| conv (HxW, Cin->Cout, stride) x count | XLA fwd | XLA dx | XLA dW | XLA dW matmul "
              "| torch fwd | torch dx | torch dW | XLA/torch (3 ops) |")
    print(f"batch {args.batch}, float32, median of {args.repeats}, milliseconds per call\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    totals = np.zeros(7)
    for (size, cin, cout, stride), count in zip(RESNET18_CIFAR_CONVS, OCCURRENCES, strict=True):
        jops = _jax_ops(args.batch, size, cin, cout, stride, rng)
        tops = _torch_ops(torch, args.batch, size, cin, cout, stride) if torch else {}
        row = []
        for name in ("fwd", "bwd_x", "bwd_w", "bwd_w_mm"):
            row.append(_median_ms(jops[name], args.repeats))
            if name in tops:  # alternate frameworks op by op
                row.append(_median_ms(tops[name], args.repeats))
        jax_ms = [row[0], row[2], row[4], row[6]] if torch else row
        torch_ms = [row[1], row[3], row[5]] if torch else [float("nan")] * 3
        cells = jax_ms + torch_ms
        totals += count * np.asarray(cells)
        ratio = sum(jax_ms[:3]) / sum(torch_ms)
        print(f"| {size}x{size}, {cin}->{cout}, s{stride} x{count} | "
              + " | ".join(f"{v:.0f}" for v in cells) + f" | {ratio:.2f} |")
    ratio = totals[:3].sum() / totals[4:].sum()
    print("| **ResNet-18 total (x count)** | " + " | ".join(f"{v:.0f}" for v in totals)
          + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
