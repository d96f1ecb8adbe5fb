"""LeNet-5 on the embedded offline dataset (scikit-learn's 1,797 handwritten digits).

The README's main job (`make train`): runs on a fresh machine without internet in about a
minute on 2 CPU cores. Every other config starts from this one and overrides fields.

    python -m experiments.train --config experiments/configs/default.py --workdir /tmp/lenet
"""

import ml_collections
from ml_collections.config_dict import placeholder


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # What to train on what.
    config.model = "lenet5"
    config.model_options = ml_collections.ConfigDict()  # forwarded to jaxcnn.models.create
    config.dataset = "digits"        # a TFDS name (mnist, cifar10, ...) or "digits"
    config.data_dir = placeholder(str)  # prepared datasets live here (jaxcnn.data.prepare)
    config.image_size = placeholder(int)  # None: the dataset's native size
    config.image_size = 32           # LeNet-5's 32x32 input
    config.eval_split = "test"
    config.augment = ()              # e.g. (("random_crop", {"padding": 4}), ("random_flip", {}))
    # Optimisation.
    config.batch_size = 64
    config.eval_batch_size = 256
    config.num_epochs = 30
    config.num_steps = placeholder(int)  # overrides num_epochs when set
    config.optimizer = "momentum"    # sgd | momentum | nesterov | rmsprop | adam | adamw
    config.learning_rate = 0.05
    config.momentum = 0.9
    config.rmsprop_decay = 0.9       # for optimizer="rmsprop"
    # constant | step | exponential | inverse_time | warmup_cosine
    config.schedule = "warmup_cosine"
    config.warmup_epochs = 1.0
    config.decay_epochs = ()         # for schedule="step"
    config.decay_rate = 0.1
    config.weight_decay = 5e-4
    config.weight_decay_mode = "l2"  # l2 (a loss term) | decoupled
    config.label_smoothing = 0.0
    config.grad_clip_norm = placeholder(float)
    config.check_finite_inputs = False  # True: a NaN/Inf pixel in a batch stops with its index
    config.nonfinite = "stop"        # NaN/Inf loss or gradients: stop (default) | skip the step
    config.dtype = "float32"         # float32 | bfloat16 (compute; parameters stay float32)
    # Parallelism: none | pmap | mesh.
    config.parallel = "none"
    # Front end: linen | nnx (the model as an nnx.Module, updated by nnx.Optimizer; the same
    # initial weights, steps and checkpoints; see jaxcnn.training.nnx_state).
    config.api = "linen"
    # Bookkeeping.
    config.seed = 0
    config.log_every_steps = 20
    config.eval_every_steps = 0      # 0: once per epoch
    config.checkpoint_every_steps = 500
    config.keep_checkpoints = 3
    return config
