"""LeNet-5 and lenet5_modern on real MNIST: accuracy, wall time and images/s.

    python -m benchmarks.mnist_accuracy --mnist-dir ../shared/data/mnist [--work /tmp/bench]

Prepares MNIST offline from the four IDX .gz files, runs each config through the experiment
command (a fresh process, as a user would), and prints a Markdown table. The wall time is the
whole command: dataset loading, compilation, training, per-epoch evaluation and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (row name, config, target accuracy, extra flags of the experiment command)
RUNS = (("lenet5", "experiments/configs/lenet_mnist.py", 0.990, ()),
        ("lenet5_modern", "experiments/configs/lenet_modern_mnist.py", 0.993, ()),
        # The same recipe with the model as an nnx.Module and nnx.Optimizer (issue 17).
        ("lenet5 api=nnx", "experiments/configs/lenet_mnist.py", 0.990, ("--config.api=nnx",)))
ROOT = Path(__file__).resolve().parents[1]


def run(mnist_dir: Path, work: Path, only: tuple[str, ...] = ()) -> list[dict]:
    data_dir = work / "tfds"
    if not (data_dir / "mnist").exists():
        subprocess.run([sys.executable, "-m", "jaxcnn.data.prepare", "mnist", "--from",
                        str(mnist_dir), "--data-dir", str(data_dir)], check=True, cwd=ROOT)
    rows = []
    for model, config, target, flags in RUNS:
        if only and model not in only:
            continue
        workdir = work / model.replace(" ", "_").replace("=", "_")
        if workdir.exists():
            subprocess.run(["rm", "-rf", str(workdir)], check=True)
        cmd = [sys.executable, "-m", "experiments.train", "--config", config, "--workdir",
               str(workdir), f"--config.data_dir={data_dir}", *flags]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        final = json.loads(proc.stdout.strip().splitlines()[-1])
        records = [json.loads(line) for line in (workdir / "metrics.jsonl").open()]
        rate = statistics.median(r["images_per_s"] for r in records if "images_per_s" in r)
        rows.append({"model": model, "config": config, "accuracy": final["eval_accuracy"],
                     "target": target, "wall_s": wall, "images_per_s": rate,
                     "steps": final["steps"]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | config | test accuracy | target | wall s (whole command) | "
             "train images/s (median) | steps |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['config']}` | {r['accuracy']:.4f} | "
                     f">= {r['target']:.3f} | {r['wall_s']:.0f} | {r['images_per_s']:.0f} | "
                     f"{r['steps']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, default=ROOT.parent / "shared/data/mnist")
    parser.add_argument("--work", type=Path, default=Path("/tmp/jaxcnn_bench_mnist"))
    parser.add_argument("--only", nargs="*", default=(), metavar="ROW",
                        help=f"run only these rows: {', '.join(repr(r[0]) for r in RUNS)}")
    args = parser.parse_args()
    rows = run(args.mnist_dir, args.work, tuple(args.only))
    print(table(rows))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
