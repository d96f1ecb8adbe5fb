"""AlexNet (Krizhevsky et al. 2012, two towers as in the paper) on ImageNet at 227x227.

The paper's recipe: SGD momentum 0.9, batch 128, lr 0.01 divided by 10 on plateaus (here at
epochs 30 and 60), weight decay 5e-4, dropout 0.5 in the dense layers, 90 epochs.

    python -m experiments.train --config experiments/configs/alexnet_imagenet.py --workdir /tmp/alex
"""

from experiments.configs import default


def get_config():
    config = default.get_config()
    config.model = "alexnet"
    config.model_options = {}
    config.dataset = "imagenet2012"
    config.eval_split = "validation"
    config.image_size = 227
    config.batch_size = 128
    config.num_epochs = 90
    config.optimizer = "momentum"
    config.learning_rate = 0.01
    config.schedule = "step"
    config.decay_epochs = (30, 60)
    config.decay_rate = 0.1
    config.weight_decay = 5e-4
    config.augment = (("random_resized_crop", {"size": 227}), ("random_flip", {}))
    config.parallel = "mesh"
    return config
