"""A/B of jaxcnn's ``malloc`` settings: train images/s, page faults, kernel time, peak memory.

    python -m benchmarks.host_memory [--models lenet5,resnet18] [--repeats 2] [--quick]

Each cell is one jaxcnn train step measurement in its own process (``benchmarks._cells``),
with ``JAXCNN_HOST_MALLOC=0`` (glibc's defaults) or ``1`` (jaxcnn's settings, see
:mod:`jaxcnn._native.host_memory`), alternating within each repetition so that both see the
same machine. Page faults and kernel CPU time are ``getrusage`` differences over the timed
steps; peak memory is the process's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._cells import MODELS, spawn

SETTINGS = {"glibc defaults": "0", "jaxcnn settings": "1"}


def plan(models: Sequence[str], repeats: int, *, steps: int | None = None
         ) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The cells, as ``(cell, extra environment)``, alternating the two settings.

    Example:
        >>> [(c["model"], env["JAXCNN_HOST_MALLOC"]) for c, env in plan(["lenet5"], 2)]
        [('lenet5', '0'), ('lenet5', '1'), ('lenet5', '1'), ('lenet5', '0')]
    """
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {sorted(MODELS)}.")
    cells = []
    for model in models:
        for rep in range(repeats):
            order = list(SETTINGS.items()) if rep % 2 == 0 else list(SETTINGS.items())[::-1]
            for name, value in order:
                cell = {"framework": "jaxcnn", "model": model, "mode": "train",
                        "setting": name, "rep": rep}
                if steps:
                    cell["steps"] = steps
                cells.append((cell, {"JAXCNN_HOST_MALLOC": value}))
    return cells


def run(cells: list[tuple[dict[str, Any], dict[str, str]]],
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Measure every planned cell in its own process, in order."""
    results = []
    for cell, env in cells:
        result = spawn(cell, env=env)
        log(f"  {cell['model']} rep {cell['rep']} {cell['setting']}: "
            f"{result['images_per_s']:.1f} images/s, {result['minflt_per_step']:.0f} "
            f"faults/step ({result['host_malloc']})")
        results.append(result)
    return results


def table(results: list[dict[str, Any]]) -> str:
    """One markdown row per (model, setting): medians over repetitions, and the speed-up.

    Example:
        >>> r = [{"model": "m", "setting": s, "rep": 0, "images_per_s": v, "minflt_per_step": f,
        ...       "sys_s_per_step": 0.1, "peak_rss_mib": 100.0}
        ...      for s, v, f in (("glibc defaults", 10.0, 900), ("jaxcnn settings", 12.0, 0))]
        >>> print(table(r).splitlines()[-1])
        | m | jaxcnn settings | 12.0 | 0 | 100 | 100 | 1.20 |
    """
    lines = ["| model | malloc | train images/s | page faults/step | kernel ms/step | "
             "peak MiB | speed-up |", "|---|---|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in results):
        rows = {name: [r for r in results if r["model"] == model and r["setting"] == name]
                for name in SETTINGS}
        base = {r["rep"]: r["images_per_s"] for r in rows["glibc defaults"]}
        for name, rs in rows.items():
            if not rs:
                continue
            speedups = [r["images_per_s"] / base[r["rep"]] for r in rs if r["rep"] in base]
            med = {k: statistics.median(r[k] for r in rs)
                   for k in ("images_per_s", "minflt_per_step", "sys_s_per_step", "peak_rss_mib")}
            speedup = f"{statistics.median(speedups):.2f}" if speedups else "n/a"
            lines.append(f"| {model} | {name} | {med['images_per_s']:.1f} | "
                         f"{med['minflt_per_step']:.0f} | {1e3 * med['sys_s_per_step']:.0f} | "
                         f"{med['peak_rss_mib']:.0f} | {speedup} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet18",
                        help=f"comma-separated, from {sorted(MODELS)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="lenet5, 1 repetition, 3 steps")
    args = parser.parse_args(argv)
    models = ["lenet5"] if args.quick else args.models.split(",")
    cells = plan(models, 1 if args.quick else args.repeats, steps=3 if args.quick else None)
    print(table(run(cells)))


if __name__ == "__main__":
    main()
