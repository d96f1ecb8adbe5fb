"""Where training metrics go: JSON lines, TensorBoard event files, a PNG of the curves."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jaxcnn.training.tensorboard import EventWriter


class MetricsLogger:
    """Append metrics to ``<workdir>/metrics.jsonl`` and TensorBoard events (no TensorFlow).

    TensorBoard files hold the scalars (:mod:`jaxcnn.training.tensorboard`). Only process 0 of a
    multi-host run should log (pass ``enabled=False`` elsewhere).

    Example:
        >>> import tempfile
        >>> with MetricsLogger(tempfile.mkdtemp()) as log:
        ...     log.write(1, {"train_loss": 2.3})
        ...     read_metrics(log.path)
        [{'step': 1, 'train_loss': 2.3}]
    """

    def __init__(self, workdir: str | os.PathLike, *, enabled: bool = True,
                 tensorboard: bool = True):
        self.path = Path(workdir) / "metrics.jsonl"
        self.enabled = enabled
        self._writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                self._writer = EventWriter(Path(workdir) / "tensorboard")

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        """Record ``metrics`` (scalars, or lists such as per-class accuracy) at ``step``."""
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), **metrics}) + "\n")
        if self._writer is not None:
            scalars = {name: value for name, value in metrics.items()
                       if isinstance(value, int | float)}
            if scalars:
                self._writer.add_scalars(int(step), scalars)

    def close(self) -> None:
        """Close the TensorBoard event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, in order.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1, "loss": 0.5}\\n')
        >>> read_metrics(p)
        [{'step': 1, 'loss': 0.5}]
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"`path` {os.fspath(path)!r} is not a file; pass a run's "
                                f"metrics file, <workdir>/metrics.jsonl.")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Save a PNG with loss (left) and accuracy (right) against step, train and eval.

    Example:
        >>> import tempfile, pathlib
        >>> out = plot_curves([{"step": 1, "train_loss": 2.0, "train_accuracy": 0.1},
        ...                    {"step": 2, "train_loss": 1.0, "eval_accuracy": 0.5}],
        ...                   pathlib.Path(tempfile.mkdtemp()) / "curves.png")
        >>> out.stat().st_size > 0
        True
    """
    # A Figure of its own (Agg canvas): no pyplot state, and the program's backend is left alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, kind in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix in ("train", "eval"):
            key = f"{prefix}_{kind}"
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o" if prefix == "eval" else None,
                        markersize=3, label=prefix)
        ax.set_xlabel("step")
        ax.set_ylabel(kind)
        ax.grid(alpha=0.3)
        if ax.get_lines():  # legend() on an empty panel warns
            ax.legend()
    ax_acc.set_ylim(0, 1)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
