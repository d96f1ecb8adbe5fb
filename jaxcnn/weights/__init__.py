"""Pretrained weights: import from Keras and torchvision files, export to ``.safetensors``.

* :func:`from_keras` ``(model_name, path)``: a ``keras.applications`` weight file (Keras 3
  ``.weights.h5`` or legacy ``.h5``) for ``vgg16``, ``vgg19``, ``resnet50_keras``,
  ``densenet121``, ``xception``; build the model with :func:`keras_model`.
* :func:`from_torchvision` ``(model_name, path)``: a torchvision ``state_dict`` saved as
  ``.safetensors`` or ``.npz`` for ``alexnet_torchvision``, ``vgg*``, ``resnet*``,
  ``densenet*``, ``googlenet``; build the model with :func:`torchvision_model`.
* :func:`to_safetensors` / :func:`load_safetensors`: any variables tree, round-tripped
  bit-exactly.

Layout conversions (OIHW -> HWIO, dense transposes, NCHW-flatten permutation, Keras depthwise
kernels, BatchNorm names and epsilon) live in one module, :mod:`jaxcnn.weights._layout`. A
missing, unexpected or mis-shaped tensor is a ``ValueError`` naming it. No file is ever
unpickled (``np.load(..., allow_pickle=False)``; ``.pt``/``.pth`` are refused; HDF5 and
``.npz`` entries must be numeric).

Example:
    >>> import os, tempfile
    >>> import jax.numpy as jnp, numpy as np
    >>> from jaxcnn import layers as L, weights
    >>> variables = {"params": {"kernel": np.eye(4, 3, dtype=np.float32),
    ...                         "bias": np.full(3, 0.5, np.float32)}}
    >>> path = os.path.join(tempfile.mkdtemp(), "dense.safetensors")
    >>> weights.to_safetensors(variables, path)
    >>> L.Dense(3).apply(weights.load_safetensors(path), jnp.ones((1, 4)))
    Array([[1.5, 1.5, 1.5]], dtype=float32)
"""

from jaxcnn._extras import require

require("weights", __name__)

from jaxcnn.weights.io import load_safetensors, read_keras_h5, read_state_dict, to_safetensors  # noqa: E402
from jaxcnn.weights.keras import KERAS_MODELS, from_keras, keras_model  # noqa: E402
from jaxcnn.weights.torchvision import TORCHVISION_MODELS, from_torchvision, torchvision_model  # noqa: E402

__all__ = [
    "KERAS_MODELS",
    "TORCHVISION_MODELS",
    "from_keras",
    "from_torchvision",
    "keras_model",
    "load_safetensors",
    "read_keras_h5",
    "read_state_dict",
    "to_safetensors",
    "torchvision_model",
]
