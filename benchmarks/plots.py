"""Figures of the benchmark suite's recorded results (``benchmarks/RESULTS.md``).

    python -m benchmarks.plots [--results benchmarks/RESULTS.md] [--out DIR]

Reads the section ``python -m benchmarks.run`` keeps between ``<!-- benchmarks.run:begin -->``
and ``<!-- benchmarks.run:end -->`` (its tables are the record: the suite keeps no other file)
and writes, next to the results file unless ``--out`` says otherwise:

* ``benchmark_throughput.png``: train and inference images/s by model and framework;
* ``benchmark_scaling.png``: images/s against the batch size and against the device count
  (one line per parallel path), where the section has the scaling tables;
* ``benchmark_time_to_accuracy.png``: wall seconds to the target accuracy on MNIST, where the
  section has that table.

Each figure's title gives the date and machine of the measurement, from the section's
``Command: ...; DATE; ... Machine: CPU, N cores`` line. ``benchmarks.run`` calls
:func:`write_figures` after writing the section; ``docs/guide/performance.md`` draws them at
documentation build time. The PNG files are outputs, not committed (``.gitignore``).

Figures are ``matplotlib.figure.Figure`` objects drawn with the Agg canvas: nothing here
selects a backend or changes any other process-wide matplotlib state.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- benchmarks.run:begin -->", "<!-- benchmarks.run:end -->"
FILES = {"throughput": "benchmark_throughput.png", "scaling": "benchmark_scaling.png",
         "time_to_accuracy": "benchmark_time_to_accuracy.png"}
"""The file each figure is written to, in the output directory."""
COLOURS = {"jaxcnn": "tab:blue", "plain Flax": "tab:gray", "PyTorch NCHW": "tab:orange",
           "PyTorch channels_last": "tab:red", "torch.compile channels_last": "tab:purple"}
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _number(cell: str) -> float | None:
    """The first number in a table cell (``"**28**"``, ``"18428.3 (16762.9-20093.7)"``)."""
    m = _NUMBER.search(cell)
    return float(m.group().replace(",", "")) if m else None


def _tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table of ``text``: a list of rows, each ``{header: cell}``."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2 and set("".join(block[1])) <= set("-: "):
            tables.append([dict(zip(block[0], row, strict=False)) for row in block[2:]])
        block = []
    return tables


def parse_results(text: str) -> dict[str, Any]:
    """The recorded results of ``benchmarks.run``'s section of a RESULTS.md text.

    Returns ``{"date", "machine", "throughput": [{model, framework, train, infer}],
    "batch_scaling": [{batch, images_per_s}], "device_scaling": [{path, devices,
    images_per_s}], "time_to_accuracy": [{model, target, wall_s}]}``; images/s are the
    medians (``None`` where the table says ``n/a``), lists are empty where the section has
    no such table.

    Raises:
        ValueError: ``text`` has no ``benchmarks.run`` section.

    Example:
        >>> text = "\\n".join([BEGIN, "Command: `x`; 2026-12-04; whole suite 5 s. "
        ...     "Machine: Some CPU, 2 cores; jax 0.10.2.", "",
        ...     "| model | framework | train images/s | inference images/s |",
        ...     "|---|---|---|---|",
        ...     "| lenet5 (batch 256, 61,706 params) | jaxcnn | 18428.3 (16762.9-20093.7) | n/a |",
        ...     END])
        >>> r = parse_results(text)
        >>> r["date"], r["machine"], r["throughput"]
        ('2026-12-04', 'Some CPU, 2 cores', [{'model': 'lenet5', 'framework': 'jaxcnn', \
'train': 18428.3, 'infer': None}])
    """
    if BEGIN not in text or END not in text:
        raise ValueError(f"no benchmarks.run section ({BEGIN} ... {END}) in the results text; "
                         f"run `python -m benchmarks.run` first.")
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    date = re.search(r";\s*(\d{4}-\d{2}-\d{2})\s*;", section)
    machine = re.search(r"Machine:\s*(.+?\d+ cores)", section)
    out: dict[str, Any] = {"date": date[1] if date else "date unknown",
                           "machine": machine[1] if machine else "machine unknown",
                           "throughput": [], "batch_scaling": [], "device_scaling": [],
                           "time_to_accuracy": []}
    for table in _tables(section):
        head = list(table[0]) if table else []
        if "framework" in head and "train images/s" in head:
            out["throughput"] += [
                {"model": row["model"].split()[0], "framework": row["framework"],
                 "train": _number(row["train images/s"]),
                 "infer": _number(row.get("inference images/s", ""))} for row in table]
        elif head[:2] == ["batch", "images/s"]:
            out["batch_scaling"] += [{"batch": int(_number(row["batch"])),
                                      "images_per_s": _number(row["images/s"])}
                                     for row in table]
        elif "path" in head and "devices" in head:
            out["device_scaling"] += [{"path": row["path"],
                                       "devices": int(_number(row["devices"])),
                                       "images_per_s": _number(row["images/s"])}
                                      for row in table]
        elif "wall s to target" in head:
            out["time_to_accuracy"] += [{"model": row["model"], "target": row["target"],
                                         "wall_s": _number(row["wall s to target"])}
                                        for row in table]
    return out


def _figure(width: float, height: float, columns: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # this figure's own Agg canvas, no global backend
    return fig, [fig.add_subplot(1, columns, i + 1) for i in range(columns)]


def _when(results: dict[str, Any]) -> str:
    return f"measured {results['date']}, {results['machine']}"


def throughput_figure(results: dict[str, Any]) -> Any:
    """Bars of images/s: one panel per model, train and inference groups, a bar per framework.

    Args:
        results: :func:`parse_results`'s dict (needs ``throughput`` rows).

    Returns:
        the ``matplotlib.figure.Figure``, titled with the date and machine.

    Raises:
        ValueError: no throughput rows.

    Example:
        >>> rows = [{"model": m, "framework": f, "train": 10.0, "infer": 30.0}
        ...         for m in ("lenet5", "resnet18") for f in ("jaxcnn", "PyTorch NCHW")]
        >>> fig = throughput_figure({"date": "2026-12-04", "machine": "CPU, 2 cores",
        ...                          "throughput": rows})
        >>> [len(ax.patches) for ax in fig.axes], [ax.get_title() for ax in fig.axes]
        ([4, 4], ['lenet5', 'resnet18'])
    """
    rows = results.get("throughput") or []
    if not rows:
        raise ValueError("`results` has no throughput rows to plot.")
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = _figure(4.0 * len(models) + 1.0, 3.6, len(models))
    for ax, model in zip(axes, models, strict=True):
        mine = [r for r in rows if r["model"] == model]
        width = 0.8 / len(mine)
        for i, row in enumerate(mine):
            values = [row["train"] or 0.0, row["infer"] or 0.0]
            ax.bar([k + (i - (len(mine) - 1) / 2) * width for k in range(2)], values, width,
                   label=row["framework"], color=COLOURS.get(row["framework"]))
        ax.set_xticks([0, 1], ["train step", "inference"])
        ax.set_title(model)
        ax.set_ylabel("images/s")
    axes[-1].legend(fontsize="small")
    fig.suptitle(f"Throughput by framework and model\n({_when(results)})")
    return fig


def scaling_figure(results: dict[str, Any]) -> Any:
    """Lines of images/s against the batch size and against the device count.

    Args:
        results: :func:`parse_results`'s dict (``batch_scaling`` and/or ``device_scaling``).

    Returns:
        the ``matplotlib.figure.Figure`` (one panel per table present), titled with the date
        and machine.

    Raises:
        ValueError: neither table is present.

    Example:
        >>> fig = scaling_figure({"date": "d", "machine": "m",
        ...     "batch_scaling": [{"batch": b, "images_per_s": b / 2} for b in (32, 64)],
        ...     "device_scaling": [{"path": p, "devices": n, "images_per_s": 9.0}
        ...                        for p in ("pmap", "mesh") for n in (1, 2, 4)]})
        >>> [len(ax.lines) for ax in fig.axes], fig.axes[1].get_xlabel()
        ([1, 2], 'devices (forced host devices on the same cores)')
    """
    batch, devices = results.get("batch_scaling") or [], results.get("device_scaling") or []
    if not batch and not devices:
        raise ValueError("`results` has no scaling rows to plot.")
    fig, axes = _figure(10.0 if batch and devices else 5.5, 3.6,
                        2 if batch and devices else 1)
    panels = iter(axes)
    if batch:
        ax = next(panels)
        ax.plot([r["batch"] for r in batch], [r["images_per_s"] for r in batch], "o-",
                color=COLOURS["jaxcnn"])
        ax.set_xscale("log", base=2)
        ax.set_xticks([r["batch"] for r in batch], [str(r["batch"]) for r in batch])
        ax.set_xlabel("batch size (one device)")
        ax.set_ylabel("images/s")
        ax.set_title("LeNet-5 train step vs batch size")
    if devices:
        ax = next(panels)
        for path in dict.fromkeys(r["path"] for r in devices):
            mine = sorted((r["devices"], r["images_per_s"]) for r in devices
                          if r["path"] == path)
            ax.plot(*zip(*mine, strict=True), "o-" if len(mine) > 1 else "s", label=path)
        counts = sorted({r["devices"] for r in devices})
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.set_xlabel("devices (forced host devices on the same cores)")
        ax.set_ylabel("images/s")
        ax.set_title("LeNet-5 train step vs device count")
        ax.legend(fontsize="small")
    fig.suptitle(f"Scaling\n({_when(results)})")
    return fig


def time_to_accuracy_figure(results: dict[str, Any]) -> Any:
    """Horizontal bars: wall seconds from launch to the target test accuracy, per model.

    Args:
        results: :func:`parse_results`'s dict (needs ``time_to_accuracy`` rows).

    Returns:
        the ``matplotlib.figure.Figure``, titled with the target, date and machine.

    Raises:
        ValueError: no time-to-accuracy rows.

    Example:
        >>> fig = time_to_accuracy_figure({"date": "d", "machine": "m", "time_to_accuracy": [
        ...     {"model": "lenet5", "target": "99.0%", "wall_s": 28.0},
        ...     {"model": "lenet5_modern", "target": "99.0%", "wall_s": 52.0}]})
        >>> len(fig.axes[0].patches), [t.get_text() for t in fig.axes[0].get_yticklabels()]
        (2, ['lenet5', 'lenet5_modern'])
    """
    rows = results.get("time_to_accuracy") or []
    if not rows:
        raise ValueError("`results` has no time-to-accuracy rows to plot.")
    fig, (ax,) = _figure(6.5, 0.6 * len(rows) + 1.6)
    ax.barh(range(len(rows)), [r["wall_s"] for r in rows], color=COLOURS["jaxcnn"])
    ax.set_yticks(range(len(rows)), [r["model"] for r in rows])
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        ax.annotate(f" {r['wall_s']:g} s", (r["wall_s"], i), va="center")
    ax.set_xlim(0, 1.2 * max(r["wall_s"] for r in rows))
    ax.set_xlabel("wall seconds from launch (start-up, data, compilation, training)")
    targets = ", ".join(dict.fromkeys(r["target"] for r in rows))
    fig.suptitle(f"Time to {targets} test accuracy on MNIST\n({_when(results)})")
    return fig


def write_figures(results_md: str | Path = RESULTS, out_dir: str | Path | None = None
                  ) -> list[Path]:
    """Write the figures of ``results_md``'s ``benchmarks.run`` section as PNG files.

    Args:
        results_md: the results file (default ``benchmarks/RESULTS.md``).
        out_dir: where to write :data:`FILES` (default: the results file's directory).

    Returns:
        the paths written, in :data:`FILES` order; a figure whose data the section lacks is
        skipped.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "R.md").write_text("\\n".join([BEGIN, "Command: `x`; 2026-12-04; "
        ...     "Machine: CPU, 2 cores.", "", "| batch | images/s | step ms |", "|---|---|---|",
        ...     "| 32 | 5076.4 | 6.3 |", "| 64 | 12383.1 | 5.2 |", END]))
        >>> [p.name for p in write_figures(d / "R.md")]
        ['benchmark_scaling.png']
    """
    results_md = Path(results_md)
    results = parse_results(results_md.read_text())
    out_dir = Path(out_dir) if out_dir is not None else results_md.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = {"throughput": (throughput_figure, results["throughput"]),
              "scaling": (scaling_figure, results["batch_scaling"] or
                          results["device_scaling"]),
              "time_to_accuracy": (time_to_accuracy_figure, results["time_to_accuracy"])}
    written = []
    for key, (make, data) in makers.items():
        if data:
            path = out_dir / FILES[key]
            # tight: a long title grows the image instead of being cut at its edges
            make(results).savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.05)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """``python -m benchmarks.plots``: write the figures; print each path."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plots",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results file")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: the results file's)")
    args = parser.parse_args(argv)
    paths = write_figures(args.results, args.out)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
