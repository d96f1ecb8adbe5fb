"""The benchmark suite: throughput against plain Flax and PyTorch, scaling, overhead, accuracy.

    python -m benchmarks.run [--models lenet5,resnet18,vgg16,resnet50] [--repeats 2]
                             [--no-torch] [--quick] [--sections throughput,scaling,...]
                             [--write benchmarks/RESULTS.md] [--json results.json]

Prints the tables and writes them, with how they were taken, into ``benchmarks/RESULTS.md``
between ``<!-- benchmarks.run:begin -->`` and ``<!-- benchmarks.run:end -->`` (the rest of
the file is left alone; ``--quick`` writes only with an explicit ``--write``), then draws
them next to it (``benchmarks/plots.py``: throughput, scaling, time to accuracy PNGs, titled
with the date and machine). Progress goes to stderr.

Sections:

* ``throughput``: for each model, a train step (forward + backward + SGD-momentum update) and
  an inference forward pass, in jaxcnn as shipped (``jaxcnn.models.create``,
  ``create_train_state``, ``make_optimizer("momentum")``, ``make_strategy("none")``, and the
  ``malloc`` settings an application opts in to, ``jaxcnn.tune_host_malloc``), in plain Flax
  linen (``benchmarks/flax_models.py``, LeNet-5 and ResNet-18) and in PyTorch, NCHW and
  channels_last (``benchmarks/torch_models.py``). Every (framework, model, mode) is one fresh
  process (``benchmarks/_cells.py``); within a repetition the frameworks of a model run back
  to back and their order rotates between repetitions, so a ratio compares cells taken under
  the same load.
* ``scaling``: images/s vs batch size and vs forced device count (``benchmarks/scaling.py``).
* ``overhead``: empty-model step vs LeNet-5 step (``benchmarks/overhead.py``).
* ``accuracy``: wall seconds to 99.0% on real MNIST (``benchmarks/time_to_accuracy.py``;
  skipped when the MNIST IDX files are absent).

This process imports neither JAX nor PyTorch nor jaxcnn: every measurement runs in a child.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import overhead, scaling, time_to_accuracy
from benchmarks._cells import MODELS, MODES, cell_env, cores, spawn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- benchmarks.run:begin -->", "<!-- benchmarks.run:end -->"
SECTIONS = ("throughput", "scaling", "overhead", "accuracy")
MNIST = ROOT.parent / "shared" / "data" / "mnist"
LABELS = {"jaxcnn": "jaxcnn", "flax": "plain Flax", "torch": "PyTorch NCHW",
          "torch_cl": "PyTorch channels_last", "torch_compile": "torch.compile channels_last"}
QUICK = {"batch": 32, "steps": 3, "warmup": 1}
"""``--quick``: every throughput cell at batch 32, 3 timed steps after 1 warm-up step."""
PEAK = {"size": 2048, "repeats": 5}
QUICK_PEAK = {"size": 512, "repeats": 3}


def plan(models: Sequence[str], repeats: int, *, torch: bool = True, quick: bool = False,
         modes: Sequence[str] = MODES) -> list[dict[str, Any]]:
    """The throughput cells in run order: per repetition a matmul-peak cell, then per model
    and mode every framework, the framework order rotated by the repetition.

    Args:
        models: :data:`benchmarks._cells.MODELS` keys.
        repeats: repetitions (>= 1).
        torch: include the PyTorch cells.
        quick: use :data:`QUICK` sizes.
        modes: ``"train"`` and/or ``"infer"``.

    Example:
        >>> cells = plan(["lenet5"], 2, torch=False)
        >>> [(c["rep"], c["framework"], c.get("mode")) for c in cells][:4]
        [(0, 'peak', None), (0, 'jaxcnn', 'train'), (0, 'flax', 'train'), (0, 'jaxcnn', 'infer')]
        >>> [c["framework"] for c in cells if c["rep"] == 1 and c.get("mode") == "train"]
        ['flax', 'jaxcnn']
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"`models` has unknown names {unknown}; choose from {sorted(MODELS)}.")
    if repeats < 1:
        raise ValueError(f"`repeats` must be >= 1, got {repeats}.")
    cells: list[dict[str, Any]] = []
    for rep in range(repeats):
        cells.append({"framework": "peak", "rep": rep, **(QUICK_PEAK if quick else PEAK)})
        for model in models:
            frameworks = ["jaxcnn"] + [f for f in MODELS[model].baselines
                                       if torch or not f.startswith("torch")]
            k = rep % len(frameworks)
            frameworks = frameworks[k:] + frameworks[:k]
            for mode in modes:
                cells += [{"framework": f, "model": model, "mode": mode, "rep": rep,
                           **(QUICK if quick else {})} for f in frameworks]
    return cells


