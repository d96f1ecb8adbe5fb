"""Network building blocks (Flax linen) that take their parts as arguments.

Every block receives ``conv``, ``norm`` and ``act`` (defaults
``partial(L.Conv, use_bias=False)``, ``L.BatchNorm``, ``F.relu``), as Flax's ImageNet example
does, so a model swaps BatchNorm for GroupNorm or Conv for LocalConv without copying a block.
Blocks with train/eval differences are called ``block(x, train=...)``.

Families: residual (ResNet v1 / v1.5 / v2), squeeze-and-excitation, Inception v1, DenseNet-BC
dense blocks and transitions, highway layers, Xception flows. Names are re-exported one
``from ... import A as A`` line each (explicit re-exports, sorted).
"""

from jaxcnn.blocks.dense import DenseBlock as DenseBlock
from jaxcnn.blocks.dense import DenseLayer as DenseLayer
from jaxcnn.blocks.dense import Transition as Transition
from jaxcnn.blocks.highway import HighwayConv as HighwayConv
from jaxcnn.blocks.highway import HighwayDense as HighwayDense
from jaxcnn.blocks.inception import BasicConv as BasicConv
from jaxcnn.blocks.inception import Inception as Inception
from jaxcnn.blocks.inception import InceptionAux as InceptionAux
from jaxcnn.blocks.residual import BasicBlock as BasicBlock
from jaxcnn.blocks.residual import Bottleneck as Bottleneck
from jaxcnn.blocks.residual import PreActBlock as PreActBlock
from jaxcnn.blocks.residual import PreActBottleneck as PreActBottleneck
from jaxcnn.blocks.squeeze_excite import SqueezeExcite as SqueezeExcite
from jaxcnn.blocks.xception import EntryFlowBlock as EntryFlowBlock
from jaxcnn.blocks.xception import ExitFlowBlock as ExitFlowBlock
from jaxcnn.blocks.xception import MiddleFlowBlock as MiddleFlowBlock
