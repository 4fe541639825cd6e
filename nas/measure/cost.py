"""Cost model: parameters and GFLOPs of an architecture at the deployment image size.

GFLOPs follow Ultralytics' convention (2 x multiply-accumulates) counted at full resolution, with every
operator's work included (``modules.flops``); stock models come out exactly as Ultralytics reports them.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import thop
import torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from modules.flops import RULES, count_macs

from ..errors import UserError
from ..space import Architecture


@dataclass(frozen=True)
class Cost:
    """Parameter count and GFLOPs of one model at one image size."""

    params: int
    gflops: float
    imgsz: int


def build_model(model_dict: dict, model_class: type[DetectionModel] = DetectionModel) -> DetectionModel:
    """Return the Ultralytics ``DetectionModel`` (or a subclass, ``model_class``) for a model dict (quietly).

    Raises:
        UserError: the model cannot be built (the message says which layer, where the operator knows).
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return model_class(model_dict, verbose=False)
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        raise UserError(f"cannot build model: {e}") from e


def model_cost(model: nn.Module, imgsz: int) -> Cost:
    """Return the parameters and full-resolution GFLOPs of a built model at ``imgsz`` x ``imgsz``."""
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        gflops = count_macs(model, imgsz) * 2 / 1e9
    return Cost(params=params, gflops=gflops, imgsz=imgsz)


def architecture_cost(arch: Architecture, nc: int, imgsz: int) -> Cost:
    """Return the cost of ``arch`` with ``nc`` classes at ``imgsz`` (builds the model)."""
    return model_cost(build_model(arch.model_dict(nc)), imgsz)


def layer_costs(model: DetectionModel, imgsz: int) -> list[tuple[float, int]]:
    """Return (GFLOPs, params) of each top-level layer of a built model at ``imgsz`` (full resolution)."""
    p = next(model.parameters())
    im = torch.zeros((1, p.shape[1], imgsz, imgsz), device=p.device, dtype=p.dtype)
    with torch.no_grad():
        _, _, tree = thop.profile(model, inputs=[im], custom_ops=RULES, verbose=False, ret_layer_info=True)
    layers = tree["model"][2]
    return [(layers[str(i)][0] * 2 / 1e9, sum(x.numel() for x in m.parameters())) for i, m in enumerate(model.model)]
