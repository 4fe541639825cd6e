"""The candidate as a user deploys it: a fused copy exported to ONNX (batch 1, static shape, opset 17).

The detection head is put in export mode as Ultralytics' exporter does (``Detect.export``: one output tensor, the
boxes and class scores); every operator of ``modules`` exports with the TorchScript-based exporter.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

OPSET = 17


def fused_copy(model: nn.Module) -> nn.Module:
    """Return a fused, eval-mode, float32 copy of ``model`` (the model itself is left unchanged)."""
    m = copy.deepcopy(model)
    if hasattr(m, "fuse"):
        m = m.fuse(verbose=False) if "verbose" in m.fuse.__code__.co_varnames else m.fuse()
    return m.float().eval()


def deployable(model: nn.Module) -> nn.Module:
    """Return a fused copy of ``model`` whose detection head returns only its boxes-and-scores tensor."""
    from ultralytics.nn.modules import Detect

    m = fused_copy(model)
    for p in m.parameters():
        p.requires_grad_(False)
    for layer in m.modules():
        if isinstance(layer, Detect):
            layer.export, layer.format, layer.dynamic, layer.shape = True, "onnx", False, None
    return m


@contextlib.contextmanager
def onnx_file(model: nn.Module, imgsz: int) -> Iterator[tuple[Path, float]]:
    """Export ``model`` to a temporary ONNX file and yield (its path, the export's seconds); the file and its
    folder are removed when the block exits, whatever happens.

    Raises:
        Exception: whatever ``torch.onnx.export`` raises for a model that does not export.
    """
    with tempfile.TemporaryDirectory(prefix="nas-latency-", ignore_cleanup_errors=True) as folder:
        path = Path(folder) / "candidate.onnx"
        t = time.perf_counter()
        m, x = deployable(model).cpu(), torch.zeros(1, 3, imgsz, imgsz)  # exported on the CPU wherever it runs
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about constant shapes: the shape is static on purpose
            torch.onnx.export(
                m, (x,), str(path), opset_version=OPSET, dynamo=False, input_names=["images"], output_names=["output0"]
            )
        yield path, time.perf_counter() - t
