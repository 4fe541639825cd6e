"""Registration of the operators into Ultralytics' YAML parser, without editing the installed package.

Ultralytics' ``parse_model`` resolves a row's module by name in ``ultralytics.nn.tasks`` and does its channel
bookkeeping (c1 insertion, width scaling of c2, repeats, C3k2's c3k forcing at m/l/x, Detect's ``legacy``
flag) only for a hard-coded set of its own classes; an unknown class would be assumed to keep its input
channels. So ``parse_model`` is wrapped: each row naming one of our operators is parsed as the stock layer of
its slot (``Conv`` or ``C3k2``) with the row's Conv/C3k2 arguments, which lets Ultralytics resolve every
channel, repeat and scale rule exactly as for the stock model; the resolved constructor arguments are
recorded, and the stock layer is then replaced by our operator built from them (plus the operator's extra
arguments, e.g. Conv2Former's kernel). Because the slot's stock class is what Ultralytics sees, replacing
every C3k2 still keeps Detect on its YOLO11 (non-legacy) head.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from ultralytics.nn import tasks
from ultralytics.nn.modules.block import C3k2
from ultralytics.nn.modules.conv import Conv
from ultralytics.utils import LOGGER

from .acmix import ACmix
from .conv2former import Conv2Former
from .convnext import ConvNeXt
from .csp import C3k2_ACmix, C3k2_Conv2Former, C3k2_ConvNeXt, C3k2_DynamicConv, C3k2_GhostV2
from .dynamic_conv import DynamicConv
from .ghostv2 import GhostV2

CONV_SLOT_ARGS = 3  # Conv row args [c2, k, s] that Ultralytics resolves; later args are passed through
C3K2_SLOT_ARGS = 6  # C3k2 row args [c2, c3k, e, attn, g, shortcut]


@dataclass(frozen=True)
class Operator:
    """A public YAML name, the class it builds, and the stock Ultralytics layer whose slot it fills."""

    name: str
    cls: type[nn.Module]
    slot: str  # "conv" (replaces Conv) or "block" (replaces C3k2)

    @property
    def stock(self) -> type[nn.Module]:
        """Return the Ultralytics class parsed in this operator's place (``Conv`` or ``C3k2``)."""
        return Conv if self.slot == "conv" else C3k2

    def split_args(self, args: list[Any]) -> tuple[list[Any], list[Any]]:
        """Return (the args Ultralytics resolves for the stock slot layer, the operator's extra args)."""
        n = CONV_SLOT_ARGS if self.slot == "conv" else C3K2_SLOT_ARGS
        return list(args[:n]), list(args[n:])


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("DynamicConv", DynamicConv, "conv"),
        Operator("GhostV2", GhostV2, "conv"),
        Operator("ACmix", ACmix, "conv"),
        Operator("Conv2Former", Conv2Former, "conv"),
        Operator("ConvNeXt", ConvNeXt, "conv"),
        Operator("C3k2_DynamicConv", C3k2_DynamicConv, "block"),
        Operator("C3k2_GhostV2", C3k2_GhostV2, "block"),
        Operator("C3k2_ACmix", C3k2_ACmix, "block"),
        Operator("C3k2_Conv2Former", C3k2_Conv2Former, "block"),
        Operator("C3k2_ConvNeXt", C3k2_ConvNeXt, "block"),
    )
}
CONV_SLOT = tuple(name for name, op in OPERATORS.items() if op.slot == "conv")
BLOCK_SLOT = tuple(name for name, op in OPERATORS.items() if op.slot == "block")

_original_parse_model = tasks.parse_model


@contextlib.contextmanager
def _recording_init(classes: tuple[type[nn.Module], ...]) -> Iterator[dict[int, tuple[tuple, dict]]]:
    """Temporarily record the constructor arguments of every instance of ``classes``, keyed by ``id(instance)``."""
    records: dict[int, tuple[tuple, dict]] = {}
    originals = {cls: cls.__dict__["__init__"] for cls in classes}

    def wrap(cls: type, init: Any) -> Any:
        def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
            if type(self) is cls:
                records[id(self)] = (args, kwargs)
            init(self, *args, **kwargs)

        return recording_init

    try:
        for cls, init in originals.items():
            cls.__init__ = wrap(cls, init)
        yield records
    finally:
        for cls, init in originals.items():
            cls.__init__ = init


