"""The operator table: one row per published block, the single description every other file reads.

A row (``Family``) names the block, its short label, its conv-slot class (replaces ``Conv``), the c -> c inner
block its C3k2 form uses (replaces C3k2's bottleneck), and the extra YAML arguments it takes after the slot's
own (e.g. Conv2Former's kernel). Each row gives two YAML names: ``<name>`` in the conv slot and
``C3k2_<name>`` in the block slot (built by ``csp.c3k2_form``, importable as ``modules.csp.C3k2_<name>``).
Adding an operator: write its file, add a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .acmix import ACmix, ACmixBottleneck
from .conv2former import DEFAULT_KERNEL, KERNELS, Conv2Former, Conv2FormerBlock, check_kernel
from .convnext import ConvNeXt, ConvNeXtBlock
from .csp import c3k2_form
from .dynamic_conv import DynamicBottleneck, DynamicConv
from .ghostv2 import GhostBottleneckV2, GhostV2
from .slots import BLOCK, CONV, SLOTS, STOCK_SLOT, Slot


@dataclass(frozen=True)
class ExtraArg:
    """A YAML argument an operator takes after its slot's arguments, with its allowed values and default."""

    name: str
    choices: tuple[Any, ...]
    default: Any
    check: Callable[[Any, str], Any]  # (value, layer name) -> value; raises ValueError naming the layer


@dataclass(frozen=True)
class Family:
    """One published block: its YAML name, short label, conv-slot class, C3k2 inner block and extra arguments."""

    name: str
    short: str
    conv: type[nn.Module]
    inner: Callable[..., nn.Module]  # (c, shortcut, e, **extra) -> a c -> c block
    paper: str
    extra: tuple[ExtraArg, ...] = ()


@dataclass(frozen=True)
class Operator:
    """A public YAML name, the class it builds, the slot it fills and the row it comes from."""

    name: str
    cls: type[nn.Module]
    slot: Slot
    family: Family

    @property
    def extra(self) -> tuple[ExtraArg, ...]:
        """Return the extra YAML arguments after the slot's own."""
        return self.family.extra


KERNEL = ExtraArg("kernel", KERNELS, DEFAULT_KERNEL, check_kernel)

FAMILIES: tuple[Family, ...] = (
    Family("DynamicConv", "Dyn", DynamicConv, DynamicBottleneck, "ParameterNet, CVPR 2024"),
    Family(
        "GhostV2", "Ghost", GhostV2, lambda c, shortcut, e: GhostBottleneckV2(c, shortcut), "GhostNetV2, NeurIPS 2022"
    ),
    Family("ACmix", "ACmix", ACmix, ACmixBottleneck, "ACmix, CVPR 2022"),
    Family(
        "Conv2Former",
        "C2F",
        Conv2Former,
        lambda c, shortcut, e, kernel: Conv2FormerBlock(c, kernel),
        "Conv2Former, TPAMI 2024",
        (KERNEL,),
    ),
    Family("ConvNeXt", "CNX", ConvNeXt, lambda c, shortcut, e: ConvNeXtBlock(c), "ConvNeXt, CVPR 2022"),
)

OPERATORS: dict[str, Operator] = {
    op.name: op
    for f in FAMILIES
    for op in (
        Operator(f.name, f.conv, CONV, f),
        Operator(f"C3k2_{f.name}", c3k2_form(f.name, f.inner, f.extra), BLOCK, f),
    )
}
CONV_SLOT = tuple(name for name, op in OPERATORS.items() if op.slot is CONV)
BLOCK_SLOT = tuple(name for name, op in OPERATORS.items() if op.slot is BLOCK)


def slot_choices(kind: str) -> tuple[str, ...]:
    """Return the YAML names that can fill a ``kind`` ("conv" or "block") slot, the stock layer first."""
    slot = SLOTS[kind]
    return (slot.stock, *(name for name, op in OPERATORS.items() if op.slot is slot))


def is_stock(name: str) -> bool:
    """Return True for the stock layer names (``Conv``, ``C3k2``)."""
    return name in STOCK_SLOT


def extra_args(name: str) -> tuple[ExtraArg, ...]:
    """Return the extra YAML arguments of operator ``name`` (none for stock layers and unknown names)."""
    op = OPERATORS.get(name)
    return op.extra if op else ()


def short_name(name: str) -> str:
    """Return the compact label of a YAML name (``GhostV2`` and ``C3k2_GhostV2`` -> ``Ghost``; stock names as is)."""
    op = OPERATORS.get(name)
    return op.family.short if op else name
