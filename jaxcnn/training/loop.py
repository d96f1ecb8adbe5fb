"""The training loop: data, model, optimizer, parallel strategy, checkpoints, logging.

One function, :func:`train`, driven by a config (``ml_collections.ConfigDict``, a mapping or
any object with the fields of ``experiments/configs/default.py``; the accepted fields and
their defaults are in :mod:`jaxcnn.training.config`). It resumes from the latest checkpoint
in ``workdir`` automatically; since the data order is a function of ``(seed, epoch)`` and
dropout keys of ``(rng, step)``, an interrupted and resumed run ends with the same bits as an
uninterrupted one.
"""

from __future__ import annotations

import itertools
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import models
from jaxcnn.augment import compose, mixes_labels
from jaxcnn.training import config as config_fields
from jaxcnn.training.checkpoint import Checkpointer
from jaxcnn.training.config import validate_config
from jaxcnn.training.logging import MetricsLogger, plot_curves, read_metrics
from jaxcnn.training.metrics import summarize
from jaxcnn.training.optim import make_optimizer, make_schedule, schedule_count
from jaxcnn.training.parallel import PMAP_AXIS, make_strategy
from jaxcnn.training.state import create_train_state

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _get(config: Any, name: str) -> Any:
    """Field ``name`` of ``config``, or its default from :mod:`jaxcnn.training.config`."""
    return config_fields.get(config, name)


def _load_data(config: Any):
    from jaxcnn import data

    kwargs = {"image_size": _get(config, "image_size")} if _get(config, "image_size") else {}
    if _get(config, "dataset").startswith("fake_"):
        from jaxcnn.data.fake import load_fake

        return (load_fake(_get(config, "dataset"), "train", **kwargs),
                load_fake(_get(config, "dataset"), _get(config, "eval_split"), **kwargs))
    train = data.load(_get(config, "dataset"), "train", _get(config, "data_dir"), **kwargs)
    test = data.load(_get(config, "dataset"), _get(config, "eval_split"),
                     _get(config, "data_dir"), **kwargs)
    return train, test


