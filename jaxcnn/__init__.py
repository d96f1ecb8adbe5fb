"""jaxcnn: convolutional networks in JAX.

* :mod:`jaxcnn.functional` (``F``): pure functions — convolution in every variant, pooling,
  normalization, activations, dropout.
* :mod:`jaxcnn.filters`: classic image-processing kernels (Gaussian, Sobel, Gabor, ...).
* :mod:`jaxcnn.layers` (``L``), :mod:`jaxcnn.blocks`, :mod:`jaxcnn.models`: Flax linen
  modules on top of ``F``, and the model zoo (``jaxcnn.models.create(name)``).
* :mod:`jaxcnn.weights`: Keras / torchvision weight import, ``.safetensors`` export.
* :func:`intermediates` (named feature maps) and :func:`summary` (a Keras-style table).

jaxcnn is a guest in the program that imports it: importing or calling the library changes no
process-wide state (``malloc``, matplotlib's backend, absl's flags, ``jax.config``, signal
handlers outside the training loop). What a program may want for speed it asks for:
:func:`tune_host_malloc` sets three glibc ``malloc`` options so that XLA:CPU's large per-step
buffers stay mapped between steps (ResNet-18 trains 1.07-1.10x faster on CPU). Call it first,
before any JAX array or computation; it warns when called too late or when JAX's default
backend is a GPU/TPU (see :mod:`jaxcnn._native.host_memory`). ``python -m experiments.train``
and the benchmarks call it themselves (``JAXCNN_HOST_MALLOC=0`` to opt out).
"""

from jaxcnn import filters, functional, layers
from jaxcnn._native.host_memory import configure as tune_host_malloc
from jaxcnn._utils import count_params
from jaxcnn.inspect import intermediates, summary

__all__ = ["count_params", "filters", "functional", "intermediates", "layers", "summary",
           "tune_host_malloc"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # jaxcnn.weights on first use: it needs the `weights` extra (h5py, safetensors), and
    # `import jaxcnn` needs only the core dependencies.
    if name == "weights":
        import importlib

        return importlib.import_module("jaxcnn.weights")
    raise AttributeError(f"module 'jaxcnn' has no attribute {name!r}")
