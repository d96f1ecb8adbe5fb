"""Pure train and eval steps. Parallel wrappers live in :mod:`jaxcnn.training.parallel`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn.training.losses import auxiliary_loss, l2_penalty
from jaxcnn.training.metrics import classification_sums
from jaxcnn.training.state import TrainState

Batch = dict[str, jax.Array]


def _variables(params: Any, batch_stats: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}


def make_train_step(*, label_smoothing: float = 0.0, l2_weight_decay: float = 0.0,
                    aux_weights: Sequence[float] = (1.0, 0.3, 0.3),
                    axis_name: str | None = None,
                    augment: Callable[..., Any] | None = None,
                    augment_labels: bool = False, num_classes: int | None = None,
                    input_normalization: tuple[Sequence[float], Sequence[float]] | None = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Build ``train_step(state, batch) -> (state, metrics)``: forward, backward, update.

    ``batch`` is ``{"image": (N, H, W, C) float, "label": (N,) int}``. The loss is the mean
    cross-entropy (with ``label_smoothing``), plus ``0.5 * l2_weight_decay * sum ||W||^2``
    over kernels when decay is an L2 loss term, plus weighted auxiliary-head losses when the
    model returns several outputs (GoogLeNet: ``aux_weights`` 1.0 / 0.3 / 0.3). ``augment``
    (e.g. :func:`jaxcnn.augment.compose`) maps ``(key, images) -> images`` on the device before
    the forward pass; with ``augment_labels=True`` it maps ``(key, images, one_hot) ->
    (images, soft_labels)`` instead (a pipeline with batch-level entries such as ``mixup``:
    the labels are one-hot encoded over ``num_classes`` first, and the loss and accuracy use
    the soft labels it returns). Dropout and augmentation keys derive from
    ``fold_in(state.rng, step)``: ``split`` of it gives ``(dropout_key, augment_key)``, so a
    step's randomness depends only on the state (with ``axis_name``, i.e. under ``pmap``, also
    on the device index, folded in after the step: each device draws its own masks, and
    ``mixup`` mixes within a device's slice of the batch).

    ``input_normalization=(mean, std)`` normalises integer (uint8) images on the device, as
    :func:`jaxcnn.data.normalize` does on the host: a quarter of the bytes to copy per step
    and no host pass over the pixels (the training loop uses it). With ``augment`` the order
    is: scale to ``[0, 1]``, augment, then ``(x - mean) / std``, since
    :mod:`jaxcnn.augment`'s colour functions expect ``[0, 1]`` pixels and its fills
    (``random_crop`` padding, ``cutout``, ``rotate``...) are pixel values (0 is black, not
    the mean). Float images are taken as already normalised and left as they are (augmented
    as given).

    A step whose loss or gradients are not finite leaves params, optimizer state and BatchNorm
    statistics unchanged and sets ``metrics["nonfinite_loss"]`` / ``["nonfinite_grads"]`` to 1.
    Two clocks, deliberately: ``state.step`` counts every step taken, skipped ones included
    (the data position and the dropout/augmentation keys follow it, so a resumed run is
    exact), while the optimizer state, including the learning-rate schedule's count and
    Adam's bias correction, advances only on applied updates, as under
    ``optax.apply_if_finite``: a skipped step is invisible to the optimizer, and the learning
    rate in use is ``schedule(count)`` with :func:`jaxcnn.training.optim.schedule_count`, not
    ``schedule(state.step)``.
    Under ``jit`` the step cannot raise on values: labels outside ``[0, K)`` and NaN pixels are
    caught on the host, before the batch is placed, by :func:`jaxcnn.data.check_batch`
    (``finite=True`` for the pixels).

    With ``axis_name`` (inside ``pmap`` or ``shard_map``), gradients, BatchNorm statistics and
    metrics are averaged over that axis with ``lax.pmean``; the model's BatchNorm layers
    should pool their statistics over the same axis. Under plain ``jit`` with sharded arrays
    (the mesh path) leave ``axis_name=None``: the step is written for the global batch and XLA
    inserts the collectives.

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> from jaxcnn.training import create_train_state
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(3)(x.reshape(x.shape[0], -1))
        >>> state = create_train_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(0),
        ...                            jnp.ones((4, 2, 2, 1)))
        >>> batch = {"image": jnp.ones((4, 2, 2, 1)), "label": jnp.array([0, 1, 2, 0])}
        >>> state, metrics = jax.jit(make_train_step())(state, batch)
        >>> sorted(metrics), int(state.step)
        (['accuracy', 'loss', 'nonfinite_grads', 'nonfinite_loss'], 1)
    """
    # Checked now: inside the step they would only fail at the first trace, or never.
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}.")
    if not l2_weight_decay >= 0.0:
        raise ValueError(f"`l2_weight_decay` must be >= 0, got {l2_weight_decay!r}.")
    if not len(aux_weights):
        raise ValueError("`aux_weights` must give at least the main head's weight, e.g. "
                         "(1.0, 0.3, 0.3) for GoogLeNet; got an empty sequence.")
    if input_normalization is not None:
        from jaxcnn.data.pipeline import normalize

        mean, std = input_normalization
        normalize(np.zeros((1, len(mean)), np.uint8), mean, std)  # checks mean and std now
    if augment is not None and not callable(augment):
        raise TypeError(f"`augment` must be a function (key, images) -> images such as "
                        f"jaxcnn.augment.compose([...]), got {augment!r}.")
    if augment_labels and (augment is None or isinstance(num_classes, bool)
                           or not isinstance(num_classes, Integral) or num_classes < 1):
        raise ValueError(f"`augment_labels=True` needs an `augment` function and "
                         f"`num_classes` (a positive int) to one-hot encode the labels, got "
                         f"augment={augment!r}, num_classes={num_classes!r}.")

    def loss_fn(params, state: TrainState, batch: Batch, rng):
        outputs, new_vars = state.apply_fn(
            _variables(params, state.batch_stats), batch["image"], train=True,
            mutable=["batch_stats"], rngs={"dropout": rng})
        loss, logits = auxiliary_loss(outputs, batch["label"], weights=aux_weights,
                                      label_smoothing=label_smoothing)  # int or soft labels
        if l2_weight_decay:
            loss = loss + l2_penalty(params, l2_weight_decay)
        return loss, (logits, new_vars.get("batch_stats", state.batch_stats))

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step)
        if axis_name is not None:
            rng = jax.random.fold_in(rng, lax.axis_index(axis_name))  # distinct dropout per device
        images, labels = batch["image"], batch["label"]
        integer = (input_normalization is not None
                   and jnp.issubdtype(images.dtype, jnp.integer))
        if augment is not None:
            rng, aug_rng = jax.random.split(rng)
            if integer:  # augment [0, 1] pixels, normalise after
                images = images.astype(jnp.float32) / 255.0
            if augment_labels:
                images, labels = augment(aug_rng, images, jax.nn.one_hot(labels, num_classes))
            else:
                images = augment(aug_rng, images)
            if integer:
                images = normalize(images, *input_normalization, max_value=1.0)
        elif integer:
            images = normalize(images, *input_normalization)
        batch = {**batch, "image": images, "label": labels}
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (logits, batch_stats)), grads = grad_fn(state.params, state, batch, rng)
        # Soft (mixed) labels: a prediction is right when it is the dominant class.
        target = jnp.argmax(labels, -1) if labels.ndim == 2 else labels
        metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == target)}
        if axis_name is not None:
            grads, batch_stats, metrics = lax.pmean((grads, batch_stats, metrics), axis_name)
        # A NaN/Inf loss or gradient never reaches the parameters: the update is dropped on the
        # device and flagged, so the loop can stop or skip without a host sync per step.
        # state.step still counts the step; the optimizer state (schedule count) does not.
        loss_ok = jnp.isfinite(metrics["loss"])
        grads_ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g))
                                        for g in jax.tree_util.tree_leaves(grads)]))
        ok = loss_ok & grads_ok
        new_state = state.apply_gradients(grads, batch_stats)
        kept = jax.tree_util.tree_map(lambda new, old: jnp.where(ok, new, old),
                                      (new_state.params, new_state.opt_state,
                                       new_state.batch_stats),
                                      (state.params, state.opt_state, state.batch_stats))
        new_state = new_state.replace(params=kept[0], opt_state=kept[1], batch_stats=kept[2])
        metrics["nonfinite_loss"] = (~loss_ok).astype(jnp.float32)
        metrics["nonfinite_grads"] = (~grads_ok).astype(jnp.float32)
        return new_state, metrics

    return train_step


