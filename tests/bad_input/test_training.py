"""Bad input to training, ensembles, transfer learning, inspection, plots and the experiment
command: losses and metrics, optimizer / schedule / strategy names, train-state set-up,
configs (unknown names with a "did you mean").

Models here are one small :class:`TinyNet`; variables are traced (``jax.eval_shape``) or
drawn with numpy, so no row compiles a network.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import types
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import configs
from jaxcnn import ensemble, training, transfer, visualize
from jaxcnn import inspect as jinspect
from jaxcnn import layers as L
from tests.bad_input._census import KEY, Case, check, init, params, rand, spec

REPO = Path(__file__).resolve().parents[2]
_DIRS: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _tmp(tmp_path_factory):
    _DIRS["tmp"] = tmp_path_factory.mktemp("bad_training")
    (_DIRS["tmp"] / "empty.jsonl").write_text("")
    yield
    _DIRS.clear()


class TinyNet(nn.Module):
    """conv -> pool -> dense head named ``head`` (``num_classes`` for replace_head)."""

    num_classes: int = 3

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = L.MaxPool(2, name="pool")(L.Conv(2, (3, 3), name="conv")(x))
        return L.Dense(self.num_classes, name="head")(x.reshape(x.shape[0], -1))


NET = TinyNet()
X = rand(2, 4, 4, 1)
LOGITS = rand(4, 3)
LABELS = np.array([0, 1, 2, 0])


@functools.cache
def _variables():
    """TinyNet's variables on ``X``, drawn with numpy (no jax.random compile)."""
    shapes = init(NET, spec(*X.shape))
    rng = np.random.default_rng(0)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype),
                                  shapes)


def _t(name, what, call, exc, match):
    return Case(f"training.{name}", what, call, exc, match)


