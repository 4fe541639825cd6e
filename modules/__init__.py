"""Searchable YOLO operators as drop-in Ultralytics layers.

``import modules`` is the only step needed before ``ultralytics.YOLO("model.yaml")`` builds a model whose rows use
the operator table's names (``modules.table``):

- Conv slot (replaces ``Conv``, args ``[c2, k, s, ...]``): ``DynamicConv``, ``GhostV2``, ``ACmix``,
  ``Conv2Former`` (``[c2, k, s, kernel]``), ``ConvNeXt``.
- Block slot (replaces ``C3k2``, C3k2's args): ``C3k2_DynamicConv``, ``C3k2_GhostV2``, ``C3k2_ACmix``,
  ``C3k2_Conv2Former`` (kernel as 7th arg), ``C3k2_ConvNeXt``.

Importing checks the Ultralytics version and installs the adapter (``modules.ultralytics_adapter``): the
parser, full GFLOPs counting, safe loading and offline guards.
"""

from . import ultralytics_adapter  # first: version check and YOLO_OFFLINE before anything imports Ultralytics
from .conv2former import KERNELS as CONV2FORMER_KERNELS
from .table import BLOCK_SLOT, CONV_SLOT, FAMILIES, OPERATORS, Family, Operator

ultralytics_adapter.install()

# every YAML name of the table as an attribute: ``from modules import C3k2_GhostV2``
globals().update({name: op.cls for name, op in OPERATORS.items()})

__all__ = [
    "BLOCK_SLOT",
    "CONV2FORMER_KERNELS",
    "CONV_SLOT",
    "FAMILIES",
    "OPERATORS",
    "Family",
    "Operator",
    *OPERATORS,
]