def make_eval_step(*, num_classes: int, confusion: bool = True, axis_name: str | None = None
                   ) -> Callable[[TrainState, Batch], dict[str, jax.Array]]:
    """Build ``eval_step(state, batch) -> sums`` (loss, top-1, top-5, count, confusion matrix).

    Sums, not means, so they add up exactly over batches and devices; turn them into
    accuracies with :func:`jaxcnn.training.metrics.summarize`. Examples whose ``"mask"`` entry
    is 0 (padding of the last batch) are not counted.

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> from jaxcnn.training import create_train_state
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(3)(x.reshape(x.shape[0], -1))
        >>> state = create_train_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(0),
        ...                            jnp.ones((4, 2, 2, 1)))
        >>> batch = {"image": jnp.ones((4, 2, 2, 1)), "label": jnp.array([0, 1, 2, 0])}
        >>> int(make_eval_step(num_classes=3)(state, batch)["count"])
        4
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")

    def eval_step(state: TrainState, batch: Batch):
        outputs = state.apply_fn(_variables(state.params, state.batch_stats), batch["image"],
                                 train=False)
        logits = outputs[0] if isinstance(outputs, tuple | list) else outputs
        sums = classification_sums(logits, batch["label"], num_classes,
                                   mask=batch.get("mask"), confusion=confusion)
        if axis_name is not None:
            sums = lax.psum(sums, axis_name)
        return sums

    return eval_step

