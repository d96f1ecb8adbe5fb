"""Datasets for training: ``jaxcnn.data.load(name, split)`` -> numpy batches, no TensorFlow.

Datasets are stored in TFDS's ArrayRecord format and read with ``tfds.data_source``; the
default install needs neither TensorFlow nor internet access:

* ``python -m jaxcnn.data.prepare NAME --from DIR --data-dir OUT`` (in Python:
  ``from jaxcnn.data.prepare import prepare``) converts the standard archives of ``mnist``,
  ``fashion_mnist``, ``cifar10``, ``cifar100``, checking them on the way.
* ``digits`` (scikit-learn's bundled 8x8 handwritten digits) is prepared on first use.
* ``imagenet2012`` is prepared with TFDS itself (``tfds build``, needs the ``tf`` extra)
  and then read here without TensorFlow.

See ``docs/data.md`` for the measured input-pipeline throughput.
"""

from jaxcnn._extras import require

require("data", __name__)

from jaxcnn.data._specs import SPECS, DatasetSpec, default_data_dir  # noqa: E402
from jaxcnn.data.dataset import (  # noqa: E402
    Dataset,
    center_pad,
    load,
    resize_center_crop,
    upsample_pad,
)
from jaxcnn.data.pipeline import check_batch, normalize, one_hot, prefetch_to_device  # noqa: E402

__all__ = [
    "SPECS",
    "Dataset",
    "DatasetSpec",
    "center_pad",
    "check_batch",
    "default_data_dir",
    "load",
    "normalize",
    "one_hot",
    "prefetch_to_device",
    "resize_center_crop",
    "upsample_pad",
]