def _single_scale(d: dict) -> None:
    """Pin ``d['scale']`` when the YAML declares exactly one scale, so the file name cannot change it."""
    scales = d.get("scales")
    if isinstance(scales, dict) and len(scales) == 1:
        d["scale"] = next(iter(scales))


def _build(op: Operator, i: int, stock_args: tuple, stock_kwargs: dict, extra: list[Any]) -> nn.Module:
    """Return ``op.cls`` built from the resolved stock arguments plus the row's extra ones.

    Raises:
        ValueError: the operator rejects its arguments; the message names the layer.
    """
    try:
        return op.cls(*stock_args, *extra, **stock_kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"layer {i} ({op.name}): {e}") from e


def parse_model(d: dict, ch: int, verbose: bool = True) -> tuple[nn.Sequential, list[int]]:
    """Ultralytics' ``parse_model`` extended with this package's operators.

    Returns:
        (model, save): the ``nn.Sequential`` of layers and the sorted indices whose outputs are kept, as
        Ultralytics' own function returns them.

    Raises:
        ValueError: an operator rejects its arguments (message names the layer index and operator).
    """
    d = copy.deepcopy(d)
    _single_scale(d)
    rows = d.get("backbone", []) + d.get("head", [])
    ours: dict[int, tuple[Operator, list[Any]]] = {}
    for i, row in enumerate(rows):
        op = OPERATORS.get(row[2]) if isinstance(row[2], str) else None
        if op is not None:
            stock_args, extra = op.split_args(row[3])
            row[2], row[3] = op.stock.__name__, stock_args
            ours[i] = (op, extra)
    if not ours:
        return _original_parse_model(d, ch, verbose)

    with _recording_init((Conv, C3k2)) as records:
        model, save = _original_parse_model(d, ch, verbose=False)
    default_act = Conv.default_act
    if d.get("activation"):  # as Ultralytics does while parsing, so our Conv units use the YAML's activation too
        Conv.default_act = tasks._SafeLoad.activation(d["activation"])
    try:
        for i, (op, extra) in ours.items():
            stock = model[i]
            copies = list(stock) if isinstance(stock, nn.Sequential) else [stock]
            built = [_build(op, i, *records[id(m)], extra) for m in copies]
            layer = nn.Sequential(*built) if isinstance(stock, nn.Sequential) else built[0]
            layer.i, layer.f = stock.i, stock.f
            layer.type = f"{op.cls.__module__}.{op.cls.__name__}"
            layer.np = sum(p.numel() for p in layer.parameters())
            model[i] = layer
    finally:
        Conv.default_act = default_act
    if verbose:
        _log_layers(model)
    return model, save


def _log_layers(model: nn.Sequential) -> None:
    """Print the layer table (index, from, params, type) the way Ultralytics' parser does."""
    LOGGER.info(f"\n{'':>3}{'from':>20}{'params':>10}  {'module':<45}")
    for m in model:
        LOGGER.info(f"{m.i:>3}{m.f!s:>20}{m.np:10.0f}  {m.type:<45}")


def register() -> None:
    """Make the operators' YAML names resolvable by Ultralytics and install the wrapped parser (idempotent)."""
    for name, op in OPERATORS.items():
        setattr(tasks, name, op.cls)
    tasks.parse_model = parse_model
    _allow_safe_loading()


def _allow_safe_loading() -> None:
    """Let ``torch.load(weights_only=True)`` (Ultralytics' opt-in safe mode) accept checkpoints with our layers."""
    from . import acmix, conv2former, convnext, csp, dynamic_conv, ghostv2, layers

    classes = [
        obj
        for mod in (acmix, conv2former, convnext, csp, dynamic_conv, ghostv2, layers)
        for obj in vars(mod).values()
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == mod.__name__
    ]
    with contextlib.suppress(AttributeError):
        torch.serialization.add_safe_globals(classes)
