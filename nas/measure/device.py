"""Which device a study runs on: resolving ``--device`` and naming the hardware in records."""

from __future__ import annotations

import platform

import torch

from ..errors import UserError


def resolve_device(device: str) -> str:
    """Return the torch device string for ``device`` (``auto``: the first GPU if any, else cpu).

    Raises:
        UserError: a CUDA device was asked for but is not available, or the name is not a device.
    """
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") or device.isdigit():
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available")
        return device if device.startswith("cuda") else f"cuda:{device}"
    if device != "cpu":
        raise UserError(f"--device {device}: expected cpu, cuda, cuda:N or auto")
    return device


def device_name(device: str | torch.device) -> str:
    """Return a human name of ``device``: the GPU model, or the CPU model from /proc/cpuinfo."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
