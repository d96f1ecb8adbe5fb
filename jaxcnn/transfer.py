"""Transfer learning: new heads, frozen layers, fine-tuning, off-the-shelf features.

The recipes of the course material, on Flax variables and Optax:

* :func:`replace_head` gives a trained network a new classifier (``num_classes`` outputs),
  keeping every other parameter.
* :func:`freeze` labels parameters ``"frozen"`` / ``"trainable"`` from regular expressions
  over their ``/``-joined paths (``"c1/kernel"``, ``"stage1_block1/conv1/kernel"``);
  :func:`make_transfer_optimizer` turns the labels into an ``optax.multi_transform`` where
  frozen leaves get ``optax.set_to_zero()`` and the backbone a smaller learning rate
  (fine-tuning).
* :func:`freeze_batch_stats` / :func:`make_transfer_train_step` keep frozen BatchNorm layers'
  running statistics unchanged as well.
* "Off the shelf" (Razavian et al. 2014, "CNN Features off-the-shelf"):
  :func:`extract_features` takes the activations of a named layer for a whole dataset and
  :func:`fit_linear_classifier` fits a scikit-learn logistic regression or linear SVM on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from jaxcnn.inspect import intermediates
from jaxcnn.training.state import TrainState
from jaxcnn.training.steps import make_train_step

__all__ = [
    "extract_features",
    "fit_linear_classifier",
    "freeze",
    "freeze_batch_stats",
    "make_transfer_optimizer",
    "make_transfer_train_step",
    "replace_head",
]

FROZEN, TRAINABLE, BACKBONE = "frozen", "trainable", "backbone"
_SEP = "/"


def _compile(patterns: str | Iterable[str] | None, name: str) -> list[re.Pattern]:
    if patterns is None:
        return []
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    compiled = []
    for p in patterns:
        if not isinstance(p, str):
            raise TypeError(f"`{name}` must be regex strings, got {p!r}.")
        try:
            compiled.append(re.compile(p))
        except re.error as e:
            raise ValueError(f"`{name}` has an invalid regular expression {p!r}: {e}; use "
                             f"re.escape for literal text.") from e
    return compiled


def _paths(tree: Any) -> list[str]:
    return [_SEP.join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _labels(tree: Any, rules: Sequence[tuple[str, list[re.Pattern], str]], default: str) -> Any:
    """``tree``'s structure with each leaf replaced by the label of the first matching rule.

    A pattern that matches no path is an error naming it (it is almost always a typo).
    """
    paths = _paths(tree)
    for arg, compiled, _ in rules:
        for p in compiled:
            if not any(p.search(path) for path in paths):
                raise ValueError(f"`{arg}` pattern {p.pattern!r} matches no parameter path; it "
                                 f"must match one of: {', '.join(paths)}.")

    def label(path: str) -> str:
        for _, compiled, lab in rules:
            if any(p.search(path) for p in compiled):
                return lab
        return default

    treedef = jax.tree_util.tree_structure(tree)
    return jax.tree_util.tree_unflatten(treedef, [label(p) for p in paths])


def freeze(params: Any, patterns: str | Iterable[str]) -> Any:
    """Label each parameter ``"frozen"`` or ``"trainable"`` by regex over its path.

    A leaf is frozen when any pattern ``re.search``-es its path, the dict keys joined by
    ``/`` (``"c1/kernel"``, ``"stage1_block1/bn1/scale"``). Use ``"^c1/"`` for one layer,
    ``"^(?!output/)"`` for everything but the head. The result has ``params``' structure and
    is what ``optax.multi_transform`` takes as ``param_labels``.

    Args:
        params: a parameter pytree (nested dicts, e.g. ``variables["params"]``).
        patterns: one regular expression or a sequence of them.

    Returns:
        A pytree of ``"frozen"`` / ``"trainable"`` strings with the structure of ``params``.

    Raises:
        ValueError: a pattern is not a valid regular expression, or matches no path (the
            message lists the paths).

    Example:
        >>> import jax.numpy as jnp
        >>> params = {"c1": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.ones(4)},
        ...           "output": {"kernel": jnp.ones((4, 2)), "bias": jnp.ones(2)}}
        >>> freeze(params, ["^c1/"])
        {'c1': {'bias': 'frozen', 'kernel': 'frozen'}, 'output': {'bias': 'trainable', 'kernel': 'trainable'}}
        >>> freeze(params, "^c2/")
        Traceback (most recent call last):
        ...
        ValueError: `patterns` pattern '^c2/' matches no parameter path; it must match one of: c1/bias, ...
    """  # noqa: E501
    return _labels(params, [("patterns", _compile(patterns, "patterns"), FROZEN)], TRAINABLE)


def make_transfer_optimizer(base_tx: optax.GradientTransformation, params: Any,
                            frozen_patterns: str | Iterable[str] | None,
                            backbone_patterns: str | Iterable[str] | None = None,
                            backbone_lr_scale: float = 0.1) -> optax.GradientTransformation:
    """An optimizer that leaves frozen layers alone and fine-tunes the backbone slowly.

    ``optax.multi_transform`` over three labels: leaves matching ``frozen_patterns`` get
    ``optax.set_to_zero()`` (update 0, so they stay bit-for-bit; their optimizer state is
    empty), leaves matching ``backbone_patterns`` (and not frozen) get
    ``chain(base_tx, scale(backbone_lr_scale))``, i.e. the learning rate times
    ``backbone_lr_scale`` for any optimizer whose update is proportional to its learning rate
    (SGD, momentum, Adam, RMSprop), and the rest (the new head) ``base_tx``. Patterns are
    regular expressions over ``/``-joined parameter paths, as in :func:`freeze`.

    Frozen BatchNorm *statistics* are not parameters: keep them with
    :func:`make_transfer_train_step` (or :func:`freeze_batch_stats`).

    Args:
        base_tx: the optimizer of the trainable layers, e.g. ``optax.adam(1e-3)`` or
            :func:`jaxcnn.training.make_optimizer`.
        params: the parameters to be optimized (only their paths are read).
        frozen_patterns: regexes of layers not to train; None or ``[]`` freezes nothing.
        backbone_patterns: regexes of layers trained with the scaled learning rate; default
            None (no backbone group). ``"^(?!output/)"`` is "all but the head".
        backbone_lr_scale: factor on the backbone's updates; default 0.1 (must be >= 0).

    Returns:
        An ``optax.GradientTransformation``.

    Raises:
        ValueError: a pattern is invalid or matches nothing, or ``backbone_lr_scale < 0``.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> params = {"c1": {"kernel": jnp.ones(2)}, "f6": {"kernel": jnp.ones(2)},
        ...           "output": {"kernel": jnp.ones(2)}}
        >>> tx = make_transfer_optimizer(optax.sgd(1.0), params, ["^c1/"], ["^f6/"], 0.1)
        >>> grads = jax.tree.map(jnp.ones_like, params)
        >>> updates, _ = tx.update(grads, tx.init(params), params)
        >>> {k: round(float(v["kernel"][0]), 6) for k, v in updates.items()}
        {'c1': 0.0, 'f6': -0.1, 'output': -1.0}
    """
    if not backbone_lr_scale >= 0:
        raise ValueError(f"`backbone_lr_scale` must be >= 0, got {backbone_lr_scale}.")
    rules = [("frozen_patterns", _compile(frozen_patterns, "frozen_patterns"), FROZEN),
             ("backbone_patterns", _compile(backbone_patterns, "backbone_patterns"), BACKBONE)]
    labels = _labels(params, rules, TRAINABLE)
    used = set(jax.tree_util.tree_leaves(labels))
    transforms = {FROZEN: optax.set_to_zero(), TRAINABLE: base_tx,
                  BACKBONE: optax.chain(base_tx, optax.scale(backbone_lr_scale))}
    transforms = {k: v for k, v in transforms.items() if k in used}
    # A callable so that the labels follow the structure of whatever container Optax is given.
    return optax.multi_transform(transforms, lambda p: _labels(p, rules, TRAINABLE))


def freeze_batch_stats(new_batch_stats: Any, old_batch_stats: Any,
                       patterns: str | Iterable[str] | None) -> Any:
    """``new_batch_stats`` with the layers matching ``patterns`` reset to ``old_batch_stats``.

    A training-mode forward pass updates every BatchNorm's running mean and variance; for
    frozen layers those updates must be dropped too, or a "frozen" backbone still drifts.
    ``train_step`` then reads::

        new_state, metrics = step(state, batch)
        new_state = new_state.replace(batch_stats=freeze_batch_stats(
            new_state.batch_stats, state.batch_stats, frozen_patterns))

    which is :func:`make_transfer_train_step`. The frozen layers still normalise with the
    batch's statistics during that training forward pass (PyTorch's ``requires_grad=False``
    without ``.eval()``); only their running statistics, used at inference, are kept.
    Patterns matching no statistic are allowed (a network without BatchNorm has none).

    Args:
        new_batch_stats: statistics after the step (a pytree, ``{}`` if the model has none).
        old_batch_stats: statistics before the step, same structure.
        patterns: regexes over ``/``-joined paths (``"stem_bn/mean"``), as in :func:`freeze`.

    Returns:
        A pytree like ``new_batch_stats``.

    Example:
        >>> import jax.numpy as jnp
        >>> old = {"bn1": {"mean": jnp.zeros(2)}, "bn2": {"mean": jnp.zeros(2)}}
        >>> new = {"bn1": {"mean": jnp.ones(2)}, "bn2": {"mean": jnp.ones(2)}}
        >>> kept = freeze_batch_stats(new, old, ["^bn1/"])
        >>> kept["bn1"]["mean"].tolist(), kept["bn2"]["mean"].tolist()
        ([0.0, 0.0], [1.0, 1.0])
    """
    compiled = _compile(patterns, "patterns")
    if jax.tree_util.tree_structure(new_batch_stats) != jax.tree_util.tree_structure(
            old_batch_stats):
        raise ValueError("`new_batch_stats` and `old_batch_stats` must have the same structure.")
    paths = _paths(new_batch_stats)
    new_leaves, treedef = jax.tree_util.tree_flatten(new_batch_stats)
    old_leaves = jax.tree_util.tree_leaves(old_batch_stats)
    leaves = [old if any(p.search(path) for p in compiled) else new
              for path, new, old in zip(paths, new_leaves, old_leaves, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def make_transfer_train_step(frozen_patterns: str | Iterable[str] | None, **train_step_kwargs
                             ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """:func:`jaxcnn.training.make_train_step` that also keeps frozen BatchNorm statistics.

    Use it with a state whose ``tx`` is :func:`make_transfer_optimizer` with the same
    ``frozen_patterns``: the optimizer keeps the frozen parameters, this step keeps the frozen
    layers' running statistics (:func:`freeze_batch_stats`).

    Args:
        frozen_patterns: regexes over ``/``-joined paths, as in :func:`freeze`.
        **train_step_kwargs: forwarded to ``make_train_step`` (``label_smoothing``, ...).

    Example:
        >>> import jax, jax.numpy as jnp, optax, flax.linen as nn
        >>> from jaxcnn.training import create_train_state
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x, train=False):
        ...         x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
        ...         return nn.Dense(3, name="head")(x)
        >>> x = jnp.arange(8.0).reshape(4, 2)
        >>> params = Net().init(jax.random.key(0), x)["params"]
        >>> tx = make_transfer_optimizer(optax.sgd(0.1), params, ["^bn/"])
        >>> state = create_train_state(Net(), tx, jax.random.PRNGKey(0), x)
        >>> step = jax.jit(make_transfer_train_step(["^bn/"]))
        >>> new, _ = step(state, {"image": x, "label": jnp.array([0, 1, 2, 0])})
        >>> new.batch_stats["bn"]["mean"].tolist(), bool((new.params["bn"]["scale"] == 1).all())
        ([0.0, 0.0], True)
    """
    compiled_check = _compile(frozen_patterns, "frozen_patterns")  # fail early on bad regexes
    del compiled_check
    train_step = make_train_step(**train_step_kwargs)

    def step(state: TrainState, batch: dict):
        new_state, metrics = train_step(state, batch)
        stats = freeze_batch_stats(new_state.batch_stats, state.batch_stats, frozen_patterns)
        return new_state.replace(batch_stats=stats), metrics

    return step


def _new_head_leaf(path: str, leaf: jax.Array, num_classes: int, old_classes: int,
                   key: jax.Array) -> jax.Array:
    shape = (*leaf.shape[:-1], num_classes)
    name = path.rsplit(_SEP, 1)[-1]
    if name == "kernel":  # Dense (in, out) and Conv (*k, in, out): the layers' default init
        return nn.initializers.lecun_normal()(key, shape, leaf.dtype)
    if leaf.ndim and leaf.shape[-1] == old_classes:
        fill = 1.0 if name in ("scale", "var") else 0.0
        return jnp.full(shape, fill, leaf.dtype)
    return leaf


def replace_head(model: nn.Module, variables: Mapping, num_classes: int, key: jax.Array,
                 head: str | Sequence[str] = "head") -> tuple[nn.Module, dict]:
    """A copy of ``model`` with a freshly initialised ``num_classes``-way head.

    ``model.clone(num_classes=num_classes)`` and its variables: every parameter and statistic
    outside the head module is kept (the very same arrays); in the head, kernels get the
    layers' default LeCun-normal init with the output axis resized, biases (and any other
    per-class leaf) zeros. Zoo heads are named ``head`` (ResNet, DenseNet, GoogLeNet, simple
    CNNs), ``output`` (LeNet-5) or ``predictions`` (VGG, Xception); GoogLeNet's auxiliary
    classifiers are extra heads to list (or drop with ``aux_logits=False``).

    Args:
        model: a zoo model (a Flax module with a ``num_classes`` field).
        variables: its variables (``{"params": ..., "batch_stats": ...}``).
        num_classes: the new number of classes (> 0).
        key: a PRNG key for the new head.
        head: the head's module name (a top-level name, or a ``/``-joined path), or several.

    Returns:
        ``(new_model, new_variables)``.

    Raises:
        ValueError: ``head`` is not a module of ``variables["params"]`` (the message lists the
            top-level names), ``num_classes`` is not a positive int, or ``model`` has no
            ``num_classes`` field.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxcnn.models import create
        >>> model = create("lenet5_modern", num_classes=10)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)))
        >>> new_model, new_vars = replace_head(model, variables, 3, jax.random.key(1),
        ...                                    head="output")
        >>> new_vars["params"]["output"]["kernel"].shape, new_model.num_classes
        ((84, 3), 3)
        >>> new_vars["params"]["c1"]["kernel"] is variables["params"]["c1"]["kernel"]
        True
        >>> replace_head(model, variables, 3, jax.random.key(1))
        Traceback (most recent call last):
        ...
        ValueError: `head` 'head' is not a module of the model's params; it must name one (top-level names: c1, c3, c5, f6, output).
    """  # noqa: E501
    if not isinstance(num_classes, int | np.integer) or isinstance(num_classes, bool) \
            or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    if not hasattr(model, "num_classes"):
        raise ValueError(f"`model` ({type(model).__name__}) has no `num_classes` field to "
                         f"replace; pass a classifier that has one (every jaxcnn.models model "
                         f"does).")
    heads = [head] if isinstance(head, str) else list(head)
    if not heads:
        raise ValueError("`head` must name at least one module.")
    params = variables.get("params", {})
    for h in heads:
        node = params
        for part in h.split(_SEP):
            node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            raise ValueError(f"`head` {h!r} is not a module of the model's params; it must "
                             f"name one (top-level names: {', '.join(params)}).")
    old_classes = int(model.num_classes)
    out: dict[str, Any] = {}
    for n, (collection, tree) in enumerate(variables.items()):
        flat = traverse_util.flatten_dict(dict(tree), sep=_SEP)
        new_flat = {}
        for i, (path, leaf) in enumerate(flat.items()):
            if any(path.startswith(h + _SEP) for h in heads):
                leaf = _new_head_leaf(path, leaf, int(num_classes), old_classes,
                                      jax.random.fold_in(jax.random.fold_in(key, n), i))
            new_flat[path] = leaf
        out[collection] = traverse_util.unflatten_dict(new_flat, sep=_SEP)
    return model.clone(num_classes=int(num_classes)), out


def extract_features(model: nn.Module, variables: Mapping, images: Any, layer: str,
                     batch_size: int = 256) -> np.ndarray:
    """Activations of ``layer`` for every image, flattened: off-the-shelf CNN features.

    Runs ``model`` in inference mode in batches of ``batch_size`` (the last one padded, so
    there is one compilation) and keeps the output of the submodule named ``layer``
    (:func:`jaxcnn.intermediates`), flattened to ``(N, D)``.

    Args:
        model: a Flax module called as ``model(x, train=False)``.
        variables: its variables.
        images: ``(N, H, W, C)`` array, already normalised as in training.
        layer: a submodule path, e.g. ``"f6"`` (LeNet-5), ``"global_pool"`` (ResNet) or
            ``"fc2"`` (VGG).
        batch_size: images per forward pass; default 256.

    Returns:
        float32 numpy array ``(N, D)``.

    Raises:
        ValueError: ``images`` is not rank 4 or empty, ``batch_size < 1``, or ``layer`` is
            unknown (the message lists the available paths).

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> from jaxcnn.models import create
        >>> model = create("lenet5_modern", num_classes=10)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)))
        >>> x = np.random.default_rng(0).normal(size=(5, 32, 32, 1)).astype(np.float32)
        >>> extract_features(model, variables, x, "s4", batch_size=2).shape
        (5, 400)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
            or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    shape = np.shape(images)
    if len(shape) != 4 or shape[0] == 0:
        raise ValueError(f"`images` must be a non-empty (N, H, W, C) batch, got shape {shape}.")
    n = shape[0]
    batch_size = int(min(batch_size, n))

    @jax.jit
    def features(variables, x):
        out = intermediates(model, variables, x, layer)[layer]
        if isinstance(out, tuple):
            raise ValueError(f"`layer` {layer!r} is called several times (shared weights); "
                             f"name a module called once.")
        return out.reshape(out.shape[0], -1)

    chunks = []
    for start in range(0, n, batch_size):
        x = np.asarray(images[start:start + batch_size])
        valid = x.shape[0]
        if valid < batch_size:
            x = np.concatenate([x, np.zeros((batch_size - valid, *x.shape[1:]), x.dtype)])
        chunks.append(np.asarray(features(variables, x), np.float32)[:valid])
    return np.concatenate(chunks)


