"""What every benchmark records with its figures: the machine, package versions and the exact command."""

from __future__ import annotations

import itertools
import json
import os
import platform
import sys
from pathlib import Path

import optuna
import torch

from nas.latency import device_name
from nas.study import versions

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Return the CPU model, its thread count, torch's thread setting and the GPU (if any)."""
    gpu = device_name("cuda") if torch.cuda.is_available() else None
    return {
        "cpu": device_name("cpu"),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
    }


def write_result(name: str, figures: dict) -> Path:
    """Write ``figures`` plus machine, versions and command to ``benchmarks/results/<name>.json``; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    command = "python -m benchmarks." + Path(sys.argv[0]).stem + "".join(f" {a}" for a in sys.argv[1:])
    record = {**figures, "machine": machine(), "versions": versions(), "command": command}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def ranks(xs: list[float]) -> list[float]:
    """Return average ranks (1-based) of ``xs``, ties sharing their mean rank."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Return Spearman's rho (Pearson correlation of the ranks)."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else float("nan")


def kendall(a: list[float], b: list[float]) -> float:
    """Return Kendall's tau-b."""
    conc = disc = ta = tb = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 and db == 0:
            continue
        if da == 0:
            ta += 1
        elif db == 0:
            tb += 1
        elif da * db > 0:
            conc += 1
        else:
            disc += 1
    denom = ((conc + disc + ta) * (conc + disc + tb)) ** 0.5
    return (conc - disc) / denom if denom else float("nan")


def diverse_architectures(space, n: int, seed: int) -> list:
    """Return the stock architecture plus n-1 distinct random ones of the space (seeded)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    chosen = [space.stock()]
    while len(chosen) < n:
        arch = space.sample(study.ask())
        if all(arch.key != c.key for c in chosen):
            chosen.append(arch)
    return chosen
