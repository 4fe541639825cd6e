"""What every benchmark records with its figures: the machine, package versions and the exact command."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

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
