"""Input-pipeline throughput (images/s) vs. the training step it has to feed.

    python benchmarks/input_pipeline.py [--data-dir DIR] [--mnist-from ../shared/data/mnist]

Measures, per dataset, with the batches a training loop gets (normalised float32 NHWC):

* ``decode once``: the one-off cost of decoding a split into numpy (``Dataset.images``);
* ``memory``: slicing + normalising batches from the decoded arrays (the default for
  MNIST/CIFAR/digits), alone and through ``prefetch_to_device``;
* ``grain wN``: grain over the ArrayRecord files with N worker processes, decoding each
  example (what ImageNet uses);

and, for comparison, the training step of LeNet-5 (MNIST, padded to 32x32) and ResNet-18
(CIFAR stem, 32x32x3) on the same machine. Real data: digits (bundled with scikit-learn) and
MNIST when ``--mnist-from`` holds the four IDX files. CIFAR-10 is not available offline, so
CIFAR-shaped timing uses random pixels written in the CIFAR-10 binary format ("cifar10-format
random", timing only, not a dataset): batching cost depends on the shape only, and random
pixels make PNG decoding somewhat slower than real photos would.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _fake_cifar_archive(folder: Path, per_file: int) -> None:
    """Random pixels in the exact cifar-10-binary.tar.gz layout (timing only, not a dataset)."""
    rng = np.random.default_rng(0)
    members = {"batches.meta.txt": "\n".join(f"class{i}" for i in range(10)).encode()}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, (per_file, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        members[name] = records.tobytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())


def _rate(images: int, seconds: float) -> str:
    return f"{images / seconds:>12,.0f}"


def _time_batches(iterator, limit: int, block=None) -> tuple[int, float]:
    """Images/s over at most ``limit`` batches, after taking one batch to warm up."""
    first = next(iterator)
    if block:
        block(first)
    count, start = 0, time.perf_counter()
    for i, batch in enumerate(iterator):
        if block:
            block(batch)
        count += len(batch["label"])
        if i + 1 >= limit:
            break
    return count, time.perf_counter() - start


def bench_pipeline(ds, batch_size: int, limit: int, workers: list[int]) -> list[tuple[str, str]]:
    import jax

    from jaxcnn.data import prefetch_to_device

    rows = []
    start = time.perf_counter()
    n = len(ds.images)  # decode the split once
    rows.append(("decode once (one-off)", _rate(n, time.perf_counter() - start)))
    rows.append(("memory", _rate(*_time_batches(ds.batches(batch_size, seed=0), limit))))
    rows.append(("memory + prefetch_to_device", _rate(*_time_batches(
        prefetch_to_device(ds.batches(batch_size, seed=0)), limit, jax.block_until_ready))))
    for w in workers:
        iterator = ds.batches(batch_size, seed=0, backend="grain", worker_count=w)
        rows.append((f"grain w{w}", _rate(*_time_batches(iterator, limit))))
        iterator.close()
    return rows


def bench_model(name: str, shape: tuple[int, ...], batch_size: int, steps: int) -> str:
    """Images/s of a jitted SGD training step (forward, backward, update)."""
    import importlib

    import jax
    import jax.numpy as jnp
    import optax

    import jaxcnn.models as models

    importlib.import_module("jaxcnn.models.resnet")  # registers resnet18 if not yet imported
    options = {"cifar_stem": True} if name == "resnet18" else {}
    model = models.create(name, num_classes=10, **options)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(batch_size, *shape)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(1).integers(0, 10, batch_size))
    variables = model.init(jax.random.key(0), x[:1])
    params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    optimizer = optax.sgd(0.01, momentum=0.9)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, state, opt_state, x, y):
        def loss_fn(p):
            logits, new_state = model.apply({"params": p, **state}, x, train=True,
                                            mutable=list(state),
                                            rngs={"dropout": jax.random.key(0)})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state
        (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, loss

    params, state, opt_state, loss = step(params, state, opt_state, x, y)  # compile
    jax.block_until_ready(loss)
    start = time.perf_counter()
    for _ in range(steps):
        params, state, opt_state, loss = step(params, state, opt_state, x, y)
    jax.block_until_ready(loss)
    return _rate(steps * batch_size, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="prepared datasets (default: a temporary folder)")
    parser.add_argument("--mnist-from", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-batches", type=int, default=100)
    parser.add_argument("--workers", default="0,2", help="grain worker counts to try")
    parser.add_argument("--model-steps", type=int, default=2)
    parser.add_argument("--cifar-examples", type=int, default=10_000,
                        help="size of the random CIFAR-format timing set (train split)")
    args = parser.parse_args()

    import warnings

    import jax

    import jaxcnn.data as data
    from jaxcnn.data.prepare import prepare

    scratch = Path(tempfile.mkdtemp(prefix="jaxcnn-bench-"))
    data_dir = Path(args.data_dir) if args.data_dir else scratch / "data"
    workers = [int(w) for w in args.workers.split(",") if w]
    warnings.filterwarnings("ignore", ".*standard release")  # the small CIFAR-format set
    print(f"device: {jax.devices()[0].platform}, host CPUs: {os.cpu_count()}, "
          f"load average: {os.getloadavg()[0]:.1f}, batch size {args.batch_size}\n")
    try:
        sets = [("digits (real, 32x32x1)", "digits", {})]
        if (Path(args.mnist_from) / "train-images-idx3-ubyte.gz").is_file():
            prepare("mnist", args.mnist_from, data_dir)
            sets.append(("MNIST (real, 28x28x1)", "mnist", {}))
        _fake_cifar_archive(scratch / "cifar_raw", args.cifar_examples // 5)
        prepare("cifar10", scratch / "cifar_raw", scratch / "cifar_data")
        sets.append(("cifar10-format random (32x32x3)", "cifar10",
                     {"data_dir": scratch / "cifar_data"}))
        print("| dataset | pipeline | images/s |\n|---|---|---:|")
        for title, name, kwargs in sets:
            ds = data.load(name, "train", data_dir=kwargs.get("data_dir", data_dir))
            for label, rate in bench_pipeline(ds, args.batch_size, args.max_batches, workers):
                print(f"| {title} | {label} | {rate} |")
        print("\n| model (training step, jit) | images/s |\n|---|---:|")
        for name, shape in (("lenet5", (32, 32, 1)), ("resnet18", (32, 32, 3))):
            rate = bench_model(name, shape, args.batch_size, args.model_steps)
            print(f"| {name} {shape} | {rate} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    # A program may set what the library leaves alone: glibc malloc for XLA:CPU
    # (jaxcnn.tune_host_malloc), before JAX's backend starts. JAXCNN_HOST_MALLOC=0: not.
    from jaxcnn._native.host_memory import configure_from_env

    configure_from_env()
    main()
