"""A/B of jaxcnn's ``malloc`` settings: train images/s, page faults, kernel time, peak memory.

    python -m benchmarks.host_memory [--models lenet5,resnet18] [--repeats 2] [--quick]
                                     [--frameworks jaxcnn,torch_cl,torch_compile]

Each cell is one train step measurement in its own process (``benchmarks._cells``), with
glibc's defaults or jaxcnn's settings (:mod:`jaxcnn._native.host_memory`), alternating within
each repetition so that both see the same machine. A jaxcnn cell opts in to the settings at
start-up, as an application does (``jaxcnn.tune_host_malloc()``; the library itself never
sets them), and ``JAXCNN_HOST_MALLOC=0``/``1`` switches between glibc's defaults and
jaxcnn's settings. PyTorch cells (which never import jaxcnn) get the same three settings
through glibc's environment variables (``MALLOC_ARENA_MAX`` etc.), to show what they
are worth to a framework that does not set them itself. Page faults and kernel CPU time are
``getrusage`` differences over the timed steps; peak memory is the process's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._cells import MODELS, spawn

SETTINGS = ("glibc defaults", "jaxcnn settings")
# host_memory's mallopt calls as glibc's environment variables (a trim threshold of 2**62:
# never, as its -1).
_GLIBC_ENV = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0",
              "MALLOC_TRIM_THRESHOLD_": str(2**62)}


def _env(framework: str, setting: str) -> dict[str, str]:
    tuned = setting == "jaxcnn settings"
    if framework == "jaxcnn":
        return {"JAXCNN_HOST_MALLOC": "1" if tuned else "0"}
    return dict(_GLIBC_ENV) if tuned else {}


def plan(models: Sequence[str], repeats: int, *, steps: int | None = None,
         frameworks: Sequence[str] = ("jaxcnn",)
         ) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The cells, as ``(cell, extra environment)``, alternating the two settings.

    Example:
        >>> [(c["model"], env["JAXCNN_HOST_MALLOC"]) for c, env in plan(["lenet5"], 2)]
        [('lenet5', '0'), ('lenet5', '1'), ('lenet5', '1'), ('lenet5', '0')]
        >>> [sorted(env) for _, env in plan(["lenet5"], 1, frameworks=["torch_cl"])]
        [[], ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_']]
    """
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {sorted(MODELS)}.")
    cells = []
    for model in models:
        for rep in range(repeats):
            # settings alternate between repetitions, frameworks rotate within a setting: a
            # ratio compares cells taken back to back
            for name in SETTINGS if rep % 2 == 0 else SETTINGS[::-1]:
                k = rep % len(frameworks)
                for framework in list(frameworks[k:]) + list(frameworks[:k]):
                    cell = {"framework": framework, "model": model, "mode": "train",
                            "setting": name, "rep": rep}
                    if steps:
                        cell["steps"] = steps
                    cells.append((cell, _env(framework, name)))
    return cells


def run(cells: list[tuple[dict[str, Any], dict[str, str]]],
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Measure every planned cell in its own process, in order."""
    results = []
    for cell, env in cells:
        result = spawn(cell, env=env)
        log(f"  {cell['framework']} {cell['model']} rep {cell['rep']} {cell['setting']}: "
            f"{result['images_per_s']:.1f} images/s, {result['minflt_per_step']:.0f} "
            f"faults/step")
        results.append(result)
    return results


def table(results: list[dict[str, Any]]) -> str:
    """One markdown row per (model, framework, setting): medians over repetitions, speed-up.

    Example:
        >>> r = [{"model": "m", "framework": "jaxcnn", "setting": s, "rep": 0,
        ...       "images_per_s": v, "minflt_per_step": f, "sys_s_per_step": 0.1,
        ...       "peak_rss_mib": 100.0}
        ...      for s, v, f in (("glibc defaults", 10.0, 900), ("jaxcnn settings", 12.0, 0))]
        >>> print(table(r).splitlines()[-1])
        | m | jaxcnn | jaxcnn settings | 12.0 | 0 | 100 | 100 | 1.20 |
    """
    lines = ["| model | framework | malloc | train images/s | page faults/step | "
             "kernel ms/step | peak MiB | speed-up |", "|---|---|---|---|---|---|---|---|"]
    for model, framework in dict.fromkeys((r["model"], r["framework"]) for r in results):
        rows = {name: [r for r in results if r["model"] == model
                       and r["framework"] == framework and r["setting"] == name]
                for name in SETTINGS}
        base = {r["rep"]: r["images_per_s"] for r in rows["glibc defaults"]}
        for name, rs in rows.items():
            if not rs:
                continue
            speedups = [r["images_per_s"] / base[r["rep"]] for r in rs if r["rep"] in base]
            med = {k: statistics.median(r[k] for r in rs)
                   for k in ("images_per_s", "minflt_per_step", "sys_s_per_step", "peak_rss_mib")}
            speedup = f"{statistics.median(speedups):.2f}" if speedups else "n/a"
            lines.append(f"| {model} | {framework} | {name} | {med['images_per_s']:.1f} | "
                         f"{med['minflt_per_step']:.0f} | {1e3 * med['sys_s_per_step']:.0f} | "
                         f"{med['peak_rss_mib']:.0f} | {speedup} |")
    return "\n".join(lines)


def ratios(results: list[dict[str, Any]]) -> str:
    """jaxcnn's train images/s over each other framework's, per model and malloc setting:
    the median (and range) over repetitions of same-repetition pairs.

    Example:
        >>> r = [{"model": "m", "framework": f, "setting": "glibc defaults", "rep": 0,
        ...       "images_per_s": v} for f, v in (("jaxcnn", 12.0), ("torch_cl", 10.0))]
        >>> print(ratios(r).splitlines()[-1])
        | m | glibc defaults | torch_cl | 1.20 (1.20-1.20) |
    """
    lines = ["| model | malloc (both frameworks) | vs | jaxcnn / other, train images/s |",
             "|---|---|---|---|"]
    keys = dict.fromkeys((r["model"], r["setting"], r["framework"]) for r in results)
    for model, setting, framework in keys:
        if framework == "jaxcnn":
            continue
        ours = {r["rep"]: r["images_per_s"] for r in results if (r["model"], r["setting"],
                r["framework"]) == (model, setting, "jaxcnn")}
        pairs = [ours[r["rep"]] / r["images_per_s"] for r in results
                 if (r["model"], r["setting"], r["framework"]) == (model, setting, framework)
                 and r["rep"] in ours]
        if pairs:
            lines.append(f"| {model} | {setting} | {framework} | "
                         f"{statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f}) |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet18",
                        help=f"comma-separated, from {sorted(MODELS)}")
    parser.add_argument("--frameworks", default="jaxcnn",
                        help="comma-separated, from jaxcnn, torch, torch_cl, torch_compile")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="lenet5, 1 repetition, 3 steps")
    args = parser.parse_args(argv)
    models = ["lenet5"] if args.quick else args.models.split(",")
    frameworks = args.frameworks.split(",")
    unknown = sorted(set(frameworks) - {"jaxcnn", "torch", "torch_cl", "torch_compile"})
    if unknown:
        parser.error(f"unknown frameworks {unknown}; choose from jaxcnn, torch, torch_cl, "
                     f"torch_compile")
    cells = plan(models, 1 if args.quick else args.repeats, steps=3 if args.quick else None,
                 frameworks=frameworks)
    results = run(cells)
    print(table(results))
    if len(frameworks) > 1 and "jaxcnn" in frameworks:
        print()
        print(ratios(results))


if __name__ == "__main__":
    main()