def _build_model(config: Any, num_classes: int, parallel: str):
    options = dict(_get(config, "model_options") or {})
    dtype = _get(config, "dtype")
    if dtype not in _DTYPES:
        raise ValueError(f"config.dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
    if dtype != "float32":
        options["dtype"] = _DTYPES[dtype]
    model = models.create(_get(config, "model"), num_classes=num_classes, **options)
    if parallel == "pmap" and models.has_batch_norm(model):
        # pmap: each device sees a slice of the batch; BatchNorm pools over the devices.
        model = models.create(_get(config, "model"), num_classes=num_classes,
                              bn_axis_name=PMAP_AXIS, **options)
    return model


def _as_nnx(state, model, image_shape: tuple[int, ...], seed: int):
    """The NNX train state of ``model`` starting from ``state``'s variables and key.

    The same initial weights as the Linen run of this config (so the two front ends can be
    compared run for run); the model is an ``nnx.Module`` updated by ``nnx.Optimizer``.
    """
    from flax import nnx

    from jaxcnn.nnx import ZooModel
    from jaxcnn.training.nnx_state import create_nnx_train_state

    variables = {"params": state.params, "batch_stats": state.batch_stats}
    nnx_model = ZooModel(model, image_shape, rngs=nnx.Rngs(params=seed, dropout=seed),
                         variables=variables)
    return create_nnx_train_state(nnx_model, state.tx, state.rng)


@jax.jit
def _track_nonfinite(first: jax.Array, metrics: dict[str, jax.Array], step: int) -> jax.Array:
    """``first`` = (step, kind) of the first non-finite step so far; kind 1 loss, 2 grads.

    Runs on the device every step so the host only looks at it at log and save points.
    """
    kind = jnp.where(jnp.max(metrics["nonfinite_loss"]) > 0, 1,
                     jnp.where(jnp.max(metrics["nonfinite_grads"]) > 0, 2, 0))
    return jnp.where((first[0] < 0) & (kind > 0), jnp.stack([step, kind]), first)


def _check_nonfinite(first: jax.Array, mode: str, checkpointer: Checkpointer) -> None:
    step, kind = (int(v) for v in jax.device_get(first))
    if step < 0 or mode == "skip":
        return
    what = "loss" if kind == 1 else "gradients"
    raise FloatingPointError(
        f"training stopped: non-finite {what} (NaN or Inf) at step {step}. That step's update "
        f"was not applied; the last checkpoint, step {checkpointer.latest_step()} in "
        f"{checkpointer.directory}, is intact. Lower config.learning_rate, set "
        f"config.grad_clip_norm, check the inputs for NaN, or set config.nonfinite='skip' to "
        f"drop such steps and go on.")


class _Preemption:
    """When to stop for a preemption notice (SIGTERM): at one step, the same on every process.

    * One process: a SIGTERM handler sets a flag; the loop stops after the current step.
    * Several processes with JAX's preemption service (``jax.distributed.initialize`` starts
      it unless ``jax_enable_preemption_service`` is off): its own SIGTERM handler, installed
      at start-up, tells the coordination service, which tells every process; they agree on
      the step after the furthest one reached and
      ``multihost_utils.reached_preemption_sync_point(n)`` is True there for all of them.
      ``n`` counts the steps of this invocation (``step - first_step``, from 1): the service
      starts every process's counter at 0, so a notice that arrives during start-up (restoring,
      compiling), before any step, syncs on the first step. (Absolute steps would make it sync
      on step 1, which a resumed run never reaches.) A Python handler would replace JAX's, so
      none is installed. A process that stopped on its own would leave the others waiting in
      the next collective, and save a different step.
    * Several processes without the service: the SIGTERM flag is all-gathered every
      ``sync_every`` steps (a host-blocking collective, so not every step), and every process
      stops at the first such step where any flag is set.

    The loop calls :meth:`reached` once per step, after dispatching it, starting from
    ``first_step`` (the step every process restored). Only the main thread can own signal
    handlers; elsewhere SIGTERM keeps its default action.
    """

    def __init__(self, first_step: int, sync_every: int):
        self.first_step = int(first_step)
        self.sync_every = max(int(sync_every), 1)
        self.flag = threading.Event()
        self._previous = None
        self.service = False
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            try:
                multihost_utils.reached_preemption_sync_point(0)  # raises if there is no service
                self.service = True
            except RuntimeError:  # jax_enable_preemption_service is off
                pass

    def __enter__(self) -> _Preemption:
        if not self.service and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self.flag.set())
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def reached(self, step: int) -> bool:
        """True at the step where every process saves and stops."""
        if self.service:
            from jax.experimental import multihost_utils

            return bool(multihost_utils.reached_preemption_sync_point(step - self.first_step))
        if jax.process_count() == 1:
            return self.flag.is_set()
        if step % self.sync_every:
            return False
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(self.flag.is_set()))
        return bool(np.any(flags))


def _eval(strategy, state, dataset, batch_size: int) -> dict[str, Any]:
    totals: dict[str, np.ndarray] = {}
    # The last batch is padded to a full batch and masked, so every example counts once and
    # the compiled eval step sees one shape.
    for batch in dataset.batches(batch_size, shuffle=False, drop_remainder=False,
                                 process_index=jax.process_index(),
                                 process_count=jax.process_count()):
        n = len(batch["label"])
        pad = batch_size - n
        batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)]) if pad else v
                 for k, v in batch.items()}
        batch["mask"] = (np.arange(batch_size) < n).astype(np.int32)
        sums = strategy.get_metrics(strategy.eval_step(state, strategy.put_batch(batch)))
        totals = sums if not totals else {k: totals[k] + sums[k] for k in totals}
    return summarize(totals)


