"""Zero-cost scores: how an architecture might rank, judged at initialisation without any training.

Two published scores, computed on the plain candidate built from ``Architecture.to_yaml()`` with seeded random
weights (higher means "expected better" for both):

- ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR 2023): the
  detection loss is back-propagated on several training batches; for every layer's weight, the mean absolute
  gradient over the batches divided by its (population) standard deviation is summed, and the log of each layer's
  sum is added over layers (elements whose gradient never varies are left out, as the authors' code does).
- SynFlow (Tanaka et al., NeurIPS 2020; used as a NAS proxy by Abdelfattah et al., ICLR 2021): every parameter made
  positive, an all-ones image forwarded in double precision with BatchNorm in inference mode, the sum of the head's
  box and class outputs back-propagated; the score is ``log(sum |w * dR/dw|)`` over the layers' weights (the log
  only keeps it finite).

A layer's weight is a module's own ``weight`` parameter with at least two dimensions: convolution and linear
kernels, and also the kernel bank DynamicConv convolves with through ``F.conv2d`` (BatchNorm's are 1-D). Neither
score changes anything outside the model it builds (torch's global random state included). They serve as a
pre-screen or as a point of comparison for the trained proxies (``benchmarks/proxy_fidelity.py``); no preset ranks
by them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.nn.tasks import DetectionModel

from ..space import Architecture
from .cost import build_model

ZICO_BATCHES = 4
ZICO_BATCH = 16


def labelled_batches(data_yaml: Path, imgsz: int, count: int = ZICO_BATCHES, batch: int = ZICO_BATCH) -> list[dict]:
    """Return up to ``count`` full batches of ``batch`` training images with their boxes, in file order,
    letterboxed to ``imgsz`` without augmentation: the batch dicts Ultralytics' detection loss takes (``img`` as
    0..1 floats). A last, shorter batch is left out (the loss scales with the batch size).

    Raises:
        FileNotFoundError, ValueError: the dataset or its images cannot be read (Ultralytics' own errors).
    """
    data = check_det_dataset(str(data_yaml), autodownload=False)
    cfg = get_cfg(overrides={"imgsz": imgsz, "rect": False, "cache": False, "fraction": 1.0})
    dataset = build_yolo_dataset(cfg, data["train"], batch, data, mode="val")
    out = []
    for start in range(0, min(count * batch, len(dataset) - batch + 1), batch):
        items = [dataset[i] for i in range(start, start + batch)]
        b = dataset.collate_fn(items)
        b["img"] = b["img"].float() / 255.0
        out.append(b)
    return out


def _seeded_model(arch: Architecture, nc: int, seed: int) -> DetectionModel:
    """Return the candidate with the random weights seed ``seed`` gives it, with the loss's hyper-parameters."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch.model_dict(nc))
    model.args = get_cfg()  # box/cls/dfl gains of the detection loss, as the trainer sets them
    return model


def layer_weights(model: nn.Module) -> Iterator[nn.Parameter]:
    """Yield every layer's weight: a module's own ``weight`` parameter with at least two dimensions."""
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if name == "weight" and p.dim() >= 2 and p.requires_grad:
                yield p


def zico(arch: Architecture, nc: int, batches: list[dict], seed: int = 0) -> float:
    """Return the ZiCo score of ``arch`` (``nc`` classes) at its seeded initialisation, over ``batches``
    (at least two, from ``labelled_batches``).

    Raises:
        ValueError: fewer than two batches (a gradient's variance needs two).
        UserError: the architecture cannot be built.
    """
    if len(batches) < 2:
        raise ValueError(f"ZiCo needs at least 2 batches, got {len(batches)}")
    model = _seeded_model(arch, nc, seed).train()
    weights = list(layer_weights(model))
    grads: list[list[torch.Tensor]] = [[] for _ in weights]
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss, _ = model.loss(batch)
        loss.sum().backward()
        for g, w in zip(grads, weights, strict=True):
            g.append(torch.zeros_like(w) if w.grad is None else w.grad.detach().clone())
    score = 0.0
    for g in grads:
        stacked = torch.stack(g)
        std, mean_abs = stacked.std(dim=0, correction=0), stacked.abs().mean(dim=0)
        varying = std > 0
        total = float((mean_abs[varying] / std[varying]).sum())
        if total > 0:
            score += math.log(total)
    return score


def synflow(arch: Architecture, nc: int, imgsz: int, seed: int = 0) -> float:
    """Return the log SynFlow score of ``arch`` (``nc`` classes) on an ``imgsz`` all-ones image, at its seeded
    initialisation (``-inf`` where every product is zero).

    Raises:
        FloatingPointError: the score overflows even in double precision.
        UserError: the architecture cannot be built.
    """
    model = _seeded_model(arch, nc, seed).double().train()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.eval()  # in training mode a constant image would normalise to zero everywhere
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    out = model(torch.ones(1, 3, imgsz, imgsz, dtype=torch.float64))
    _total(out).backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in layer_weights(model) if p.grad is not None)
    if not math.isfinite(total):
        raise FloatingPointError(f"SynFlow overflowed for {arch.summary()}")
    return math.log(total) if total > 0 else -math.inf


def _total(out: object) -> torch.Tensor:
    """Return the sum of every tensor in a head's training output (a tensor, or lists/tuples/dicts of them),
    leaving out the features the head also passes on (``feats``): only what it predicts."""
    if isinstance(out, torch.Tensor):
        return out.sum()
    items = [v for k, v in out.items() if k != "feats"] if isinstance(out, dict) else out
    return sum((_total(o) for o in items), torch.zeros((), dtype=torch.float64))
