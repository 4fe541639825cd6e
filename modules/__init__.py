"""Searchable YOLO operators as drop-in Ultralytics layers.

``import modules`` is the only step needed before ``ultralytics.YOLO("model.yaml")`` builds a model whose
rows use these names:

- Conv slot (replaces ``Conv``, args ``[c2, k, s, ...]``): ``DynamicConv``, ``GhostV2``, ``ACmix``,
  ``Conv2Former`` (``[c2, k, s, kernel]``), ``ConvNeXt``.
- Block slot (replaces ``C3k2``, C3k2's args): ``C3k2_DynamicConv``, ``C3k2_GhostV2``, ``C3k2_ACmix``,
  ``C3k2_Conv2Former`` (kernel as 7th arg), ``C3k2_ConvNeXt``.

Importing also makes Ultralytics' GFLOPs count these operators' full work (``modules.flops``).
"""

from . import flops, registry
from .acmix import ACmix, ACmixBottleneck, ACmixMixer
from .conv2former import KERNELS as CONV2FORMER_KERNELS
from .conv2former import Conv2Former, Conv2FormerBlock
from .convnext import ConvNeXt, ConvNeXtBlock
from .csp import C3k2_ACmix, C3k2_Conv2Former, C3k2_ConvNeXt, C3k2_DynamicConv, C3k2_GhostV2
from .dynamic_conv import DynamicBottleneck, DynamicConv, DynamicConv2d
from .ghostv2 import GhostBottleneckV2, GhostModuleV2, GhostV2
from .registry import BLOCK_SLOT, CONV_SLOT, OPERATORS

registry.register()
flops.register()

__all__ = [
    "BLOCK_SLOT",
    "CONV2FORMER_KERNELS",
    "CONV_SLOT",
    "OPERATORS",
    "ACmix",
    "ACmixBottleneck",
    "ACmixMixer",
    "C3k2_ACmix",
    "C3k2_Conv2Former",
    "C3k2_ConvNeXt",
    "C3k2_DynamicConv",
    "C3k2_GhostV2",
    "Conv2Former",
    "Conv2FormerBlock",
    "ConvNeXt",
    "ConvNeXtBlock",
    "DynamicBottleneck",
    "DynamicConv",
    "DynamicConv2d",
    "GhostBottleneckV2",
    "GhostModuleV2",
    "GhostV2",
]