_RANGE = r"`labels` must lie in \[0, num_classes\) = \[0, 3\).*e.g. \[3\]"
TRAINING = [
    _t("cross_entropy", "label outside the classes",
       lambda: training.cross_entropy(LOGITS, np.array([0, 1, 2, 3])), ValueError, _RANGE),
    _t("cross_entropy", "negative label",
       lambda: training.cross_entropy(LOGITS, np.array([0, -1, 2, 0])), ValueError,
       r"`labels` must lie in \[0, num_classes\).*e.g. \[-1\]"),
    _t("cross_entropy", "float labels",
       lambda: training.cross_entropy(LOGITS, LABELS.astype(np.float32)), TypeError,
       r"`labels` must be integer class indices.*astype\(jnp.int32\)"),
    _t("cross_entropy", "integer one-hot labels",
       lambda: training.cross_entropy(LOGITS, np.eye(4, 3, dtype=np.int32)),
       ValueError, r"`labels` must be \(N,\) = \(4,\).*labels.argmax\(-1\)"),
    _t("cross_entropy", "soft labels of the wrong width",
       lambda: training.cross_entropy(LOGITS, np.full((4, 2), 0.5, np.float32)),
       ValueError, r"soft `labels` must have the shape of `logits` \(4, 3\), got \(4, 2\)"),
    _t("cross_entropy", "soft labels that are not distributions",
       lambda: training.cross_entropy(LOGITS, 2 * np.eye(4, 3, dtype=np.float32)),
       ValueError, r"soft `labels` must be non-negative rows summing to 1; row 0 sums to 2"),
    _t("cross_entropy", "logits rank 3",
       lambda: training.cross_entropy(rand(4, 3, 1), LABELS), ValueError,
       r"`logits` must be \(N, num_classes\), got shape \(4, 3, 1\)"),
    _t("cross_entropy", "label_smoothing 1",
       lambda: training.cross_entropy(LOGITS, LABELS, label_smoothing=1.0), ValueError,
       r"`label_smoothing` must be in \[0, 1\)"),
    _t("l2_penalty", "negative decay", lambda: training.l2_penalty({"k": LOGITS}, -1e-4),
       ValueError, r"`weight_decay` must be >= 0"),
    _t("auxiliary_loss", "weights per output",
       lambda: training.auxiliary_loss((LOGITS, LOGITS), LABELS), ValueError,
       r"model returned 2 outputs but `weights` has 3 entries.*one weight per output"),
    _t("auxiliary_loss", "label outside the classes",
       lambda: training.auxiliary_loss(LOGITS, np.array([0, 1, 2, 3])), ValueError, _RANGE),
    _t("classification_sums", "label outside the classes",
       lambda: training.classification_sums(LOGITS, np.array([0, 1, 2, 3]), 3), ValueError,
       _RANGE),
    _t("classification_sums", "num_classes not the logits'",
       lambda: training.classification_sums(LOGITS, LABELS, 10), ValueError,
       r"`logits` has 3 classes.*`num_classes` is 10; they must be equal"),
    _t("classification_sums", "num_classes 0",
       lambda: training.classification_sums(LOGITS, LABELS, 0), ValueError,
       r"`num_classes` must be a positive int"),
    _t("classification_sums", "mask shape",
       lambda: training.classification_sums(LOGITS, LABELS, 3, mask=np.ones(3)), ValueError,
       r"`mask` must have the shape of `labels` \(4,\)"),
    _t("summarize", "no examples", lambda: training.summarize(
        {"loss_sum": 0.0, "correct": 0, "correct_top5": 0, "count": 0}), ValueError,
       r"count is 0.*`sums` must cover at least one unmasked example"),
    _t("summarize", "not sums", lambda: training.summarize({"loss": 1.0}), ValueError,
       r"`sums` must hold the entries of classification_sums; missing \['loss_sum'"),
    _t("make_optimizer", "unknown name", lambda: training.make_optimizer("adm", 0.1),
       ValueError, r"unknown optimizer 'adm'. Did you mean 'adam'"),
    _t("make_optimizer", "negative weight_decay",
       lambda: training.make_optimizer("sgd", 0.1, weight_decay=-1.0), ValueError,
       r"`weight_decay` must be >= 0"),
    _t("make_optimizer", "clip_norm 0", lambda: training.make_optimizer("sgd", 0.1,
                                                                        clip_norm=0.0),
       ValueError, r"`clip_norm` must be > 0 \(or None for no clipping\)"),
    _t("make_schedule", "unknown name",
       lambda: training.make_schedule("cosine", 0.1, total_steps=10), ValueError,
       r"unknown schedule 'cosine'. Did you mean 'warmup_cosine'"),
    _t("make_schedule", "learning_rate 0",
       lambda: training.make_schedule("constant", 0.0, total_steps=10), ValueError,
       r"`learning_rate` must be > 0"),
    _t("make_schedule", "total_steps 0",
       lambda: training.make_schedule("warmup_cosine", 0.1, total_steps=0), ValueError,
       r"`total_steps` must be a positive int"),
    _t("make_schedule", "step without boundaries",
       lambda: training.make_schedule("step", 0.1, total_steps=10), ValueError,
       r"schedule 'step' needs `boundaries`"),
    _t("make_strategy", "unknown mode", lambda: training.make_strategy("pmpa", num_classes=3),
       ValueError, r"unknown parallel mode 'pmpa'. Did you mean 'pmap'"),
    _t("make_strategy", "batch not divisible over devices",
       lambda: training.make_strategy("pmap", num_classes=3).put_batch(
           {"image": rand(3, 4, 4, 1), "label": np.zeros(3, np.int32)}), ValueError,
       r"the batch of 3 examples does not split over 8 devices; use a batch size divisible "
       r"by 8"),
    _t("make_train_step", "label_smoothing 1.5",
       lambda: training.make_train_step(label_smoothing=1.5), ValueError,
       r"`label_smoothing` must be in \[0, 1\)"),
    _t("make_train_step", "negative l2_weight_decay",
       lambda: training.make_train_step(l2_weight_decay=-1.0), ValueError,
       r"`l2_weight_decay` must be >= 0"),
    _t("make_train_step", "no aux_weights", lambda: training.make_train_step(aux_weights=()),
       ValueError, r"`aux_weights` must give at least the main head's weight"),
    _t("make_train_step", "augment config instead of function",
       lambda: training.make_train_step(augment=["random_flip"]), TypeError,
       r"`augment` must be a function \(key, images\) -> images such as "
       r"jaxcnn.augment.compose"),
    _t("make_train_step", "augment_labels without num_classes",
       lambda: training.make_train_step(augment=lambda k, x, y: (x, y), augment_labels=True),
       ValueError, r"`augment_labels=True` needs an `augment` function and `num_classes`"),
    _t("make_eval_step", "num_classes 0", lambda: training.make_eval_step(num_classes=0),
       ValueError, r"`num_classes` must be a positive int"),
    _t("create_train_state", "seed instead of key",
       lambda: training.create_train_state(NET, optax.sgd(0.1), 0, X), TypeError,
       r"`rng` must be one PRNG key, `jax.random.PRNGKey\(seed\)`"),
    _t("create_train_state", "split keys",
       lambda: training.create_train_state(NET, optax.sgd(0.1),
                                           jax.random.split(jax.random.PRNGKey(0)), X),
       TypeError, r"`rng` must be one PRNG key"),
    _t("create_train_state", "optimizer name instead of tx",
       lambda: training.create_train_state(NET, "sgd", jax.random.PRNGKey(0), X), TypeError,
       r"`tx` must be an optax GradientTransformation.*make_optimizer"),
    _t("create_train_state", "uint8 sample input",
       lambda: training.create_train_state(NET, optax.sgd(0.1), jax.random.PRNGKey(0),
                                           X.astype(np.uint8)),
       TypeError, r"`x` must be a floating-point"),
    _t("create_nnx_train_state", "Linen module",
       lambda: training.create_nnx_train_state(NET, optax.sgd(0.1), jax.random.PRNGKey(0)),
       TypeError, r"`model` must be an nnx.Module.*create_train_state"),
    _t("create_nnx_train_state", "optimizer name instead of tx",
       lambda: training.create_nnx_train_state(_nnx_linear(), "sgd", jax.random.PRNGKey(0)),
       TypeError, r"`tx` must be an optax GradientTransformation"),
    _t("create_nnx_train_state", "seed instead of key",
       lambda: training.create_nnx_train_state(_nnx_linear(), optax.sgd(0.1), 0), TypeError,
       r"`rng` must be one PRNG key"),
    _t("create_nnx_train_state", "a variable that is neither Param nor BatchStat",
       lambda: training.create_nnx_train_state(_nnx_counting(), optax.sgd(0.1),
                                               jax.random.PRNGKey(0)),
       ValueError, r"also has calls \(Variable\)"),
    _t("merge_model", "a Linen TrainState",
       lambda: training.merge_model(training.create_train_state(
           NET, optax.sgd(0.1), jax.random.PRNGKey(0), X)),
       TypeError, r"`state` must be an NnxTrainState"),
    _t("NnxTrainState", "built without a model (use create_nnx_train_state)",
       lambda: training.NnxTrainState(step=0, params={}, batch_stats={}, opt_state={}, rng=0,
                                      apply_fn=None, tx=None),
       TypeError, r"graph"),
]


