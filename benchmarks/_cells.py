"""One benchmark cell per process: a (framework, model, mode) measured in a fresh interpreter.

    python -m benchmarks._cells '{"framework": "jaxcnn", "model": "lenet5", "mode": "train"}'

prints one line ``BENCH_CELL {json}`` (the keys of :func:`measure`). A fresh process per cell
keeps frameworks from sharing thread pools, allocators or XLA flags: jaxcnn cells import
``jaxcnn`` (and get whatever it sets up on import), ``flax`` and ``peak`` cells never do, and
the parent passes every cell the same environment.

This module imports nothing heavy at module level so the runner can read :data:`MODELS`
without importing JAX, PyTorch or jaxcnn.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

FRAMEWORKS = ("jaxcnn", "flax", "torch", "torch_cl", "torch_compile")
"""``torch_cl`` is PyTorch with the model and input in ``channels_last`` memory format;
``torch_compile`` is that model through ``torch.compile`` (Inductor, default mode; its
compilation is the cell's ``first_s``)."""
MODES = ("train", "infer")
MARK = "BENCH_CELL "
LEARNING_RATE = 0.01


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What one benchmark model is and how it is timed.

    Attributes:
        registry_name: the ``jaxcnn.models.create`` name.
        options: extra ``create`` options (``cifar_stem``).
        num_classes: head size.
        shape: one input image, ``(H, W, C)``.
        batch: batch size of the throughput table.
        steps: timed steps per cell (their median is reported).
        warmup: untimed steps after the first call.
        baselines: frameworks measured besides jaxcnn.
    """

    registry_name: str
    options: dict[str, Any]
    num_classes: int
    shape: tuple[int, int, int]
    batch: int
    steps: int
    warmup: int
    baselines: tuple[str, ...] = ("torch", "torch_cl")


MODELS: dict[str, ModelSpec] = {
    "lenet5": ModelSpec("lenet5", {}, 10, (32, 32, 1), 256, steps=20, warmup=3,
                        baselines=("flax", "torch", "torch_cl")),
    # 3 warm-up steps: with jaxcnn's malloc settings, the second step still grows the heap
    # (154k page faults; 0 from the third on), which 1 warm-up step left in the timed ones.
    "resnet18": ModelSpec("resnet18", {"cifar_stem": True}, 10, (32, 32, 3), 128, steps=8,
                          warmup=3, baselines=("flax", "torch", "torch_cl")),
    "vgg16": ModelSpec("vgg16", {}, 1000, (224, 224, 3), 16, steps=3, warmup=1),
    "resnet50": ModelSpec("resnet50", {}, 1000, (224, 224, 3), 16, steps=3, warmup=1),
}
"""Benchmark name -> spec: LeNet-5 on MNIST (32x32x1), ResNet-18 on CIFAR (CIFAR stem),
VGG-16 and ResNet-50 at ImageNet's 224x224."""


def cores() -> int:
    """CPU cores this process may run on (the thread count given to every framework)."""
    return len(os.sched_getaffinity(0))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(step: Callable[[], None], steps: int, warmup: int
           ) -> tuple[float, list[float], dict[str, float]]:
    """``(first call s, [per-step s], host)``: one first call, ``warmup`` untimed, ``steps``
    timed; ``host`` holds the minor page faults and kernel CPU seconds per timed step."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(warmup):
        step()
    times = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    host = {"minflt_per_step": (after.ru_minflt - before.ru_minflt) / steps,
            "sys_s_per_step": (after.ru_stime - before.ru_stime) / steps}
    return first, times, host


def _data(spec: ModelSpec, batch: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, *spec.shape), dtype=np.float32)
    labels = rng.integers(0, spec.num_classes, batch).astype(np.int32)
    return images, labels


def _jax_cell(framework: str, spec: ModelSpec, model_name: str, mode: str, images, labels,
              steps: int, warmup: int, parallel: str = "none", devices: int = 1
              ) -> dict[str, Any]:
    if framework == "jaxcnn":
        # First, as a user's script would: the malloc settings (jaxcnn.tune_host_malloc) must
        # precede JAX's CPU backend (jaxcnn/_native/host_memory.py). The benchmark is an
        # application and opts in; JAXCNN_HOST_MALLOC=0 is the A/B switch of
        # benchmarks.host_memory.
        from jaxcnn._native.host_memory import configure_from_env

        configure_from_env()
    import jax
    import jax.numpy as jnp

    setup_start = time.perf_counter()
    sample = jnp.zeros((1, *spec.shape), jnp.float32)
    batch = {"image": images, "label": labels}
    if framework == "jaxcnn":
        from jaxcnn import models
        from jaxcnn.training import create_train_state, make_optimizer, make_strategy
        from jaxcnn.training.parallel import PMAP_AXIS

        if len(jax.devices()) < devices:
            raise ValueError(f"cell asks for {devices} devices, JAX has {len(jax.devices())}; "
                             f"set XLA_FLAGS=--xla_force_host_platform_device_count={devices}.")
        model = models.create(spec.registry_name, num_classes=spec.num_classes,
                              **spec.options)
        if parallel == "pmap" and models.has_batch_norm(model):  # synchronised BatchNorm
            model = models.create(spec.registry_name, num_classes=spec.num_classes,
                                  bn_axis_name=PMAP_AXIS, **spec.options)
        state = create_train_state(model, make_optimizer("momentum", LEARNING_RATE, momentum=0.9),
                                   jax.random.PRNGKey(0), sample)
        strategy = make_strategy(parallel, num_classes=spec.num_classes,
                                 devices=jax.devices()[:devices])
        train_fn, state, batch = (strategy.train_step, strategy.put_state(state),
                                  strategy.put_batch(batch))
        from jaxcnn._native import host_memory, onednn

        conv_backend = onednn.status()
        host_malloc = host_memory.status()
    else:
        conv_backend, host_malloc = "XLA (lax.conv_general_dilated)", "malloc unchanged"
        if parallel != "none":
            raise ValueError(f"cell `parallel` applies to jaxcnn cells only, got {parallel!r} "
                             f"for {framework!r}.")
        from benchmarks import flax_models

        model = flax_models.build(model_name, spec.num_classes)
        state = flax_models.create_state(model, jax.random.PRNGKey(0), sample, LEARNING_RATE)
        train_fn, batch = jax.jit(flax_models.train_step), jax.device_put(batch)
    jax.block_until_ready((state, batch))
    setup_s = time.perf_counter() - setup_start  # model + state creation (jit of init)
    params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))

    if mode == "train":
        fn, args = train_fn, [state, batch]

        def step():
            args[0], metrics = fn(*args)
            jax.block_until_ready((args[0], metrics))
    else:
        variables = {"params": state.params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
        args = [variables, batch["image"]]

        def step():
            jax.block_until_ready(fn(*args))

    out: dict[str, Any] = {"params": int(params), "setup_s": setup_s,
                           "versions": {"jax": jax.__version__}, "conv_backend": conv_backend,
                           "host_malloc": host_malloc}
    if hasattr(fn, "lower"):  # a jit/pmap object: lower and compile ahead, timed apart
        start = time.perf_counter()
        lowered = fn.lower(*args)
        out["lower_s"] = time.perf_counter() - start
        compiled = lowered.compile()
        out["compile_s"] = time.perf_counter() - start - out["lower_s"]
        if framework == "jaxcnn":
            # XLA cannot count the FLOPs of oneDNN's custom calls: count those of the same
            # function traced afresh with XLA's convolutions (lowered, never compiled or run).
            from jaxcnn.functional import conv_backend as use_backend

            with use_backend("xla"):
                fresh = (make_strategy(parallel, num_classes=spec.num_classes,
                                       devices=jax.devices()[:devices]).train_step
                         if mode == "train" else
                         jax.jit(lambda v, x: model.apply(v, x, train=False)))
                cost = fresh.lower(*args).cost_analysis()
        else:
            cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list | tuple) else cost  # older jax: one per device
        out["flops"] = float((cost or {}).get("flops", 0.0)) or None
        del compiled  # the jit call below reuses the cached executable
    out["first_s"], out["times"], host = _timed(step, steps, warmup)
    return {**out, **host}


def _torch_cell(framework: str, spec: ModelSpec, model_name: str, mode: str, images, labels,
                steps: int, warmup: int) -> dict[str, Any]:
    import torch

    from benchmarks import torch_models

    torch.set_num_threads(cores())
    torch.manual_seed(0)
    model = torch_models.build(model_name, spec.num_classes)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    y = torch.from_numpy(labels).long()
    if framework in ("torch_cl", "torch_compile"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if framework == "torch_compile" else model
    if mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(forward(x), y)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                forward(x)

    first, times, host = _timed(step, steps, warmup)
    return {"params": torch_models.count_params(model), "first_s": first, "times": times,
            "threads": torch.get_num_threads(), "versions": {"torch": torch.__version__}, **host}


def _peak_cell(size: int, repeats: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.standard_normal((size, size), dtype=np.float32)) for _ in range(2))
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return {"gflops": 2 * size**3 / best / 1e9, "seconds": best, "size": size,
            "versions": {"jax": jax.__version__}}


def measure(cell: dict[str, Any]) -> dict[str, Any]:
    """Measure one cell in this process and return its result.

    Args:
        cell: ``{"framework": one of FRAMEWORKS or "peak", "model": a MODELS key, "mode":
            "train" | "infer", optional "batch", "steps", "warmup", "seed"}``; jaxcnn cells
            also take ``"parallel"`` (``make_strategy`` mode, default ``"none"``) and
            ``"devices"`` (how many of ``jax.devices()``, default 1); a ``peak`` cell takes
            ``"size"`` and ``"repeats"`` instead (best-of-``repeats`` f32 ``jnp.dot``).

    Returns:
        The cell plus ``images_per_s`` (batch / median step), ``step_s`` (median), ``times``
        (every timed step), ``first_s`` (first call), ``minflt_per_step`` and
        ``sys_s_per_step`` (minor page faults and kernel CPU seconds per timed step),
        ``params``, ``peak_rss_mib`` (this
        process's ``ru_maxrss``), ``cores``, ``load_1min`` (the machine's load average at the
        end: other jobs), ``xla_flags`` (as seen after the imports), and for JAX cells
        ``conv_backend`` (who computes the convolutions), ``host_malloc`` (what the cell's
        opt-in did to ``malloc``: :mod:`jaxcnn._native.host_memory`), ``setup_s`` (model and
        train-state creation, which compiles ``init``), ``lower_s``, ``compile_s`` and
        ``flops`` (XLA's cost analysis, per step; for jaxcnn, of the step with XLA's
        convolutions, as XLA cannot count oneDNN's) when the step is a jit/pmap object
        (``first_s`` then excludes them).

    Example:
        >>> r = measure({"framework": "peak", "size": 64, "repeats": 2})
        >>> r["gflops"] > 0
        True
    """
    framework = cell["framework"]
    result: dict[str, Any] = dict(cell)
    if framework == "peak":
        result.update(_peak_cell(int(cell.get("size", 2048)), int(cell.get("repeats", 5))))
    else:
        if framework not in FRAMEWORKS:
            raise ValueError(f"cell `framework` must be one of {FRAMEWORKS} or 'peak', got "
                             f"{framework!r}.")
        if cell.get("mode") not in MODES:
            raise ValueError(f"cell `mode` must be one of {MODES}, got {cell.get('mode')!r}.")
        spec = MODELS[cell["model"]]
        batch = int(cell.get("batch", spec.batch))
        steps, warmup = int(cell.get("steps", spec.steps)), int(cell.get("warmup", spec.warmup))
        images, labels = _data(spec, batch, int(cell.get("seed", 0)))
        if framework.startswith("torch"):
            out = _torch_cell(framework, spec, cell["model"], cell["mode"], images, labels,
                              steps, warmup)
        else:
            out = _jax_cell(framework, spec, cell["model"], cell["mode"], images, labels,
                            steps, warmup, cell.get("parallel", "none"),
                            int(cell.get("devices", 1)))
        step_s = statistics.median(out["times"])
        result.update(out, batch=batch, step_s=step_s, images_per_s=batch / step_s)
    result.update(peak_rss_mib=_peak_rss_mib(), cores=cores(), load_1min=os.getloadavg()[0],
                  xla_flags=os.environ.get("XLA_FLAGS", ""))
    return result


def cell_env(device_count: int | None = None, extra: dict[str, str] | None = None
             ) -> dict[str, str]:
    """The environment every cell gets: this one minus ``XLA_FLAGS``, on the CPU backend.

    ``XLA_FLAGS`` is dropped so that no cell inherits flags from the caller (pytest's conftest
    sets a device count) and the plain-Flax baseline runs with XLA's defaults; jaxcnn cells opt
    in to jaxcnn's ``malloc`` settings. ``device_count`` forces that many host devices instead;
    ``extra`` is added last (an A/B switch such as ``JAXCNN_HOST_MALLOC=0``, which turns that
    opt-in off).

    Example:
        >>> cell_env(4)["XLA_FLAGS"]
        '--xla_force_host_platform_device_count=4'
    """
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if device_count is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={int(device_count)}"
    return {**env, **(extra or {})}


def spawn(cell: dict[str, Any], *, device_count: int | None = None,
          env: dict[str, str] | None = None, timeout: float = 1800.0) -> dict[str, Any]:
    """Measure ``cell`` in a fresh ``python -m benchmarks._cells`` process; return its result.

    Args:
        cell: see :func:`measure`.
        device_count: forced host devices (``XLA_FLAGS``) for parallel cells; None: default.
        env: extra environment variables for the cell's process (see :func:`cell_env`).
        timeout: seconds before the cell is killed.

    Raises:
        RuntimeError: the cell failed; the message holds the end of its stderr.
    """
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "benchmarks._cells", json.dumps(cell)],
                          cwd=root, env=cell_env(device_count, env), capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        raise RuntimeError(f"benchmark cell {cell} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m benchmarks._cells '<cell as JSON>'")
    print(MARK + json.dumps(measure(json.loads(argv[0]))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
