"""Time-to-accuracy: wall seconds until LeNet-5 / lenet5_modern first reach 99.0% on real MNIST.

    python -m benchmarks.time_to_accuracy [--mnist-dir ../shared/data/mnist] [--work DIR]

Each config runs as a user would run it (``python -m experiments.train --config ...``, a fresh
process, the config as shipped: evaluation on the 10,000 test images after every epoch). The
clock starts when the command is launched, so it includes start-up, loading the prepared MNIST
and compilation; it stops when the first evaluation at or above the target appears in
``metrics.jsonl`` (polled every 0.2 s), and the run is then stopped. Resolution is one epoch
(469 steps at batch 128). MNIST is prepared offline from the IDX files first, as in
``benchmarks/mnist_accuracy.py``, whose configs this reuses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._cells import cell_env
from benchmarks.mnist_accuracy import ROOT, RUNS

TARGET = 0.990


def prepare(mnist_dir: Path, data_dir: Path) -> Path:
    """Prepare MNIST into ``data_dir`` from the four IDX .gz files, unless already there."""
    if not (data_dir / "mnist").exists():
        proc = subprocess.run([sys.executable, "-m", "jaxcnn.data.prepare", "mnist", "--from",
                               str(mnist_dir), "--data-dir", str(data_dir)], cwd=ROOT,
                              env=cell_env(), capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"preparing MNIST from {mnist_dir} failed:\n"
                               f"{proc.stderr[-3000:]}")
    return data_dir


def _new_records(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines appended to ``path`` since byte ``offset``, and the new offset."""
    if not path.exists():
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    return [json.loads(line) for line in data[:end].splitlines() if line], offset + end


def run_one(model: str, config: str, data_dir: Path, workdir: Path, target: float = TARGET,
            timeout: float = 1200.0, poll: float = 0.2) -> dict[str, Any]:
    """Launch one training command and time it to the first evaluation >= ``target``."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    cmd = [sys.executable, "-m", "experiments.train", "--config", config, "--workdir",
           str(workdir), f"--config.data_dir={data_dir}"]
    metrics, offset, evals = workdir / "metrics.jsonl", 0, []
    row: dict[str, Any] = {"model": model, "config": config, "target": target,
                           "reached": False, "wall_s": None, "step": None}
    with (workdir / "stderr.log").open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=cell_env(), stdout=subprocess.DEVNULL,
                                stderr=err)
        try:
            while True:
                done = proc.poll() is not None
                records, offset = _new_records(metrics, offset)
                now = time.perf_counter() - start
                for r in records:
                    if "eval_accuracy" in r:
                        evals.append({"step": r["step"], "accuracy": r["eval_accuracy"],
                                      "seen_s": round(now, 1)})
                        if r["eval_accuracy"] >= target and not row["reached"]:
                            row.update(reached=True, wall_s=now, step=r["step"],
                                       accuracy=r["eval_accuracy"])
                if row["reached"] or done or now > timeout:
                    break
                time.sleep(poll)
        finally:
            if proc.poll() is None:
                proc.terminate()  # SIGTERM: the loop saves a checkpoint and exits
                proc.wait(timeout=120)
    if not row["reached"]:
        row["accuracy"] = max((e["accuracy"] for e in evals), default=None)
        row["wall_s"] = time.perf_counter() - start
        row["returncode"] = proc.returncode
    row["evals"] = evals
    return row


def run(mnist_dir: Path, work: Path, target: float = TARGET,
        log=print) -> list[dict[str, Any]]:
    """Time-to-``target`` rows for ``benchmarks.mnist_accuracy.RUNS`` (LeNet-5, modern)."""
    data_dir = prepare(mnist_dir, work / "tfds")
    rows = []
    for model, config, _, flags in RUNS:
        if flags:  # the same recipe through another front end: the accuracy run covers it
            continue
        row = run_one(model, config, data_dir, work / model, target)
        log(f"  time to {target:.1%}: {model}: "
            + (f"{row['wall_s']:.0f} s (step {row['step']})" if row["reached"]
               else f"not reached (best {row['accuracy']}) in {row['wall_s']:.0f} s"))
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`run`'s rows.

    Example:
        >>> rows = [{"model": "lenet5", "config": "c.py", "target": 0.99, "reached": True,
        ...          "wall_s": 80.4, "step": 2345, "accuracy": 0.9912, "evals": [{}] * 5}]
        >>> print(table(rows).splitlines()[-1])
        | lenet5 | `c.py` | 99.0% | **80** | 2345 (5 evaluations) | 99.12% |
    """
    lines = ["| model | config | target | wall s to target | step (evaluations so far) | "
             "accuracy then |", "|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.2%}" if r.get("accuracy") is not None else "n/a"
        wall = f"**{r['wall_s']:.0f}**" if r["reached"] else f"not reached in {r['wall_s']:.0f}"
        lines.append(f"| {r['model']} | `{r['config']}` | {r['target']:.1%} | {wall} | "
                     f"{r['step']} ({len(r['evals'])} evaluations) | {acc} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, default=ROOT.parent / "shared/data/mnist")
    parser.add_argument("--work", type=Path, default=Path("/tmp/jaxcnn_bench_tta"))
    parser.add_argument("--target", type=float, default=TARGET)
    args = parser.parse_args()
    print(table(run(args.mnist_dir, args.work, args.target)))


if __name__ == "__main__":
    main()