def _nnx_linear():
    from flax import nnx

    return nnx.Linear(2, 2, rngs=nnx.Rngs(0))


def _nothing():
    from flax import nnx

    return nnx.All(nnx.Param, nnx.PathContains("no_such_layer"))


def _nnx_counting():
    import jax.numpy as jnp
    from flax import nnx

    class Counting(nnx.Module):
        def __init__(self):
            self.dense = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
            self.calls = nnx.Variable(jnp.zeros((), jnp.int32))

    return Counting()


def _e(name, what, call, exc, match):
    return Case(f"ensemble.{name}", what, call, exc, match)


_KEYS = r"`keys` must be a stack of K PRNG keys, e.g. `jax.random.split\(key, K\)`"
ENSEMBLE = [
    _e("init_members", "one key", lambda: ensemble.init_members(NET, KEY, X), ValueError,
       _KEYS),
    _e("create_ensemble_state", "int keys",
       lambda: ensemble.create_ensemble_state(NET, optax.sgd(0.1), np.arange(3), X),
       ValueError, _KEYS),
    _e("create_nnx_ensemble_state", "a module instead of a builder",
       lambda: ensemble.create_nnx_ensemble_state(_nnx_linear(), optax.sgd(0.1),
                                                  jax.random.split(jax.random.key(0), 2)),
       TypeError, r"`make_model` must be a function rngs -> nnx.Module"),
    _e("create_nnx_ensemble_state", "int keys",
       lambda: ensemble.create_nnx_ensemble_state(
           lambda rngs: _nnx_linear(), optax.sgd(0.1), np.arange(3)),
       ValueError, _KEYS),
    _t("create_nnx_train_state", "a wrt filter that selects nothing",
       lambda: training.create_nnx_train_state(_nnx_linear(), optax.sgd(0.1),
                                               jax.random.PRNGKey(0), wrt=_nothing()),
       ValueError, r"`wrt` filter .* selects no parameter"),
    _e("ensemble_variables", "variables instead of state",
       lambda: ensemble.ensemble_variables(_variables()), TypeError,
       r"`state` must be a TrainState \(from create_ensemble_state\)"),
    _e("make_ensemble_train_step", "state not stacked",
       lambda: ensemble.make_ensemble_train_step()(types.SimpleNamespace(step=jnp.zeros(())),
                                                   {}),
       ValueError, r"`states` must be stacked over members \(create_ensemble_state\)"),
    _e("make_ensemble_train_step", "batches without labels",
       lambda: ensemble.make_ensemble_train_step()(types.SimpleNamespace(step=jnp.zeros(2)),
                                                   {"image": rand(2, 2, 4, 4, 1)}),
       ValueError, r"`batches` must have an 'label' entry"),
    _e("bootstrap_indices", "n 0", lambda: ensemble.bootstrap_indices(KEY, 0, 3), ValueError,
       r"`n` must be a positive int"),
    _e("predict", "scalar x", lambda: ensemble.predict(NET.apply, {}, np.float32(1)),
       ValueError, r"`x` must have rank 1 or .*a batch axis first"),
    _e("predict", "batch_size 0",
       lambda: ensemble.predict(NET.apply, {}, X, batch_size=0), ValueError,
       r"`batch_size` must be a positive int"),
    _e("majority_vote", "float predictions",
       lambda: ensemble.majority_vote(rand(3, 4), 3), TypeError,
       r"`preds` must hold integer labels.*jnp.argmax\(logits, -1\)"),
    _e("majority_vote", "label outside the classes",
       lambda: ensemble.majority_vote(np.array([[0, 3], [1, 1]]), 3), ValueError,
       r"`preds` must lie in \[0, num_classes\) = \[0, 3\)"),
    _e("majority_vote", "one member's labels",
       lambda: ensemble.majority_vote(LABELS, 3), ValueError,
       r"`preds` must have rank 2 laid out as \(K, N\)"),
    _e("average_probabilities", "one member",
       lambda: ensemble.average_probabilities(LOGITS), ValueError,
       r"`logits` must have rank 3 laid out as \(K, N, C\)"),
    _e("weighted_average", "weights per member",
       lambda: ensemble.weighted_average(rand(2, 4, 3), np.ones(3)), ValueError,
       r"`weights` must have shape \(K,\) = \(2,\)"),
    _e("fit_stacking", "labels per example",
       lambda: ensemble.fit_stacking(rand(2, 4, 3), LABELS[:3]), ValueError,
       r"`labels_heldout` must be \(4,\) integer labels"),
    _e("predict_stacking", "probabilities of one member",
       lambda: ensemble.predict_stacking(None, rand(4, 3)), ValueError,
       r"`member_probs` must have shape \(K, N, C\)"),
]


