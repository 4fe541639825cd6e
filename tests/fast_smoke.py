"""The smoke preset with its latency timed at 160 px in 3 runs, for tests of what a search stores and how workers
share a study: timing latency at the deployment size (640 px, 20 runs) is most of a smoke trial's time, and those
tests do not depend on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nas.config import STUDIES_DIR

FAST_IMGSZ = 160  # the deployment size GFLOPs and latency are measured at
FAST_LATENCY = {"runs": 3, "warmup": 1}  # over the preset's own latency keys


def fast_smoke_preset(folder: Path, name: str = "smoke", **changes: Any) -> Path:
    """Write the smoke preset with ``FAST_IMGSZ``, ``FAST_LATENCY`` and ``changes`` (top-level keys) over it as
    ``folder/<name>.yaml`` (the study takes the name ``name``); return its path."""
    raw = yaml.safe_load((STUDIES_DIR / "smoke.yaml").read_text())
    fast = {"imgsz": FAST_IMGSZ, "latency": {**raw.get("latency", {}), **FAST_LATENCY}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**raw, **fast, **changes}, sort_keys=False))
    return path
