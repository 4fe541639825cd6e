"""Resolve and load base Ultralytics model YAMLs from the installed package or a path (never downloading)."""

from __future__ import annotations

import re
from pathlib import Path

from ultralytics import __file__ as _ultralytics_init

from ..errors import UserError, read_yaml

MODELS_DIR = Path(_ultralytics_init).parent / "cfg" / "models"
SCALE_IN_NAME = re.compile(r"^(yolo(?:e-)?v?\d+)([nslmx])(.*)$")


def resolve(name: str, relative_to: Path | None = None) -> tuple[Path, str | None]:
    """Return (the YAML file, the scale letter its name implies or None) for ``name``.

    ``name`` is a path (absolute, or relative to ``relative_to`` or the working directory) or an Ultralytics
    model name such as ``yolo11n.yaml`` / ``yolov8s.yaml``, looked up among the installed package's configs.

    Raises:
        UserError: nothing local matches the name.
    """
    for candidate in ([relative_to / name] if relative_to else []) + [Path(name)]:
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate.resolve(), None
    stem = Path(name).stem
    match = SCALE_IN_NAME.match(stem)
    unified, scale = (match.group(1) + match.group(3), match.group(2)) if match else (stem, None)
    found = sorted(MODELS_DIR.rglob(f"{unified}.yaml"))
    if not found:
        raise UserError(f"unknown base model {name!r}: not a file and not an Ultralytics model YAML")
    return found[0], scale


def load(name: str, scale: str | None = None, relative_to: Path | None = None) -> tuple[dict, str, Path]:
    """Return (model dict pinned to one scale, the scale, the YAML path) for base ``name``.

    The scale is ``scale`` if given, else the one in the name (``yolo11s.yaml`` -> s), else the file's first.

    Raises:
        UserError: unknown model, unreadable YAML, or a scale the file does not define.
    """
    path, implied = resolve(name, relative_to)
    try:
        d = read_yaml(path)
    except UserError as e:
        raise UserError(f"cannot read base model: {e}") from e
    rows_ok = isinstance(d, dict) and all(
        isinstance(d.get(part), list)
        and all(isinstance(r, list) and len(r) == 4 and isinstance(r[3], list) for r in d[part])
        for part in ("backbone", "head")
    )
    if not rows_ok:
        raise UserError(
            f"base model {path} is not an Ultralytics model YAML (backbone and head of [from, n, module, args] rows)"
        )
    scales = d.get("scales") or {}
    scale = scale or implied or (next(iter(scales)) if scales else "")
    if scales:
        if scale not in scales:
            raise UserError(f"base model {path} has no scale {scale!r} (it has {', '.join(scales)})")
        d["scales"] = {scale: scales[scale]}
    d["scale"] = scale
    return d, scale, path