def _x(name, what, call, exc, match):
    return Case(f"transfer.{name}", what, call, exc, match)


def _params():
    return _variables()["params"]


TRANSFER = [
    _x("freeze", "pattern matches nothing", lambda: transfer.freeze(_params(), "^c2/"),
       ValueError, r"`patterns` pattern '\^c2/' matches no parameter path; it must match one "
                   r"of: conv/bias"),
    _x("freeze", "invalid regex", lambda: transfer.freeze(_params(), "conv("), ValueError,
       r"`patterns` has an invalid regular expression 'conv\('"),
    _x("freeze", "pattern not a string", lambda: transfer.freeze(_params(), [3]), TypeError,
       r"`patterns` must be regex strings, got 3"),
    _x("make_transfer_optimizer", "negative backbone_lr_scale",
       lambda: transfer.make_transfer_optimizer(optax.sgd(0.1), _params(), None,
                                                backbone_lr_scale=-1.0),
       ValueError, r"`backbone_lr_scale` must be >= 0"),
    _x("freeze_batch_stats", "structures differ",
       lambda: transfer.freeze_batch_stats({"bn": {"mean": 1.0}}, {}, "bn"), ValueError,
       r"`new_batch_stats` and `old_batch_stats` must have the same structure"),
    _x("make_transfer_train_step", "invalid regex",
       lambda: transfer.make_transfer_train_step("conv["), ValueError,
       r"`frozen_patterns` has an invalid regular expression"),
    _x("replace_head", "num_classes 0",
       lambda: transfer.replace_head(NET, _variables(), 0, KEY), ValueError,
       r"`num_classes` must be a positive int"),
    _x("replace_head", "unknown head",
       lambda: transfer.replace_head(NET, _variables(), 5, KEY, head="output"), ValueError,
       r"`head` 'output' is not a module of the model's params; it must name one"),
    _x("replace_head", "model without num_classes",
       lambda: transfer.replace_head(L.Dense(3), _variables(), 5, KEY), ValueError,
       r"`model` \(Dense\) has no `num_classes` field"),
    _x("extract_features", "batch_size 0",
       lambda: transfer.extract_features(NET, _variables(), X, "pool", batch_size=0),
       ValueError, r"`batch_size` must be a positive int"),
    _x("extract_features", "one image", lambda: transfer.extract_features(NET, _variables(),
                                                                          X[0], "pool"),
       ValueError, r"`images` must be a non-empty \(N, H, W, C\) batch, got shape \(4, 4, 1\)"),
    _x("fit_linear_classifier", "kind",
       lambda: transfer.fit_linear_classifier(rand(4, 2), LABELS, kind="tree"), ValueError,
       r"`kind` must be one of \('logistic', 'svm'\), got 'tree'"),
    _x("fit_linear_classifier", "feature maps",
       lambda: transfer.fit_linear_classifier(rand(4, 2, 2), LABELS), ValueError,
       r"`features` must be \(N, D\), got shape \(4, 2, 2\)"),
    _x("fit_linear_classifier", "labels per example",
       lambda: transfer.fit_linear_classifier(rand(4, 2), LABELS[:2]), ValueError,
       r"`labels` must have shape \(4,\)"),
]

