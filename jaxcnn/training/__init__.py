"""Training: a pure ``TrainState``, jit-compiled steps, Optax optimizers, data parallelism.

An NNX model trains through the same steps: :func:`create_nnx_train_state` (see
:mod:`jaxcnn.training.nnx_state`).

``make_train_step`` / ``make_eval_step`` build pure step functions; ``make_strategy`` wraps
them for one device, ``pmap`` or a ``jit`` + ``NamedSharding`` mesh.
"""

from jaxcnn._extras import require

require("train", __name__)

from jaxcnn.training.losses import auxiliary_loss, cross_entropy, l2_penalty  # noqa: E402
from jaxcnn.training.metrics import classification_sums, summarize  # noqa: E402
from jaxcnn.training.nnx_state import (  # noqa: E402
    NnxTrainState,
    create_nnx_train_state,
    merge_model,
)
from jaxcnn.training.optim import make_optimizer, make_schedule  # noqa: E402
from jaxcnn.training.parallel import Strategy, make_strategy  # noqa: E402
from jaxcnn.training.state import TrainState, create_train_state  # noqa: E402
from jaxcnn.training.steps import make_eval_step, make_train_step  # noqa: E402

__all__ = [
    "NnxTrainState",
    "Strategy",
    "TrainState",
    "auxiliary_loss",
    "classification_sums",
    "create_nnx_train_state",
    "create_train_state",
    "cross_entropy",
    "l2_penalty",
    "make_eval_step",
    "make_optimizer",
    "make_schedule",
    "make_strategy",
    "make_train_step",
    "merge_model",
    "summarize",
]