def fit_linear_classifier(features: Any, labels: Any, kind: str = "logistic", *,
                          standardize: bool = True, **kwargs: Any):
    """Fit a scikit-learn linear classifier on (CNN) features.

    ``kind="logistic"`` is ``LogisticRegression`` (multinomial, ``max_iter=1000``),
    ``kind="svm"`` is ``LinearSVC`` (one-vs-rest hinge loss, as in Razavian et al. 2014).
    With ``standardize`` the features are first scaled to zero mean and unit variance
    (``StandardScaler`` in a pipeline), which ReLU activations of very different magnitudes
    need for the solvers to converge.

    Args:
        features: ``(N, D)`` array (e.g. from :func:`extract_features`).
        labels: ``(N,)`` integer class labels.
        kind: ``"logistic"`` (default) or ``"svm"``.
        standardize: prepend a ``StandardScaler``; default True.
        **kwargs: forwarded to the estimator (``C=...``, ``max_iter=...``).

    Returns:
        The fitted estimator (``.predict``, ``.score``; ``.predict_proba`` for logistic).

    Raises:
        ValueError: unknown ``kind``, ``features`` not 2-D, or ``labels`` of another length.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 60)
        >>> x = rng.normal(size=(60, 4)) + 4 * np.eye(3, 4)[y]
        >>> clf = fit_linear_classifier(x, y, "svm")
        >>> round(clf.score(x, y), 2)
        1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    kinds = {"logistic": (LogisticRegression, {"max_iter": 1000}),
             "svm": (LinearSVC, {"max_iter": 5000})}
    if kind not in kinds:
        raise ValueError(f"`kind` must be one of {tuple(kinds)}, got {kind!r}.")
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"`features` must be (N, D), got shape {features.shape}.")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"`labels` must have shape ({features.shape[0]},) to match "
                         f"`features` {features.shape}, got {labels.shape}.")
    cls, defaults = kinds[kind]
    clf = cls(**{**defaults, **kwargs})
    model = make_pipeline(StandardScaler(), clf) if standardize else clf
    return model.fit(features, labels)