def train(config: Any, workdir: str | Path, *, stop_after: int | None = None
          ) -> dict[str, Any]:
    """Train ``config.model`` on ``config.dataset``; return the final evaluation metrics.

    The config's fields are those of :mod:`jaxcnn.training.config` (``FIELDS``); any other
    field, e.g. a misspelling, is a ``ValueError`` before anything runs.

    ``stop_after`` ends this invocation after that step with a checkpoint, as a preempted or
    time-limited job would; running again resumes there.

    Writes to ``workdir``: checkpoints (``checkpoints/``), ``metrics.jsonl``, TensorBoard
    events, ``curves.png`` and ``final_metrics.json`` (also returned), which holds at least
    ``eval_accuracy``, ``eval_loss``, ``steps`` and ``wall_s``.

    Example:
        >>> import tempfile
        >>> from experiments.configs import default
        >>> config = default.get_config()
        >>> config.num_steps, config.eval_every_steps = 3, 0
        >>> final = train(config, tempfile.mkdtemp())   # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    validate_config(config)  # a misspelled field must not train on with its default
    start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    parallel, dataset = _get(config, "parallel"), _get(config, "dataset")
    seed = int(_get(config, "seed"))
    train_ds, test_ds = _load_data(config)
    num_classes = train_ds.num_classes
    batch_size = int(_get(config, "batch_size"))
    processes = jax.process_count()
    if batch_size % processes:
        raise ValueError(f"config.batch_size={batch_size} must be divisible by the "
                         f"{processes} processes.")
    local_batch = batch_size // processes
    steps_per_epoch = train_ds.num_batches(local_batch, process_index=jax.process_index(),
                                           process_count=processes)
    if steps_per_epoch == 0:
        raise ValueError(f"config.batch_size={batch_size} is larger than the {len(train_ds)} "
                         f"training examples of {dataset!r}; use a smaller batch.")
    num_steps = _get(config, "num_steps") or int(_get(config, "num_epochs") * steps_per_epoch)

    schedule = make_schedule(
        _get(config, "schedule"), _get(config, "learning_rate"), total_steps=num_steps,
        warmup_steps=int(_get(config, "warmup_epochs") * steps_per_epoch),
        decay_rate=_get(config, "decay_rate"),
        boundaries=[int(e * steps_per_epoch) for e in _get(config, "decay_epochs")])
    weight_decay = float(_get(config, "weight_decay"))
    decoupled = _get(config, "weight_decay_mode") == "decoupled"
    tx = make_optimizer(_get(config, "optimizer"), schedule, momentum=_get(config, "momentum"),
                        weight_decay=weight_decay, decoupled_weight_decay=decoupled,
                        clip_norm=_get(config, "grad_clip_norm"),
                        rmsprop_decay=_get(config, "rmsprop_decay"))
    api = _get(config, "api")
    if api not in models.APIS:
        raise ValueError(f"config.api must be one of {models.APIS}, got {api!r}.")
    model = _build_model(config, num_classes, parallel)
    sample = jnp.zeros((1, *train_ds.image_shape), jnp.float32)
    state = create_train_state(model, tx, jax.random.PRNGKey(seed), sample)
    if api == "nnx":
        state = _as_nnx(state, model, train_ds.image_shape, seed)
    augment_config = list(_get(config, "augment") or ())
    # Datasets with per-channel statistics (not the synthetic FakeDataset) yield uint8 batches
    # that the step normalises on the device, after augmenting them as [0, 1] pixels.
    mean = getattr(train_ds, "mean", None)
    stats = None if mean is None else (mean, train_ds.std)
    strategy = make_strategy(
        parallel, num_classes=num_classes,
        # an NNX model's sharding annotations (nnx.with_partitioning) place its state
        state_specs=(state.partition_specs() if parallel == "mesh"
                     and hasattr(state, "partition_specs") else None),
        augment=compose(augment_config) if augment_config else None,
        augment_labels=mixes_labels(augment_config),  # mixup: (N, K) soft labels
        label_smoothing=_get(config, "label_smoothing"),
        l2_weight_decay=0.0 if decoupled or _get(config, "optimizer") == "adamw" else weight_decay,
        # uint8 batches, normalised on the device: a quarter of the bytes to place per step
        # and no host pass over the pixels (the loop's host work bounds LeNet-size steps)
        input_normalization=(None if stats is None else (tuple(stats[0]), tuple(stats[1]))))

    nonfinite = _get(config, "nonfinite")
    if nonfinite not in ("stop", "skip"):
        raise ValueError(f"config.nonfinite must be 'stop' or 'skip', got {nonfinite!r}.")
    is_main = jax.process_index() == 0
    checkpointer = Checkpointer(workdir / "checkpoints",
                                every_steps=int(_get(config, "checkpoint_every_steps")),
                                keep=int(_get(config, "keep_checkpoints")))
    state = checkpointer.restore_latest(state)
    first_step = int(state.step)
    placed = strategy.put_state(state)
    log_every = int(_get(config, "log_every_steps"))
    eval_every = int(_get(config, "eval_every_steps") or steps_per_epoch)
    eval_batch = int(_get(config, "eval_batch_size") or batch_size) // processes

    from jaxcnn.data import check_batch, prefetch_to_device

    # Labels were checked when the dataset was loaded; pixels only on request, since the scan
    # of every batch on the host costs time (config.check_finite_inputs).
    check_finite = bool(_get(config, "check_finite_inputs"))

    def batches_from(step: int):
        """Batches for steps ``step, step + 1, ...``: skip what an earlier run consumed."""
        epoch, offset = divmod(step, steps_per_epoch)
        for e in itertools.count(epoch):
            it = train_ds.batches(local_batch, seed=seed, epoch=e,
                                  process_index=jax.process_index(), process_count=processes,
                                  normalize=stats is None)
            for batch in itertools.islice(it, offset if e == epoch else 0, None):
                yield check_batch(batch, num_classes, finite=True) if check_finite else batch

    logger = MetricsLogger(workdir, enabled=is_main)
    bar = tqdm(total=num_steps, initial=first_step, disable=not is_main, unit="step",
               dynamic_ncols=True)
    window_start, window_steps = time.perf_counter(), 0
    step = first_step
    batches = prefetch_to_device(batches_from(first_step), size=2, put=strategy.put_batch)
    last_step = num_steps if stop_after is None else min(stop_after, num_steps)
    first_bad = jnp.asarray([-1, 0], jnp.int32)
    with _Preemption(first_step, sync_every=log_every) as preemption:
        for step in range(first_step + 1, last_step + 1):
            placed, metrics = strategy.train_step(placed, next(batches))
            first_bad = _track_nonfinite(first_bad, metrics, step)
            window_steps += 1
            if step % log_every == 0 or step == last_step:
                _check_nonfinite(first_bad, nonfinite, checkpointer)
                m = strategy.get_metrics(metrics)  # the only host sync in the loop
                rate = window_steps * batch_size / (time.perf_counter() - window_start)
                # The schedule runs on the optimizer's clock, which skipped (non-finite) steps
                # do not advance: the rate of the last applied update is schedule(count - 1).
                applied = schedule_count(placed.opt_state)
                applied = step if applied is None else applied
                record = {"train_loss": float(m["loss"]), "train_accuracy": float(m["accuracy"]),
                          "nonfinite_step": float(m["nonfinite_loss"] + m["nonfinite_grads"] > 0),
                          "images_per_s": rate,
                          "learning_rate": float(schedule(max(applied - 1, 0)))}
                logger.write(step, record)
                bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                                acc=f"{record['train_accuracy']:.3f}", img_s=f"{rate:.0f}")
                window_start, window_steps = time.perf_counter(), 0
            bar.update(1)
            if checkpointer.should_save(step):
                _check_nonfinite(first_bad, nonfinite, checkpointer)
                checkpointer.save(strategy.get_state(placed))
            if step % eval_every == 0 and step != last_step:
                ev = _eval(strategy, placed, test_ds, eval_batch)
                logger.write(step, {"eval_loss": ev["loss"], "eval_accuracy": ev["accuracy"]})
            if preemption.reached(step):
                _check_nonfinite(first_bad, nonfinite, checkpointer)
                checkpointer.save(strategy.get_state(placed), force=True)
                checkpointer.close()
                logger.close()
                bar.close()
                every = (f" (a preemption notice to any of the {processes} processes stops "
                         f"them all at the same step)" if processes > 1 else "")
                print(f"SIGTERM: saved a checkpoint at step {step} in "
                      f"{checkpointer.directory}; rerun the same command to resume{every}.",
                      file=sys.stderr, flush=True)
                raise SystemExit(143)
    bar.close()
    final_state = strategy.get_state(placed)
    checkpointer.save(final_state, force=True)
    checkpointer.close()
    ev = _eval(strategy, placed, test_ds, eval_batch)
    final = {"eval_accuracy": ev["accuracy"], "eval_loss": ev["loss"],
             "eval_top5_accuracy": ev["top5_accuracy"], "steps": step,
             "wall_s": round(time.perf_counter() - start, 3),
             "resumed_from_step": first_step, "model": _get(config, "model"),
             "dataset": dataset, "parallel": parallel,
             "per_class_accuracy": ev.get("per_class_accuracy")}
    logger.write(step, {"eval_loss": ev["loss"], "eval_accuracy": ev["accuracy"]})
    logger.close()
    if is_main:
        (workdir / "final_metrics.json").write_text(json.dumps(final, indent=2))
        (workdir / "confusion_matrix.json").write_text(json.dumps(ev.get("confusion_matrix")))
        plot_curves(read_metrics(logger.path), workdir / "curves.png")
    return final
