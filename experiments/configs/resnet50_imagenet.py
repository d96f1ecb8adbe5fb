"""ResNet-50 on ImageNet, the Flax ImageNet example's recipe (76% top-1 in 90 epochs).

Batch 1024, SGD momentum 0.9 (Nesterov off), lr 0.1 * batch / 256 with 5 warm-up epochs and
cosine decay, weight decay 1e-4 as an L2 term, label smoothing 0.1, bfloat16 compute, 90
epochs, on a mesh of all devices. ImageNet must be prepared with TFDS (`tfds build
imagenet2012 --manual_dir ...`, needs the `tf` extra) and is then read without TensorFlow.

    python -m experiments.train --config experiments/configs/resnet50_imagenet.py \
        --workdir gs://bucket/r50 --config.data_dir=/data/tensorflow_datasets

For a smoke test without the data set: --config.dataset=fake_imagenet (random images of
ImageNet's shape; measures the pipeline and the step, learns nothing).
"""

from experiments.configs import default


def get_config():
    config = default.get_config()
    config.model = "resnet50"
    config.model_options = {}
    config.dataset = "imagenet2012"
    config.eval_split = "validation"
    config.image_size = 224
    config.batch_size = 1024
    config.eval_batch_size = 1024
    config.num_epochs = 90
    config.optimizer = "momentum"
    config.learning_rate = 0.1 * config.batch_size / 256
    config.schedule = "warmup_cosine"
    config.warmup_epochs = 5.0
    config.weight_decay = 1e-4
    config.label_smoothing = 0.1
    config.dtype = "bfloat16"
    config.parallel = "mesh"
    config.augment = (("random_resized_crop", {"size": 224}), ("random_flip", {}))
    config.log_every_steps = 100
    config.checkpoint_every_steps = 5000
    return config
