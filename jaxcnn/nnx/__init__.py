"""Flax NNX front end: ``jaxcnn.models.create(name, api="nnx", rngs=nnx.Rngs(0))``.

:class:`ZooModel` holds a registered model's variables as ``nnx.Param`` / ``nnx.BatchStat``
at the Linen module's paths and runs the one architecture definition (see
:mod:`jaxcnn.nnx._zoo`); :func:`from_linen` / :func:`to_linen` move weights between the two.
"""

from jaxcnn.nnx._zoo import ZooModel, register_native
from jaxcnn.nnx.convert import from_linen, to_linen

__all__ = ["ZooModel", "from_linen", "register_native", "to_linen"]
