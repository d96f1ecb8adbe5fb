"""Ensembles: train K members at once with ``jax.vmap``, then combine their predictions.

Every member is the same Flax model with its own parameters; the parameters (and BatchNorm
statistics, optimizer state, PRNG key) of the K members are stacked along a new leading axis,
so one compiled step trains them all. Member ``k`` differs from the others only by its init
key and, for bagging (Breiman 1996), by its own bootstrap sample of the training set
(:func:`bootstrap_indices`).

Combiners (Kuncheva 2004, "Combining Pattern Classifiers"):

* :func:`majority_vote` -- plurality of the members' labels;
* :func:`average_probabilities` -- mean of the members' softmax outputs;
* :func:`weighted_average` -- the same with one weight per member;
* :func:`fit_stacking` / :func:`predict_stacking` -- a meta-classifier (scikit-learn logistic
  regression) on the concatenated member probabilities of held-out data (Wolpert 1992).

Typical use::

    keys = jax.random.split(jax.random.key(0), 5)
    state = create_ensemble_state(model, optax.adam(1e-3), keys, sample_images)
    step = jax.jit(make_ensemble_train_step())
    idx = bootstrap_indices(jax.random.key(1), len(images), 5)     # (5, N)
    state, metrics = step(state, {"image": images[idx[:, :B]], "label": labels[idx[:, :B]]})
    logits = predict(state.apply_fn, ensemble_variables(state), test_images)  # (5, N, C)
    labels = jnp.argmax(average_probabilities(logits), -1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn.functional._checks import check_float, check_labels, check_rank
from jaxcnn.training import TrainState, create_train_state, make_train_step

__all__ = [
    "average_probabilities",
    "bootstrap_indices",
    "create_ensemble_state",
    "create_nnx_ensemble_state",
    "ensemble_variables",
    "fit_stacking",
    "init_members",
    "majority_vote",
    "make_ensemble_train_step",
    "predict",
    "predict_stacking",
    "weighted_average",
]

Array = jax.Array
Batch = dict[str, Array]


def _num_members(keys: Array) -> int:
    """K for a stack of keys: typed keys ``(K,)`` or raw ``uint32`` keys ``(K, 2)``."""
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if (typed and keys.ndim != 1) or (not typed and (keys.ndim != 2 or keys.dtype != jnp.uint32)):
        raise ValueError(
            "`keys` must be a stack of K PRNG keys, e.g. `jax.random.split(key, K)`: typed "
            f"keys of shape (K,) or raw uint32 keys of shape (K, 2); got dtype {keys.dtype} and "
            f"shape {keys.shape}.")
    if keys.shape[0] < 1:
        raise ValueError(f"`keys` must hold at least one key (K >= 1), got shape {keys.shape}.")
    return int(keys.shape[0])


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def init_members(model: nn.Module, keys: Array, sample_input: Array) -> dict[str, Any]:
    """Initialise K members of ``model``, one per key, as stacked variables.

    Formula: ``variables[leaf][k] = model.init(keys[k], sample_input)[leaf]``, computed with
    ``jax.vmap`` over ``keys``, so every leaf gains a leading member axis of size K.

    Args:
        model: a Flax module called as ``model(x, train=...)`` (every jaxcnn model is).
        keys: K PRNG keys, ``jax.random.split(key, K)`` (typed ``(K,)`` or raw ``(K, 2)``);
            each is used as the ``params`` (and ``dropout``) init key of its member.
        sample_input: an input batch ``(N, ...)`` shared by all members (shape and dtype
            matter, values do not).

    Returns:
        The variables dict (``{"params": ..., "batch_stats": ...}``) with every leaf of shape
        ``(K, *leaf_shape)``, ready for :func:`predict`. For training use
        :func:`create_ensemble_state`, which wraps :func:`jaxcnn.training.create_train_state`
        (it splits each key into an init key and a training key first, so its parameters are
        not those given here for the same keys).

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(2)(x)
        >>> v = init_members(Net(), jax.random.split(jax.random.key(0), 4), jnp.ones((1, 3)))
        >>> v["params"]["Dense_0"]["kernel"].shape
        (4, 3, 2)
    """
    _num_members(keys)

    def init(key):
        return model.init({"params": key, "dropout": key}, sample_input, train=False)

    return jax.jit(jax.vmap(init))(keys)


def create_ensemble_state(model: nn.Module, tx: optax.GradientTransformation, keys: Array,
                          sample_input: Array) -> TrainState:
    """K training states stacked into one ``TrainState``, for :func:`make_ensemble_train_step`.

    Formula: ``jax.vmap(lambda k: create_train_state(model, tx, k, sample_input))(keys)``: every
    member gets its own parameters, optimizer state and training key from ``keys[k]``; the
    step counter, too, becomes a ``(K,)`` array (all members advance together).

    Args:
        model: a Flax module called as ``model(x, train=...)``.
        tx: an Optax transformation shared by all members (e.g.
            :func:`jaxcnn.training.make_optimizer`).
        keys: K PRNG keys, ``jax.random.split(key, K)``.
        sample_input: an input batch for one member ``(B, ...)`` (no member axis).

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(2)(x)
        >>> s = create_ensemble_state(Net(), optax.sgd(0.1),
        ...                           jax.random.split(jax.random.key(0), 3), jnp.ones((1, 3)))
        >>> s.params["Dense_0"]["kernel"].shape, s.step.shape
        ((3, 3, 2), (3,))
    """
    _num_members(keys)
    return jax.vmap(lambda key: create_train_state(model, tx, key, sample_input))(keys)


def create_nnx_ensemble_state(make_model: Callable[[Any], Any],
                              tx: optax.GradientTransformation, keys: Array) -> TrainState:
    """K NNX members stacked into one train state, for :func:`make_ensemble_train_step`.

    The NNX counterpart of :func:`create_ensemble_state`: member ``k`` is
    ``make_model(nnx.Rngs(params=init_k, dropout=init_k))`` with ``init_k, train_k =
    split(keys[k])``, wrapped by :func:`jaxcnn.training.create_nnx_train_state` (an
    ``nnx.Optimizer`` per member, training key ``train_k``). The members are built under
    ``jax.vmap`` (split/merge: their variables, stacked along a new leading axis, in one
    :class:`~jaxcnn.training.NnxTrainState` whose static graph is shared). Training, the
    combiners and ``predict(state.apply_fn, ensemble_variables(state), x)`` work as for Linen.

    Args:
        make_model: ``rngs -> nnx.Module``, e.g. ``lambda rngs: jaxcnn.models.create("lenet5",
            api="nnx", rngs=rngs)``.
        tx: an Optax transformation shared by all members.
        keys: K PRNG keys, ``jax.random.split(key, K)``.

    Example:
        >>> import jax, optax
        >>> from flax import nnx
        >>> s = create_nnx_ensemble_state(lambda rngs: nnx.Linear(3, 2, rngs=rngs),
        ...                               optax.sgd(0.1), jax.random.split(jax.random.key(0), 4))
        >>> s.params["kernel"].shape, s.step.shape
        ((4, 3, 2), (4,))
    """
    from flax import nnx

    from jaxcnn.training import create_nnx_train_state
    from jaxcnn.training.state import check_rng

    if not callable(make_model) or isinstance(make_model, nnx.Module):
        raise TypeError(f"`make_model` must be a function rngs -> nnx.Module (each member is "
                        f"built with its own key), got {type(make_model).__name__}; e.g. "
                        f"lambda rngs: jaxcnn.models.create('lenet5', api='nnx', rngs=rngs).")
    _num_members(keys)

    def member(key):
        init_key, train_key = jax.random.split(check_rng(key))
        init_key = jax.random.wrap_key_data(init_key)
        state = create_nnx_train_state(make_model(nnx.Rngs(params=init_key, dropout=init_key)),
                                       tx, train_key)
        return state.params, state.batch_stats, state.opt_state, state.rng

    # One member built eagerly gives the static graph (module structure, optimizer, RNG
    # streams); the stacked values come from the vmapped construction.
    first = create_nnx_train_state(make_model(nnx.Rngs(0)), tx, jax.random.PRNGKey(0))
    params, batch_stats, opt_state, rng = jax.jit(jax.vmap(member))(keys)
    k = _num_members(keys)
    return first.replace(step=jnp.zeros((k,), jnp.int32), params=params,
                         batch_stats=batch_stats, opt_state=opt_state, rng=rng)


def ensemble_variables(state: TrainState) -> dict[str, Any]:
    """The stacked ``{"params", "batch_stats"}`` of an ensemble state, for :func:`predict`.

    Formula: ``{"params": state.params}``, plus ``"batch_stats"`` when the model has any.

    Args:
        state: a stacked state from :func:`create_ensemble_state` (or a single state).

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(2)(x)
        >>> s = create_ensemble_state(Net(), optax.sgd(0.1),
        ...                           jax.random.split(jax.random.key(0), 3), jnp.ones((1, 3)))
        >>> sorted(ensemble_variables(s))
        ['params']
    """
    if not (hasattr(state, "params") and hasattr(state, "batch_stats")):
        raise TypeError(f"`state` must be a TrainState (from create_ensemble_state), got "
                        f"{type(state).__name__}; stacked variables from init_members go to "
                        f"predict directly.")
    if state.batch_stats:
        return {"params": state.params, "batch_stats": state.batch_stats}
    return {"params": state.params}


StepFn = Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]


def make_ensemble_train_step(**step_options: Any) -> StepFn:
    """Build ``step(states, batches) -> (states, metrics)`` training K members at once.

    Formula: ``jax.vmap(make_train_step(**step_options))`` -- the single-model step
    (forward, loss, backward, optimizer update) mapped over the member axis, so member ``k``
    takes one ordinary step on ``batches[k]``; wrap it in ``jax.jit`` for one compiled step.
    Because dropout keys derive from each member's own ``state.rng``, the result equals K
    separate single-model steps.

    Args:
        **step_options: passed to :func:`jaxcnn.training.make_train_step`
            (``label_smoothing``, ``l2_weight_decay``, ``augment``, ...).

    The returned step takes ``states`` from :func:`create_ensemble_state` and ``batches``
    ``{"image": (K, B, ...), "label": (K, B)}``: one batch per member (for bagging, rows of
    each member's bootstrap sample; for plain ensembles, the same or different batches). It
    returns per-member metrics of shape ``(K,)``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(3)(x.reshape(x.shape[0], -1))
        >>> keys = jax.random.split(jax.random.key(0), 2)
        >>> states = create_ensemble_state(Net(), optax.sgd(0.1), keys, jnp.ones((4, 2, 2, 1)))
        >>> batches = {"image": jnp.ones((2, 4, 2, 2, 1)), "label": jnp.zeros((2, 4), int)}
        >>> states, metrics = jax.jit(make_ensemble_train_step())(states, batches)
        >>> metrics["loss"].shape, states.step.tolist()
        ((2,), [1, 1])
    """
    vmapped = jax.vmap(make_train_step(**step_options))

    def ensemble_train_step(states: TrainState, batches: Batch):
        k = int(jnp.shape(states.step)[0]) if jnp.ndim(states.step) == 1 else None
        if k is None:
            raise ValueError("`states` must be stacked over members (create_ensemble_state); "
                             f"its step has shape {jnp.shape(states.step)}, expected (K,).")
        for name in ("image", "label"):
            if name not in batches:
                raise ValueError(f"`batches` must have an {name!r} entry, got {sorted(batches)}.")
            shape = jnp.shape(batches[name])
            if not shape or shape[0] != k:
                raise ValueError(f"`batches[{name!r}]` must have a leading member axis of size "
                                 f"K={k} (one batch per member), got shape {shape}.")
        return vmapped(states, batches)

    return ensemble_train_step


def bootstrap_indices(key: Array, n: int, k: int) -> Array:
    """K bootstrap samples of ``range(n)``: ``n`` indices drawn uniformly with replacement each.

    Formula: ``idx[m, i] ~ Uniform{0, ..., n - 1}``, independent over members ``m`` and draws
    ``i`` (Efron 1979; bagging, Breiman 1996). Each sample leaves out about
    ``(1 - 1/n)^n ~ 1/e ~ 36.8%`` of the examples.

    Args:
        key: a PRNG key.
        n: size of the training set (and of each sample), > 0.
        k: number of members, > 0.

    Returns:
        int32 ``(k, n)`` indices; ``images[idx[m]]`` is member ``m``'s training set.

    Example:
        >>> import jax
        >>> idx = bootstrap_indices(jax.random.key(0), 10, 3)
        >>> idx.shape, bool((idx >= 0).all() & (idx < 10).all())
        ((3, 10), True)
    """
    n, k = _positive_int(n, "n"), _positive_int(k, "k")
    return jax.random.randint(key, (k, n), 0, n, dtype=jnp.int32)


def predict(apply_fn: Callable[..., Any], stacked_variables: Any, x: Array, *,
            batch_size: int | None = None, **apply_options: Any) -> Array:
    """Logits of every member on the same inputs: ``(K, N, C)``.

    Formula: ``logits[k] = apply_fn(variables[k], x, train=False)`` with ``jax.vmap`` over the
    member axis of ``stacked_variables``; when the model returns several outputs (GoogLeNet's
    auxiliary heads) the first is kept.

    Args:
        apply_fn: ``model.apply`` (or ``state.apply_fn``).
        stacked_variables: variables with a leading member axis, from :func:`init_members`
            or :func:`ensemble_variables`.
        x: inputs ``(N, ...)``, shared by all members.
        batch_size: evaluate ``x`` in chunks of this many examples (bounds memory: K members'
            activations are live at once); default all at once.
        **apply_options: extra keyword arguments for ``apply_fn``; default ``train=False``.

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         return nn.Dense(4)(x)
        >>> v = init_members(Net(), jax.random.split(jax.random.key(0), 3), jnp.ones((1, 5)))
        >>> predict(Net().apply, v, jnp.ones((10, 5)), batch_size=4).shape
        (3, 10, 4)
    """
    check_rank(x, "x", tuple(range(1, 9)), "(N, ...): a batch axis first")
    options = {"train": False, **apply_options}

    def one(variables, xs):
        out = apply_fn(variables, xs, **options)
        return out[0] if isinstance(out, tuple | list) else out

    run = jax.vmap(one, in_axes=(0, None))
    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        return run(stacked_variables, x)
    batch_size = _positive_int(batch_size, "batch_size")
    run = jax.jit(run)
    return jnp.concatenate([run(stacked_variables, x[i:i + batch_size])
                            for i in range(0, n, batch_size)], axis=1)


def majority_vote(preds: Array, num_classes: int) -> Array:
    """Plurality vote of K members' labels; ties go to the lowest class index.

    Formula: ``vote[i] = argmax_c sum_k [preds[k, i] == c]``, the first maximum on ties (so
    members voting ``1, 2, 1, 2`` give ``1``). Labels outside ``[0, num_classes)`` raise when
    ``preds`` is concrete; under ``jit`` they cannot be checked and count for no class.

    Args:
        preds: integer labels ``(K, N)``, e.g. ``jnp.argmax(logits, -1)`` of :func:`predict`.
        num_classes: number of classes C, > 0.

    Returns:
        int32 ``(N,)`` voted labels.

    Example:
        >>> import jax.numpy as jnp
        >>> preds = jnp.array([[0, 1, 2, 1],
        ...                    [0, 2, 2, 2],
        ...                    [1, 1, 0, 3]])
        >>> majority_vote(preds, 4).tolist()   # last column: 1, 2, 3 tie -> lowest, 1
        [0, 1, 2, 1]
    """
    num_classes = _positive_int(num_classes, "num_classes")
    check_rank(preds, "preds", 2, "(K, N) integer labels, one row per member")
    if not jnp.issubdtype(jnp.asarray(preds).dtype, jnp.integer):
        raise TypeError(f"`preds` must hold integer labels, got dtype {jnp.asarray(preds).dtype}; "
                        "take `jnp.argmax(logits, -1)` first.")
    check_labels(preds, num_classes, "preds")
    counts = jax.nn.one_hot(preds, num_classes, dtype=jnp.int32).sum(axis=0)  # (N, C)
    return jnp.argmax(counts, axis=-1).astype(jnp.int32)  # argmax picks the first maximum


def _check_logits(logits: Array) -> None:
    check_rank(logits, "logits", 3, "(K, N, C): members, examples, classes")
    check_float(logits, "logits")


def average_probabilities(logits: Array) -> Array:
    """Mean of the members' class probabilities (soft voting).

    Formula: ``p[i, c] = (1/K) sum_k softmax(logits[k, i])[c]``.

    Args:
        logits: ``(K, N, C)`` member logits (:func:`predict`).

    Returns:
        ``(N, C)`` probabilities (rows sum to 1), in the dtype of ``logits``.

    Example:
        >>> import jax.numpy as jnp
        >>> logits = jnp.log(jnp.array([[[0.9, 0.1]], [[0.3, 0.7]]]))  # 2 members, 1 example
        >>> import numpy as np
        >>> print(np.round(np.asarray(average_probabilities(logits)), 3))
        [[0.6 0.4]]
    """
    _check_logits(logits)
    return jax.nn.softmax(logits, axis=-1).mean(axis=0)


def weighted_average(logits: Array, weights: Array) -> Array:
    """Weighted mean of the members' class probabilities.

    Formula: ``p[i, c] = sum_k w_k softmax(logits[k, i])[c] / sum_k w_k``; weights are
    normalised, so only their ratios matter (e.g. each member's validation accuracy).
    They should be >= 0 with a positive sum (not checked: values are unknown under ``jit``).

    Args:
        logits: ``(K, N, C)`` member logits.
        weights: ``(K,)`` member weights.

    Returns:
        ``(N, C)`` probabilities.

    Example:
        >>> import jax.numpy as jnp
        >>> logits = jnp.log(jnp.array([[[0.9, 0.1]], [[0.3, 0.7]]]))
        >>> import numpy as np
        >>> print(np.round(np.asarray(weighted_average(logits, jnp.array([1.0, 3.0]))), 3))
        [[0.45 0.55]]
    """
    _check_logits(logits)
    weights = jnp.asarray(weights)
    if weights.shape != logits.shape[:1]:
        raise ValueError(f"`weights` must have shape (K,) = {logits.shape[:1]} (one per member "
                         f"of `logits` {logits.shape}), got {weights.shape}.")
    probs = jax.nn.softmax(logits, axis=-1)
    w = (weights / weights.sum()).astype(probs.dtype)
    return jnp.einsum("k,knc->nc", w, probs)


def _stacking_features(member_probs: Any) -> np.ndarray:
    probs = np.asarray(member_probs)
    if probs.ndim != 3:
        raise ValueError("`member_probs` must have shape (K, N, C) (members, examples, "
                         f"classes), got {probs.shape}.")
    k, n, c = probs.shape
    return probs.transpose(1, 0, 2).reshape(n, k * c).astype(np.float64)


def fit_stacking(member_probs_heldout: Any, labels_heldout: Any, *, C: float = 1.0,
                 max_iter: int = 1000) -> Any:
    """Fit a stacking meta-classifier on the members' held-out probabilities (Wolpert 1992).

    Formula: multinomial logistic regression ``p(y | x) = softmax(W z + b)`` on
    ``z = [p_1(x), ..., p_K(x)]`` (the K members' probability vectors concatenated,
    ``K * C`` features), L2-regularised with inverse strength ``C``. Fit it on data the
    members did not train on, or it learns to trust over-fitted members. Runs on the host
    (scikit-learn), not under ``jit``.

    Args:
        member_probs_heldout: ``(K, N, C)`` member probabilities on held-out examples
            (``jax.nn.softmax(predict(...), -1)``).
        labels_heldout: ``(N,)`` integer labels.
        C: inverse L2 regularisation strength; default 1.0.
        max_iter: solver iterations; default 1000.

    Returns:
        The fitted ``sklearn.linear_model.LogisticRegression``; use :func:`predict_stacking`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 3, 60)
        >>> probs = np.stack([np.eye(3)[labels], np.full((60, 3), 1 / 3)])  # good, useless
        >>> meta = fit_stacking(probs, labels)
        >>> float((predict_stacking(meta, probs) == labels).mean())
        1.0
    """
    from sklearn.linear_model import LogisticRegression

    features = _stacking_features(member_probs_heldout)
    labels = np.asarray(labels_heldout)
    if labels.shape != features.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels_heldout` must be ({features.shape[0]},) integer labels, one "
                         f"per example of `member_probs_heldout`; got {labels.dtype} "
                         f"{labels.shape}.")
    meta = LogisticRegression(C=C, max_iter=max_iter)
    return meta.fit(features, labels)


def predict_stacking(meta: Any, member_probs: Any, *, probabilities: bool = False) -> np.ndarray:
    """Predictions of a stacking meta-classifier from :func:`fit_stacking`.

    Formula: ``argmax_c p(c | [p_1(x), ..., p_K(x)])`` (or the probabilities themselves).

    Args:
        meta: the fitted meta-classifier.
        member_probs: ``(K, N, C)`` member probabilities, same K and C as at fit time.
        probabilities: return ``(N, C')`` probabilities over ``meta.classes_`` instead of
            labels; default False.

    Returns:
        ``(N,)`` int labels, or the probabilities (numpy).

    Example:
        >>> import numpy as np
        >>> labels = np.array([0, 1, 2] * 10)
        >>> probs = np.stack([np.eye(3)[labels]] * 2)
        >>> meta = fit_stacking(probs, labels)
        >>> predict_stacking(meta, probs[:, :4]).tolist()
        [0, 1, 2, 0]
    """
    features = _stacking_features(member_probs)
    expected = getattr(meta, "n_features_in_", features.shape[1])
    if features.shape[1] != expected:
        raise ValueError(f"`member_probs` gives {features.shape[1]} features (K * C) but `meta` "
                         f"was fit on {expected}; use the same members and classes.")
    if probabilities:
        return meta.predict_proba(features)
    return meta.predict(features).astype(np.int32)
