"""Flax NNX front end: ``jaxcnn.models.create(name, api="nnx", rngs=nnx.Rngs(0))``.

:class:`ZooModel` holds a registered model's variables as ``nnx.Param`` / ``nnx.BatchStat``
at the Linen module's paths and runs the one architecture definition (see
:mod:`jaxcnn.nnx._zoo`).
"""

from jaxcnn.nnx._zoo import ZooModel, register_native

__all__ = ["ZooModel", "register_native"]