def check_params(results: list[dict[str, Any]]) -> None:
    """Raise AssertionError unless every framework's model has jaxcnn's parameter count.

    Example:
        >>> check_params([{"framework": "jaxcnn", "model": "m", "params": 10},
        ...               {"framework": "torch", "model": "m", "params": 12}])
        Traceback (most recent call last):
        ...
        AssertionError: model 'm': parameter counts differ between frameworks ...
    """
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for r in results:
        if "params" in r:
            counts[r["model"]][r["framework"]] = r["params"]
    for model, by_framework in counts.items():
        if len(set(by_framework.values())) > 1:
            raise AssertionError(f"model {model!r}: parameter counts differ between frameworks "
                                 f"{by_framework}; the benchmark twins must equal the jaxcnn "
                                 f"model (benchmarks/torch_models.py, flax_models.py).")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per (model, framework) from the throughput cells' results.

    Per mode: ``images_per_s`` (median over repetitions of each cell's median step) and its
    ``range``; ``ratio`` = median over repetitions of jaxcnn's images/s divided by this
    framework's in the same repetition (> 1: jaxcnn faster) and its ``ratio_range``;
    ``compile_s`` (lower + compile, JAX only) and ``first_s`` (compile + first call), both of
    the fastest repetition; ``rss_mib`` (largest); ``gflops`` = XLA's flop count of the step
    (jaxcnn's count for PyTorch rows: the same model) / median step time, and ``peak_pct`` of
    the best measured matmul peak.

    Example:
        >>> cells = [{"framework": "peak", "rep": 0, "gflops": 100.0}]
        >>> for fw, ips in (("jaxcnn", 30.0), ("torch", 20.0)):
        ...     cells.append({"framework": fw, "model": "m", "mode": "train", "rep": 0,
        ...                   "batch": 10, "params": 5, "images_per_s": ips,
        ...                   "step_s": 10 / ips, "first_s": 1.0, "peak_rss_mib": 9.0,
        ...                   "flops": 3e9 if fw == "jaxcnn" else None})
        >>> rows = summarize(cells)["rows"]
        >>> rows[1]["framework"], rows[1]["train"]["ratio"], rows[1]["train"]["gflops"]
        ('torch', 1.5, 6.0)
    """
    check_params(results)
    peaks = [r["gflops"] for r in results if r["framework"] == "peak"]
    peak = max(peaks) if peaks else None
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["framework"] != "peak":
            cells[r["model"], r["framework"], r["mode"]].append(r)
    order = list(dict.fromkeys((r["model"], r["framework"]) for r in results
                               if r["framework"] != "peak"))
    order.sort(key=lambda mf: (list(MODELS).index(mf[0]) if mf[0] in MODELS else 99,
                               list(LABELS).index(mf[1])))
    rows = []
    for model, framework in order:
        row: dict[str, Any] = {"model": model, "framework": framework}
        for mode in MODES:
            rs = cells.get((model, framework, mode), [])
            if not rs:
                continue
            row.update(batch=rs[0]["batch"], params=rs[0]["params"])
            ips = [r["images_per_s"] for r in rs]
            jax_by_rep = {r["rep"]: r["images_per_s"] for r in cells.get((model, "jaxcnn", mode),
                                                                           [])}
            ratios = [jax_by_rep[r["rep"]] / r["images_per_s"] for r in rs
                      if framework != "jaxcnn" and r["rep"] in jax_by_rep]
            own = [r["flops"] for r in rs if r.get("flops")]
            flops = _median(own or [r["flops"] for r in cells.get((model, "jaxcnn", mode), [])
                                    if r.get("flops")])
            step_s = _median([r["step_s"] for r in rs])
            gflops = flops / step_s / 1e9 if flops and step_s else None
            compile_s = [r["lower_s"] + r["compile_s"] for r in rs if "compile_s" in r]
            # What a fresh process waits for its first step: JAX's first call would lower
            # and compile, here timed apart just before it.
            first = [r["first_s"] + r.get("lower_s", 0.0) + r.get("compile_s", 0.0)
                     for r in rs]
            row[mode] = {
                "images_per_s": _median(ips), "range": (min(ips), max(ips)),
                "ratio": _median(ratios),
                "ratio_range": (min(ratios), max(ratios)) if ratios else None,
                # Fastest repetition: other jobs can only add time to a fixed amount of work.
                "compile_s": min(compile_s, default=None), "first_s": min(first),
                "rss_mib": max(r["peak_rss_mib"] for r in rs),
                "flops": flops, "gflops": gflops,
                "peak_pct": 100 * gflops / peak if gflops and peak else None}
        rows.append(row)
    loads = [r["load_1min"] for r in results if "load_1min" in r]
    return {"peak_gflops": peak, "peaks": peaks, "rows": rows,
            "load": (min(loads), max(loads)) if loads else None}


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _rate(m: dict[str, Any] | None) -> str:
    if not m:
        return "n/a"
    lo, hi = m["range"]
    spread = f" ({lo:.1f}-{hi:.1f})" if hi > lo else ""
    return f"{m['images_per_s']:.1f}{spread}"


def _ratio(m: dict[str, Any]) -> str:
    lo, hi = m["ratio_range"]
    return f"**{m['ratio']:.2f}**" + (f" ({lo:.2f}-{hi:.2f})" if hi > lo else "")


def _pair(row: dict[str, Any], key: str, spec: str = ".1f") -> str:
    return " / ".join(_fmt(row[mode][key], spec) if mode in row else "n/a" for mode in MODES)


def throughput_table(summary: dict[str, Any]) -> str:
    """The main table: one row per (model, framework).

    Example:
        >>> cells = [{"framework": "peak", "rep": 0, "gflops": 100.0}]
        >>> for fw, ips in (("jaxcnn", 30.0), ("torch", 20.0)):
        ...     cells.append({"framework": fw, "model": "lenet5", "mode": "train", "rep": 0,
        ...                   "batch": 10, "params": 5, "images_per_s": ips,
        ...                   "step_s": 10 / ips, "first_s": 1.0, "peak_rss_mib": 9.0,
        ...                   "flops": 3e9 if fw == "jaxcnn" else None})
        >>> row = throughput_table(summarize(cells)).splitlines()[-1].split(" | ")
        >>> row[1:5], row[-2]
        (['PyTorch NCHW', '20.0', 'n/a', '**1.50**'], '6.0 (6.0%)')
    """
    lines = ["| model | framework | train images/s | inference images/s | "
             "jaxcnn / this, train | jaxcnn / this, inference | compile s (train / inf.) | "
             "first step s (train / inf.) | peak host MiB (train / inf.) | "
             "train GFLOP/s (% of peak) | inference GFLOP/s (% of peak) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        train, infer = row.get("train"), row.get("infer")
        ratios = [_ratio(m) if m and m["ratio"] is not None else
                  ("—" if row["framework"] == "jaxcnn" else "n/a") for m in (train, infer)]
        flops = [f"{m['gflops']:.1f} ({m['peak_pct']:.1f}%)" if m and m["gflops"] and
                 m["peak_pct"] is not None else (_fmt(m["gflops"]) if m else "n/a")
                 for m in (train, infer)]
        lines.append(
            f"| {row['model']} (batch {row['batch']}, {row['params']:,} params) | "
            f"{LABELS[row['framework']]} | {_rate(train)} | {_rate(infer)} | {ratios[0]} | "
            f"{ratios[1]} | {_pair(row, 'compile_s')} | {_pair(row, 'first_s', '.2f')} | "
            f"{_pair(row, 'rss_mib', '.0f')} | {flops[0]} | {flops[1]} |")
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Put ``body`` between the markers in ``path`` (appended when the markers are absent).

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "R.md"
        >>> _ = p.write_text("# Results\\n\\nkeep me\\n")
        >>> write_section(p, "old"); write_section(p, "new")
        >>> p.read_text().count("new"), "old" in p.read_text(), "keep me" in p.read_text()
        (1, False, True)
    """
    text = path.read_text() if path.exists() else "# Measured results\n"
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _overhead(quick: bool) -> dict[str, Any]:
    steps = ["--steps", "60", "--batch", "32"] if quick else []
    proc = subprocess.run([sys.executable, "-m", "benchmarks.overhead", "--json", *steps],
                          cwd=ROOT, env=cell_env(), capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"benchmarks.overhead failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


METHOD = """\
How the numbers are taken (`benchmarks/run.py`, `_cells.py`):

* Every (framework, model, mode) cell is a fresh `python -m benchmarks._cells` process with
  the same environment (`JAX_PLATFORMS=cpu`, `XLA_FLAGS` removed; jaxcnn cells opt in to
  `jaxcnn.tune_host_malloc()` first, the plain-Flax cells never import jaxcnn). Within a
  repetition the frameworks of one model run back to back and their order rotates between
  repetitions; "jaxcnn / this" is the median over repetitions of the ratio of the two cells of
  the same repetition, so load from other jobs hits both sides of a ratio alike.
* Train step = forward + backward + SGD with momentum 0.9 (lr 0.01), cross-entropy, on a fixed
  random batch (`np.random.default_rng(0)`), float32. jaxcnn: `jaxcnn.models.create`,
  `training.create_train_state`, `make_optimizer("momentum")` and the training loop's step,
  `make_strategy("none").train_step` (`make_train_step()` under `jit` with the state
  donated; it also computes accuracy and the non-finite guards). Plain Flax:
  `benchmarks/flax_models.py` (Flax's ImageNet-example ResNet with the CIFAR stem,
  `nn.Conv`/`nn.BatchNorm`, `optax.sgd(momentum=0.9)`, plain `jax.jit`). PyTorch:
  `benchmarks/torch_models.py`, `torch.optim.SGD`, eager, `torch.set_num_threads(cores)`;
  channels_last converts model and input. Inference = the
  forward pass in evaluation mode (`jax.jit(model.apply)` / `torch.inference_mode()`).
* Images/s = batch / median of the timed steps, each step timed to `block_until_ready` of all
  its outputs (the new state too), after the first call and warm-up steps; in brackets the
  range over repetitions (also for the ratios). Timed steps per cell: {steps}.
* Compile s = `jit(...).lower(...)` + `.compile()`, timed separately just before the first
  call (which then reuses the executable); first step s = compile s + that first call, what a
  fresh process waits for its first step once model and state exist (PyTorch: its first
  eager step). Both are the fastest repetition's (other jobs only add time to fixed work).
  Not included: creating the model and the state (`create_train_state` compiles `init`),
  recorded as `setup_s` in the JSON. Peak host MiB = `ru_maxrss` of the cell's process
  (everything: interpreter, framework, data, model).
* GFLOP/s = XLA's `compiled.cost_analysis()["flops"]` for the step / median step time;
  PyTorch rows use jaxcnn's count for the same model. % of peak = against the matmul peak
  measured in the same run, one cell per repetition (f32 `jnp.dot` of two {peak_size}^2
  matrices, best of {peak_repeats} calls; best cell): **{peak:.0f} GFLOP/s**
  (cells: {peaks}).
* Threads: XLA's CPU client uses all {cores} cores by default; PyTorch gets
  `set_num_threads({cores})`.
* Parameter counts are asserted equal across frameworks before the table is printed.
"""


def _markdown(docstring_paragraph: str) -> str:
    return docstring_paragraph.strip().replace("``", "`")


def report(args: argparse.Namespace, sections: dict[str, Any], meta: dict[str, Any]) -> str:
    """The RESULTS.md section: heading, conditions, method, and each section's table."""
    out = ["## Benchmark suite (issue 7): `python -m benchmarks.run`", "",
           f"Command: `{meta['command']}`; {meta['date']}; whole suite {meta['wall_s']:.0f} s. "
           f"Machine: {meta['cpu']}, {meta['cores']} cores; {meta['versions']}. Load average "
           f"(1 min) {meta['load'][0]:.1f} at the start and {meta['load'][1]:.1f} at the end: "
           "other engineers' jobs shared these cores, so absolute rates are noisy; the "
           "alternating-cell ratios are the numbers to compare.", ""]
    load = sections.get("throughput", {}).get("summary", {}).get("load")
    if load:
        out[-2] += (f" The 1-minute load average seen by the throughput cells ranged "
                    f"{load[0]:.1f}-{load[1]:.1f}.")
    if "throughput" in sections:
        t = sections["throughput"]
        flags = sorted({r["xla_flags"] for r in t["results"] if r["framework"] == "jaxcnn"})
        flags_text = ", ".join(f"`{f}`" for f in flags if f) or "none (XLA's defaults)"
        convs = sorted({r.get("conv_backend", "?") for r in t["results"]
                        if r["framework"] == "jaxcnn"})
        mallocs = sorted({r.get("host_malloc", "?") for r in t["results"]
                          if r["framework"] == "jaxcnn"})
        peak = QUICK_PEAK if args.quick else PEAK
        steps = ", ".join(f"{m} {MODELS[m].steps} (+{MODELS[m].warmup} warm-up)"
                          for m in args.models) if not args.quick else "3 (+1 warm-up)"
        out += ["### Throughput: jaxcnn vs plain Flax vs PyTorch", "",
                throughput_table(t["summary"]), "",
                f"`XLA_FLAGS` inside the jaxcnn cells: {flags_text}. "
                f"Their 2-D convolutions: {'; '.join(convs)}. Their `malloc` "
                f"(`jaxcnn.tune_host_malloc()`, `jaxcnn/_native/host_memory.py`): "
                f"{'; '.join(mallocs)}.",
                "",
                METHOD.format(steps=steps, peak=t["summary"]["peak_gflops"] or 0.0,
                              peaks=", ".join(f"{p:.0f}" for p in t["summary"]["peaks"]),
                              peak_size=peak["size"], peak_repeats=peak["repeats"],
                              cores=meta["cores"])]
    if "scaling" in sections:
        out += ["### Scaling (jaxcnn, LeNet-5 train step)", "",
                _markdown(scaling.__doc__.split("\n\n")[2]), "",
                scaling.tables(sections["scaling"]), ""]
    if "overhead" in sections:
        from_doc = ("The empty model (one bias vector, input ignored) leaves only host work "
                    "per step; `python -m benchmarks.overhead` for the method. An upper "
                    "bound: host work overlaps device work under asynchronous dispatch.")
        out += ["### Python-side per-step overhead", "", from_doc, "",
                overhead.table(sections["overhead"]), ""]
    if "accuracy" in sections:
        acc = sections["accuracy"]
        out += ["### Time to 99.0% test accuracy on real MNIST", ""]
        if acc is None:
            out += [f"Skipped: no MNIST IDX files in {args.mnist_dir}.", ""]
        else:
            out += [_markdown(time_to_accuracy.__doc__.split("\n\n")[2]), "",
                    time_to_accuracy.table(acc), ""]
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated, from {','.join(MODELS)} (default: all; "
                             f"--quick: lenet5)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repetitions of every throughput cell (default 2; --quick: 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch cells")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 32, 3 timed steps, throughput section only")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated, from {','.join(MODES)} (default: both)")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated, from {','.join(SECTIONS)} (default: all; "
                             f"--quick: throughput)")
    parser.add_argument("--write", type=Path, default=None,
                        help=f"Markdown file to update (default {RESULTS.relative_to(ROOT)}; "
                             f"--quick writes nothing unless given)")
    parser.add_argument("--json", type=Path, default=None, help="also dump every raw result")
    parser.add_argument("--mnist-dir", type=Path, default=MNIST,
                        help="the four MNIST IDX .gz files, for the accuracy section")
    parser.add_argument("--work", type=Path, default=Path("/tmp/jaxcnn_bench"),
                        help="scratch directory (prepared MNIST, training runs)")
    return parser


def _split(value: str | None, default: Sequence[str], allowed: Sequence[str],
           name: str) -> list[str]:
    items = list(default) if value is None else [v for v in value.split(",") if v]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise SystemExit(f"--{name}: unknown or empty {bad or items}; choose from "
                         f"{','.join(allowed)}.")
    return items


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run the suite; return every section's results (also printed and written)."""
    args = _parser().parse_args(argv)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    args.models = _split(args.models, ["lenet5"] if args.quick else list(MODELS), list(MODELS),
                         "models")
    names = _split(args.sections, ["throughput"] if args.quick else SECTIONS, SECTIONS,
                   "sections")
    modes = _split(args.modes, MODES, MODES, "modes")
    repeats = args.repeats or (1 if args.quick else 2)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    sections: dict[str, Any] = {}

    if "throughput" in names:
        cells = plan(args.models, repeats, torch=not args.no_torch, quick=args.quick,
                     modes=modes)
        results = []
        for i, cell in enumerate(cells, 1):
            cell_start = time.perf_counter()
            results.append(spawn(cell))
            check_params(results)  # fail at the first twin that differs, not at the end
            r = results[-1]
            rate = (f"{r['gflops']:.0f} GFLOP/s" if cell["framework"] == "peak" else
                    f"{r['images_per_s']:.1f} images/s")
            log(f"[{i}/{len(cells)}] {cell['framework']} {cell.get('model', '')} "
                f"{cell.get('mode', '')} (repetition {cell['rep'] + 1}): {rate}, cell "
                f"{time.perf_counter() - cell_start:.0f} s")
        summary = summarize(results)
        sections["throughput"] = {"results": results, "summary": summary}
        print(throughput_table(summary), flush=True)
    if "scaling" in names:
        quick = {"batches": (32, 64), "device_counts": (1, 2), "device_batch": 64,
                 "steps": 3, "warmup": 1} if args.quick else {}
        log("scaling")
        sections["scaling"] = scaling.run(scaling.plan("lenet5", **quick), log)
        print("\n" + scaling.tables(sections["scaling"]), flush=True)
    if "overhead" in names:
        log("overhead")
        sections["overhead"] = _overhead(args.quick)
        print("\n" + overhead.table(sections["overhead"]), flush=True)
    if "accuracy" in names:
        if (args.mnist_dir / "train-images-idx3-ubyte.gz").exists():
            log("time to accuracy")
            sections["accuracy"] = time_to_accuracy.run(args.mnist_dir, args.work / "mnist",
                                                         log=log)
            print("\n" + time_to_accuracy.table(sections["accuracy"]), flush=True)
        else:
            log(f"time to accuracy: skipped, no MNIST IDX files in {args.mnist_dir}")
            sections["accuracy"] = None

    versions = sorted({f"{k} {v}" for r in sections.get("throughput", {}).get("results", [])
                       for k, v in r.get("versions", {}).items()})
    words = sys.argv[1:] if argv is None else list(argv)
    meta = {"command": " ".join(["python -m benchmarks.run", *words]),
            "date": datetime.date.today().isoformat(), "wall_s": time.perf_counter() - start,
            "cpu": _cpu_model(), "cores": cores(), "load": (load_start, os.getloadavg()[0]),
            "versions": ", ".join(versions) or f"Python {platform.python_version()}"}
    text = report(args, sections, meta)
    target = args.write or (None if args.quick else RESULTS)
    if target is not None:
        write_section(target, text)
        log(f"wrote {target}")
        from benchmarks import plots  # matplotlib (the bench extra's jaxcnn[viz])

        for path in plots.write_figures(target):
            log(f"wrote {path}")
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, **sections}, indent=1, default=str))
    return {"meta": meta, "report": text, **sections}


if __name__ == "__main__":
    main()