TOOLS = [
    Case("inspect.intermediates", "unknown layer",
         lambda: jax.eval_shape(lambda v, x: jinspect.intermediates(NET, v, x, ["pol"]),
                                _variables(), X),
         ValueError, r"unknown layer name\(s\) \['pol'\]. Did you mean 'pool'"),
    Case("inspect.intermediates", "uint8 input",
         lambda: jinspect.intermediates(NET, _variables(), X.astype(np.uint8), ["pool"]),
         TypeError, r"`x` must be a floating-point"),
    Case("inspect.summary", "image without batch axis",
         lambda: jinspect.summary(NET, spec(4, 4, 1)), ValueError,
         r"`x` must have a batch axis"),
    Case("visualize.kernel_grid", "3-D kernel",
         lambda: visualize.kernel_grid(rand(3, 3, 4), _DIRS["tmp"] / "k.png"), ValueError,
         r"`kernel` must be a 4-D HWIO array"),
    Case("visualize.kernel_grid", "C_in 2",
         lambda: visualize.kernel_grid(rand(3, 3, 2, 4), _DIRS["tmp"] / "k.png"), ValueError,
         r"`kernel` must have C_in = 1 \(grey\) or 3 \(RGB\)"),
    Case("visualize.kernel_grid", "normalize",
         lambda: visualize.kernel_grid(rand(3, 3, 1, 4), _DIRS["tmp"] / "k.png",
                                       normalize="minmax"), ValueError,
         r"`normalize` must be one of \('per_filter', 'global'\)"),
    Case("visualize.feature_maps", "unknown layer",
         lambda: visualize.feature_maps(NET, _variables(), X[0], ["pol"],
                                        _DIRS["tmp"] / "f.png"),
         ValueError, r"unknown layer name\(s\) \['pol'\]. Did you mean 'pool'"),
    Case("visualize.feature_maps", "image rank 2",
         lambda: visualize.feature_maps(NET, _variables(), X[0, ..., 0], ["pool"],
                                        _DIRS["tmp"] / "f.png"),
         ValueError, r"`image` must be one \(H, W, C\) image or a \(1, H, W, C\) batch"),
    Case("visualize.feature_maps", "no layers",
         lambda: visualize.feature_maps(NET, _variables(), X[0], [], _DIRS["tmp"] / "f.png"),
         ValueError, r"`layer_names` must name at least one layer"),
    Case("visualize.feature_maps", "max_channels 0",
         lambda: visualize.feature_maps(NET, _variables(), X[0], ["pool"],
                                        _DIRS["tmp"] / "f.png", max_channels=0),
         ValueError, r"`max_channels` must be a positive int"),
    Case("visualize.training_curves", "missing file",
         lambda: visualize.training_curves(_DIRS["tmp"] / "none.jsonl", _DIRS["tmp"] / "c.png"),
         FileNotFoundError, r"`path` .*none.jsonl' is not a file; pass a run's metrics file"),
    Case("visualize.training_curves", "empty file",
         lambda: visualize.training_curves(_DIRS["tmp"] / "empty.jsonl",
                                           _DIRS["tmp"] / "c.png"),
         ValueError, r"`metrics_jsonl` .*empty.jsonl' holds no records"),
    Case("visualize.confusion_matrix", "not square",
         lambda: visualize.confusion_matrix(np.ones((2, 3)), _DIRS["tmp"] / "m.png"),
         ValueError, r"`matrix` must be a square \(num_classes, num_classes\) array"),
    Case("visualize.confusion_matrix", "class_names per class",
         lambda: visualize.confusion_matrix(np.eye(2), _DIRS["tmp"] / "m.png", ["cat"]),
         ValueError, r"`class_names` must have one name per row of `matrix` \(2\), got 1"),
    Case("visualize.filter_bank", "image smaller than 9x9",
         lambda: visualize.filter_bank(rand(8, 8), _DIRS["tmp"] / "b.png"), ValueError,
         r"`image` must be at least 9x9"),
    Case("visualize.filter_bank", "batch of images",
         lambda: visualize.filter_bank(rand(2, 16, 16, 3), _DIRS["tmp"] / "b.png"), ValueError,
         r"`image` must be \(H, W\) grey, \(H, W, 1\) or \(H, W, 3\) RGB"),
]


