"""Scaling: training images/s vs batch size, and vs forced device count (pmap and mesh).

    python -m benchmarks.scaling [--model lenet5] [--quick]

Every point is one cell in its own process (``benchmarks._cells``); the device sweep forces
``N`` host devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and trains
with ``make_strategy("pmap" | "mesh")`` over all ``N`` at a fixed global batch, against the
single-device ``make_strategy("none")`` step. On a 2-core CPU the devices share the same two
cores, so the best a parallel path can do is match the single-device rate: the "vs 1 device"
column is the overhead of the path (values below 1.0 are cost, not hardware).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._cells import MODELS, spawn

BATCHES = (32, 64, 128, 256, 512)
DEVICE_COUNTS = (1, 2, 4, 8)
PARALLEL = ("pmap", "mesh")


def plan(model: str = "lenet5", *, batches: Sequence[int] = BATCHES,
         device_counts: Sequence[int] = DEVICE_COUNTS, device_batch: int = 256,
         steps: int | None = None, warmup: int | None = None
         ) -> list[tuple[dict[str, Any], int | None]]:
    """The cells of both sweeps, as ``(cell, forced device count or None)``.

    Args:
        model: a :data:`benchmarks._cells.MODELS` key.
        batches: batch sizes of the single-device sweep.
        device_counts: device counts of the pmap / mesh sweep.
        device_batch: global batch of the device sweep (divisible by every count).
        steps, warmup: timed / untimed steps per cell; default the model's.

    Example:
        >>> cells = plan("lenet5", batches=(32,), device_counts=(1, 2))
        >>> [(c.get("parallel", "none"), c.get("devices", 1)) for c, _ in cells]
        [('none', 1), ('none', 1), ('pmap', 1), ('mesh', 1), ('pmap', 2), ('mesh', 2)]
    """
    if model not in MODELS:
        raise ValueError(f"`model` must be one of {sorted(MODELS)}, got {model!r}.")
    bad = [n for n in device_counts if device_batch % n]
    if bad:
        raise ValueError(f"`device_batch`={device_batch} does not split over {bad} devices; "
                         f"use a multiple of {max(device_counts)}.")
    spec = MODELS[model]
    base = {"framework": "jaxcnn", "model": model, "mode": "train",
            "steps": steps or spec.steps, "warmup": spec.warmup if warmup is None else warmup}
    cells: list[tuple[dict[str, Any], int | None]] = [
        ({**base, "batch": b, "sweep": "batch"}, None) for b in batches]
    sweep = {**base, "batch": device_batch, "sweep": "devices"}
    cells.append(({**sweep, "parallel": "none", "devices": 1}, 1))
    for n in device_counts:
        cells += [({**sweep, "parallel": p, "devices": n}, n) for p in PARALLEL]
    return cells


def run(cells: list[tuple[dict[str, Any], int | None]],
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Measure every planned cell in its own process, in order."""
    results = []
    for cell, count in cells:
        result = spawn(cell, device_count=count)
        log(f"  scaling {cell['sweep']}: parallel={cell.get('parallel', 'none')} "
            f"devices={cell.get('devices', 1)} batch={cell['batch']}: "
            f"{result['images_per_s']:.1f} images/s")
        results.append(result)
    return results


def tables(results: list[dict[str, Any]]) -> str:
    """Markdown tables of both sweeps.

    Example:
        >>> r = [{"sweep": "batch", "batch": 32, "images_per_s": 100.0, "step_s": 0.32},
        ...      {"sweep": "devices", "parallel": "none", "devices": 1, "batch": 64,
        ...       "images_per_s": 200.0, "step_s": 0.32},
        ...      {"sweep": "devices", "parallel": "pmap", "devices": 2, "batch": 64,
        ...       "images_per_s": 180.0, "step_s": 0.36}]
        >>> print(tables(r).splitlines()[-1])
        | pmap | 2 | 64 | 180.0 | 360.0 | 0.90 |
    """
    lines = ["| batch | images/s | step ms |", "|---|---|---|"]
    for r in sorted((r for r in results if r["sweep"] == "batch"), key=lambda r: r["batch"]):
        lines.append(f"| {r['batch']} | {r['images_per_s']:.1f} | {1e3 * r['step_s']:.1f} |")
    devices = [r for r in results if r["sweep"] == "devices"]
    single = [r["images_per_s"] for r in devices if r.get("parallel", "none") == "none"]
    reference = statistics.median(single) if single else None
    lines += ["", "| path | devices | global batch | images/s | step ms | vs 1 device (none) |",
              "|---|---|---|---|---|---|"]
    for r in devices:
        ratio = f"{r['images_per_s'] / reference:.2f}" if reference else "n/a"
        lines.append(f"| {r.get('parallel', 'none')} | {r['devices']} | {r['batch']} | "
                     f"{r['images_per_s']:.1f} | {1e3 * r['step_s']:.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5", choices=sorted(MODELS))
    parser.add_argument("--quick", action="store_true", help="two batch sizes, 1-2 devices")
    args = parser.parse_args()
    if args.quick:
        cells = plan(args.model, batches=(32, 64), device_counts=(1, 2), device_batch=64,
                     steps=3, warmup=1)
    else:
        cells = plan(args.model)
    print(tables(run(cells)))


if __name__ == "__main__":
    main()
