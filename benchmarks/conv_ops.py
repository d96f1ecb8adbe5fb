"""Where a ResNet-18 train step spends its time: each convolution, XLA vs oneDNN vs PyTorch.

For every distinct convolution of ResNet-18 with the CIFAR stem (3x3, the stem and the 1x1
projection shortcuts), times the three operations a training step runs: the forward
convolution, the gradient with respect to the input and the gradient with respect to the
kernel, computed by

* XLA: ``lax.conv_general_dilated`` and its ``vjp`` (what plain Flax runs),
* jaxcnn: :func:`jaxcnn.functional.conv` and its ``vjp`` (oneDNN on this CPU when
  ``jaxcnn._native.onednn.available()``, otherwise XLA again: the header says which),
* PyTorch with ``channels_last`` (oneDNN inside), when ``torch`` is installed.

All in this one process, alternating op by op, float32, on all cores; each figure is the
median over ``--repeats`` calls after a warm-up call. Each JAX operation is one jitted
function; jaxcnn's results are checked against XLA's first.

    python -m benchmarks.conv_ops                 # batch 128, 5 repeats
    python -m benchmarks.conv_ops --batch 32 --repeats 3
    python -m benchmarks.conv_ops --accuracy      # errors against a float64 reference
    python -m benchmarks.conv_ops --grouped       # depthwise and grouped, XLA vs jaxcnn
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn import functional as F
from jaxcnn._native import onednn

# (spatial size, in channels, out channels, kernel size, stride) of ResNet-18/CIFAR's
# convolutions, and how many times each occurs in one forward pass.
RESNET18_CIFAR_CONVS = [
    (32, 3, 64, 3, 1), (32, 64, 64, 3, 1), (32, 64, 128, 3, 2), (32, 64, 128, 1, 2),
    (16, 128, 128, 3, 1), (16, 128, 256, 3, 2), (16, 128, 256, 1, 2), (8, 256, 256, 3, 1),
    (8, 256, 512, 3, 2), (8, 256, 512, 1, 2), (4, 512, 512, 3, 1),
]
OCCURRENCES = [1, 4, 1, 1, 3, 1, 1, 3, 1, 1, 3]
OPS = ("fwd", "dx", "dW")
# (batch, spatial size, channels, kernel size, stride, groups): depthwise convolutions of
# MobileNet/Xception-like networks and a ResNeXt-like grouped one, where XLA's CPU
# convolution is slowest.
GROUPED_CONVS = [
    (32, 56, 128, 3, 1, 128), (32, 28, 256, 3, 2, 256), (32, 19, 728, 3, 1, 728),
    (64, 32, 64, 3, 1, 4),
]


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _jax_ops(conv, x, w, g) -> dict[str, Callable[[], object]]:
    fwd = jax.jit(conv)
    bwd_x = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
    bwd_w = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    return {"fwd": lambda: fwd(x, w).block_until_ready(),
            "dx": lambda: bwd_x(x, w, g).block_until_ready(),
            "dW": lambda: bwd_w(x, w, g).block_until_ready()}


def _torch_ops(torch, x, w, g, stride, pad) -> dict[str, Callable[[], object]]:
    cl = torch.channels_last
    # np.array: a writable copy (JAX's arrays are read-only; torch warns about those)
    x = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    w = torch.from_numpy(np.array(w)).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    g = torch.from_numpy(np.array(g)).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    grad = torch.nn.grad
    return {"fwd": lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=pad),
            "dx": lambda: grad.conv2d_input(x.shape, w, g, stride=stride, padding=pad),
            "dW": lambda: grad.conv2d_weight(x, w.shape, g, stride=stride, padding=pad)}


def measure(batch: int, repeats: int, shapes: Sequence[tuple] = tuple(RESNET18_CIFAR_CONVS),
            torch=None) -> list[dict]:
    """Time every conv of ``shapes``; one row per shape with ``{backend: {op: ms}}``.

    Example:
        >>> rows = measure(2, 1, [(8, 3, 4, 3, 1)])
        >>> sorted(rows[0]["ms"]), sorted(rows[0]["ms"]["xla"])
        (['jaxcnn', 'xla'], ['dW', 'dx', 'fwd'])
    """
    rng = np.random.default_rng(0)
    rows = []
    for size, cin, cout, k, stride in shapes:
        pad = k // 2
        x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
        w = jnp.asarray(rng.normal(size=(k, k, cin, cout)) * 0.05, jnp.float32)
        out = (size + 2 * pad - k) // stride + 1
        g = jnp.asarray(rng.normal(size=(batch, out, out, cout)), jnp.float32)

        def xla(x, w, stride=stride, pad=pad):
            return lax.conv_general_dilated(x, w, (stride, stride), ((pad, pad), (pad, pad)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def ours(x, w, stride=stride, pad=pad):
            return F.conv(x, w, stride=stride, padding=pad)

        backends = {"xla": _jax_ops(xla, x, w, g), "jaxcnn": _jax_ops(ours, x, w, g)}
        for op in OPS:  # same results before timing anything
            want, got = backends["xla"][op](), backends["jaxcnn"][op]()
            # float32 sums of up to 131,072 terms (the stem's dW): each backend is up to
            # 1.7e-5 of the scale away from float64 (`--accuracy`), so they differ by more.
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0,
                                       atol=5e-5 * max(1.0, float(jnp.abs(want).max())))
        if torch is not None:
            backends["torch"] = _torch_ops(torch, x, w, g, stride, pad)
        ms = {name: {} for name in backends}
        for op in OPS:  # alternate the backends op by op
            for name, ops in backends.items():
                ms[name][op] = _median_ms(ops[op], repeats)
        rows.append({"shape": (size, cin, cout, k, stride), "ms": ms})
    return rows


def accuracy(batch: int, shapes: Sequence[tuple] = tuple(RESNET18_CIFAR_CONVS)) -> str:
    """Markdown: each backend's max error against float64, relative to the output's scale.

    The float64 reference is XLA's convolution with ``jax_enable_x64`` (exact products,
    float64 sums), on the same float32 inputs.

    Example:
        >>> row = accuracy(2, [(8, 3, 4, 3, 1)]).splitlines()[-1].split("|")[2:-1]
        >>> all(float(e) < 1e-5 for e in row)
        True
    """
    rng = np.random.default_rng(0)
    header = ("| conv (HxW, Cin->Cout, k, stride) | "
              + " | ".join(f"{n} {op}" for n in ("XLA", "jaxcnn") for op in OPS) + " |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for size, cin, cout, k, stride in shapes:
        pad = k // 2
        out = (size + 2 * pad - k) // stride + 1
        x = rng.normal(size=(batch, size, size, cin)).astype(np.float32)
        w = (rng.normal(size=(k, k, cin, cout)) * 0.05).astype(np.float32)
        g = rng.normal(size=(batch, out, out, cout)).astype(np.float32)

        def xla(x, w, stride=stride, pad=pad):
            return lax.conv_general_dilated(x, w, (stride, stride), ((pad, pad), (pad, pad)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def ours(x, w, stride=stride, pad=pad):
            return F.conv(x, w, stride=stride, padding=pad)

        def three(conv, x, w, g):
            return (conv(x, w), jax.vjp(lambda x: conv(x, w), x)[1](g)[0],
                    jax.vjp(lambda w: conv(x, w), w)[1](g)[0])

        with jax.enable_x64(True):
            ref = [np.asarray(r) for r in jax.jit(lambda *a: three(xla, *a))(
                *(jnp.asarray(a, jnp.float64) for a in (x, w, g)))]
        errors = []
        for conv in (xla, ours):
            got = jax.jit(lambda *a, conv=conv: three(conv, *a))(x, w, g)
            errors += [float(np.abs(np.asarray(a, np.float64) - r).max() / np.abs(r).max())
                       for a, r in zip(got, ref, strict=True)]
        lines.append(f"| {size}x{size}, {cin}->{cout}, {k}x{k}, s{stride} | "
                     + " | ".join(f"{e:.1e}" for e in errors) + " |")
    return "\n".join(lines)


def grouped(repeats: int, shapes: Sequence[tuple] = tuple(GROUPED_CONVS)) -> str:
    """Markdown: grouped and depthwise convolutions, XLA vs jaxcnn, forward and both gradients.

    Example:
        >>> grouped(1, [(2, 8, 4, 3, 1, 4)]).splitlines()[-1].split("|")[1].strip()
        '2x8x8x4, 3x3, s1, groups 4'
    """
    rng = np.random.default_rng(0)
    header = ("| input, kernel, stride, groups | XLA fwd ms | XLA fwd+grads ms | jaxcnn fwd ms "
              "| jaxcnn fwd+grads ms | XLA/jaxcnn (fwd+grads) |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for batch, size, c, k, stride, groups in shapes:
        x = jnp.asarray(rng.normal(size=(batch, size, size, c)), jnp.float32)
        w = jnp.asarray(rng.normal(size=(k, k, c // groups, c)) * 0.1, jnp.float32)
        ms = []
        for backend in ("xla", "auto"):
            with F.conv_backend(backend):  # fresh functions: traced under this backend
                def conv(x, w, stride=stride, groups=groups):
                    return F.conv(x, w, stride=stride, groups=groups)
                fwd = jax.jit(conv)
                both = jax.jit(jax.grad(lambda x, w, conv=conv: jnp.sum(conv(x, w) ** 2), (0, 1)))
                fwd(x, w)
                both(x, w)
            ms += [_median_ms(lambda f=fwd, x=x, w=w: f(x, w).block_until_ready(), repeats),
                   _median_ms(lambda f=both, x=x, w=w: jax.block_until_ready(f(x, w)), repeats)]
        lines.append(f"| {batch}x{size}x{size}x{c}, {k}x{k}, s{stride}, groups {groups} | "
                     + " | ".join(f"{v:.1f}" for v in ms) + f" | {ms[1] / ms[3]:.1f} |")
    return "\n".join(lines)


def table(rows: list[dict], occurrences: Sequence[int]) -> str:
    """Markdown: ms per op for each backend, totals weighted by ``occurrences``, ratios.

    Example:
        >>> ms = {"xla": {"fwd": 2, "dx": 2, "dW": 4}, "jaxcnn": {"fwd": 1, "dx": 1, "dW": 1}}
        >>> print(table([{"shape": (8, 3, 4, 3, 1), "ms": ms}], [2]).splitlines()[-1])
        | **ResNet-18 total (x count)** | 4 | 4 | 8 | 2 | 2 | 2 | 2.67 |
    """
    names = list(rows[0]["ms"])
    label = {"xla": "XLA", "jaxcnn": "jaxcnn", "torch": "torch"}
    header = "| conv (HxW, Cin->Cout, k, stride) x count | " + " | ".join(
        f"{label[n]} {op}" for n in names for op in OPS)
    ratios = ["XLA/jaxcnn"] + (["jaxcnn/torch"] if "torch" in names else [])
    header += " | " + " | ".join(f"{r} (3 ops)" for r in ratios) + " |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    totals = {n: np.zeros(3) for n in names}

    def ratio_cells(ms):
        s = {n: sum(ms[n]) for n in names}
        cells = [s["xla"] / s["jaxcnn"]] + ([s["jaxcnn"] / s["torch"]] if "torch" in s else [])
        return " | ".join(f"{c:.2f}" for c in cells)

    for row, count in zip(rows, occurrences, strict=True):
        size, cin, cout, k, stride = row["shape"]
        ms = {n: [row["ms"][n][op] for op in OPS] for n in names}
        for n in names:
            totals[n] += count * np.asarray(ms[n])
        lines.append(f"| {size}x{size}, {cin}->{cout}, {k}x{k}, s{stride} x{count} | "
                     + " | ".join(f"{v:.0f}" for n in names for v in ms[n])
                     + f" | {ratio_cells(ms)} |")
    lines.append("| **ResNet-18 total (x count)** | "
                 + " | ".join(f"{v:.0f}" for n in names for v in totals[n])
                 + f" | {ratio_cells({n: list(t) for n, t in totals.items()})} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--accuracy", action="store_true",
                        help="instead of timing, each backend's error against float64")
    parser.add_argument("--grouped", action="store_true",
                        help="instead, grouped and depthwise convolutions, XLA vs jaxcnn")
    args = parser.parse_args(argv)
    if args.grouped:
        print(f"median of {args.repeats}; jaxcnn convolutions: {onednn.status()}\n")
        print(grouped(args.repeats))
        return
    if args.accuracy:
        print(f"batch {args.batch}: max |error| / max |float64 result|; jaxcnn "
              f"convolutions: {onednn.status()}\n")
        print(accuracy(args.batch))
        return
    try:
        import torch
        torch.set_num_threads(len(os.sched_getaffinity(0)))  # as many threads as XLA uses
    except ImportError:
        torch = None
    print(f"batch {args.batch}, float32, median of {args.repeats}, milliseconds per call; "
          f"jaxcnn convolutions: {onednn.status()}\n")
    print(table(measure(args.batch, args.repeats, torch=torch), OCCURRENCES))


if __name__ == "__main__":
    # A program may set what the library leaves alone: glibc malloc for XLA:CPU
    # (jaxcnn.tune_host_malloc), before JAX's backend starts. JAXCNN_HOST_MALLOC=0: not.
    from jaxcnn._native.host_memory import configure_from_env

    configure_from_env()
    main()