def _experiment(*args: str) -> None:
    """``python -m experiments.train ARGS``; a failure raises with its last stderr line."""
    proc = subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1])  # the usage error


def _train(**overrides):
    """``jaxcnn.training.loop.train`` on the default config with ``overrides``."""
    from jaxcnn.training.loop import train

    config = configs.get_config("default")
    config.data_dir = str(_DIRS["tmp"] / "data")
    for key, value in overrides.items():
        setattr(config, key, value)
    return train(config, _DIRS["tmp"] / "run")


EXPERIMENTS = [
    Case("experiments.configs.get_config", "unknown name",
         lambda: configs.get_config("lenet_mnst"), ValueError,
         r"unknown config name 'lenet_mnst'. Did you mean 'lenet_mnist'"),
    Case("experiments.configs.config_file", "unknown path",
         lambda: configs.config_file("experiments/configs/resnet18_cifar.py"), ValueError,
         r"unknown config file 'experiments/configs/resnet18_cifar.py'. Did you mean "
         r"'experiments/configs/resnet18_cifar10.py'"),
    Case("experiments.train", "unknown --config file",
         lambda: _experiment("--config", "experiments/configs/deafult.py", "--workdir",
                             str(_DIRS["tmp"] / "cli")),
         RuntimeError, r"--config: unknown config file 'experiments/configs/deafult.py'. Did "
                       r"you mean 'experiments/configs/default.py'"),
    Case("experiments.train", "unknown config field",
         lambda: _experiment("--config", "experiments/configs/default.py", "--workdir",
                             str(_DIRS["tmp"] / "cli"), "--config.optimzer=adam"),
         RuntimeError, r"--config\.\* override of a field that does not exist: 'optimzer' Did "
                       r"you mean \"optimizer\" instead of \"optimzer\""),
    Case("experiments.train", "unknown model", lambda: _train(model="lenet"), ValueError,
         r"unknown model name 'lenet'. Did you mean 'lenet5'"),
    Case("experiments.train", "unknown dataset", lambda: _train(dataset="digit"), ValueError,
         r"unknown dataset `name`='digit'. Did you mean 'digits'"),
    Case("experiments.train", "unknown optimizer", lambda: _train(optimizer="nesterow"),
         ValueError, r"unknown optimizer 'nesterow'. Did you mean 'nesterov'"),
    Case("experiments.train", "unknown schedule", lambda: _train(schedule="warmup_cosin"),
         ValueError, r"unknown schedule 'warmup_cosin'. Did you mean 'warmup_cosine'"),
    Case("experiments.train", "batch larger than the dataset",
         lambda: _train(batch_size=4096), ValueError,
         r"config.batch_size=4096 is larger than the 1437 training examples of 'digits'; use "
         r"a smaller batch"),
    Case("experiments.train", "missing data_dir",
         lambda: _train(dataset="mnist", data_dir=str(_DIRS["tmp"] / "nowhere")),
         FileNotFoundError, r"`data_dir`=.*nowhere', a folder that does not exist"),
]

CASES = TRAINING + ENSEMBLE + TRANSFER + TOOLS + EXPERIMENTS


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case: Case) -> None:
    check(case)
