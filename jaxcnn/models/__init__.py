"""The model zoo: ``jaxcnn.models.create(name, num_classes=...)`` and ``list_models()``.

Each family module registers its models on import.
"""

# Imported for their registrations.
from jaxcnn.models import (  # noqa: F401
    alexnet,
    allconv,
    densenet,
    googlenet,
    highway,
    lenet,
    resnet,
    simple,
    vgg,
    xception,
)
from jaxcnn.models.registry import APIS, create, has_batch_norm, input_shape, list_models, register

__all__ = ["APIS", "create", "has_batch_norm", "input_shape", "list_models", "register"]
