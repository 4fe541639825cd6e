"""The two places of an Ultralytics model an operator can fill: the ``Conv`` slot and the ``C3k2`` (block) slot.

A slot names the stock Ultralytics layer, the order and defaults of the YAML arguments Ultralytics resolves for it
(channels, repeats, scale rules), and which argument values the operators cannot take. Every file that needs the
argument order of ``Conv`` or ``C3k2`` reads it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Slot:
    """A stock layer and the YAML arguments (after ``c1``) Ultralytics resolves for it, in order."""

    kind: str  # "conv" or "block"
    stock: str  # the Ultralytics class name: "Conv" or "C3k2"
    args: tuple[str, ...]  # argument names, c2 first
    defaults: tuple[Any, ...]  # defaults of args[1:], in order
    unsupported: Callable[[list[Any]], str | None]

    def full_args(self, args: list[Any]) -> list[Any]:
        """Return a row's slot arguments padded with the stock layer's defaults (extra arguments dropped)."""
        given = list(args[: len(self.args)])
        return given + list(self.defaults[len(given) - 1 :])

    def split(self, args: list[Any]) -> tuple[list[Any], list[Any]]:
        """Return (the args Ultralytics resolves for the stock layer, the operator's extra args)."""
        n = len(self.args)
        return list(args[:n]), list(args[n:])


def _conv_unsupported(args: list[Any]) -> str | None:
    """Return why the operators cannot replace a ``Conv`` row with these args, or None if they can."""
    if len(args) > 3:
        return "has Conv arguments beyond [c2, k, s] (padding/groups/dilation), which the operators do not take"
    if len(args) > 2 and args[2] not in (1, 2):
        return "has a stride other than 1 or 2"
    return None


def _block_unsupported(args: list[Any]) -> str | None:
    """Return why the operators cannot replace a ``C3k2`` row with these args, or None if they can."""
    if len(args) > 3 and args[3]:
        return "uses C3k2's attention variant (attn=True), which the block operators do not replace"
    if len(args) > 4 and args[4] != 1:
        return "uses grouped convs (g != 1), which the block operators do not support"
    return None


# Ultralytics 8.4: Conv(c1, c2, k=1, s=1, ...) and C3k2(c1, c2, n=1, c3k=False, e=0.5, attn=False, g=1, shortcut=True);
# n (repeats) comes from the row's repeat column, not from args.
CONV = Slot("conv", "Conv", ("c2", "k", "s"), (1, 1), _conv_unsupported)
BLOCK = Slot(
    "block", "C3k2", ("c2", "c3k", "e", "attn", "g", "shortcut"), (False, 0.5, False, 1, True), _block_unsupported
)
SLOTS = {s.kind: s for s in (CONV, BLOCK)}
STOCK_SLOT = {s.stock: s for s in SLOTS.values()}
