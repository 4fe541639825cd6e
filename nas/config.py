"""Study presets (``studies/*.yaml``): loaded and validated once, with errors naming the file and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import studies

from .data.datasets import Dataset, local_dataset, synthetic_dataset
from .data.synthetic import SyntheticSpec
from .errors import ConfigError, UserError
from .space import SearchSpace, load_space

STUDIES_DIR = Path(studies.__file__).parent
SCALES = ("n", "s", "m", "l", "x")


@dataclass(frozen=True)
class StudyConfig:
    """A validated preset: the space, the dataset and the deployment image size."""

    name: str
    path: Path
    description: str
    space: SearchSpace
    dataset: Dataset
    imgsz: int
    raw: dict = field(repr=False)


def resolve_preset(name_or_path: str) -> Path:
    """Return the preset file for a shipped name (``light``) or a path.

    Raises:
        UserError: neither a file nor a shipped preset.
    """
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p.resolve()
    shipped = STUDIES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(x.stem for x in STUDIES_DIR.glob("*.yaml")))
    raise UserError(f"unknown study preset {name_or_path!r}: not a YAML file and not one of {names}")


def _get(raw: dict, path: Path, key: str, kind: type, default: Any = None) -> Any:
    """Return ``raw[key]`` (or ``default``) checked to be a ``kind``; raise ConfigError naming the key."""
    value = raw.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ConfigError(path, key, f"expected {kind.__name__}, got {value!r}")
    return value


def _synthetic(raw: Any, path: Path) -> SyntheticSpec:
    if raw is None:
        return SyntheticSpec()
    if not isinstance(raw, dict):
        raise ConfigError(path, "synthetic", "must be a mapping")
    allowed = set(SyntheticSpec.__dataclass_fields__)
    for key, value in raw.items():
        if key not in allowed:
            raise ConfigError(path, f"synthetic.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        expected = float if key == "min_visible" else int
        if isinstance(value, bool) or not isinstance(value, (int, float) if expected is float else int) or value < 0:
            raise ConfigError(path, f"synthetic.{key}", f"expected a non-negative {expected.__name__}, got {value!r}")
    spec = SyntheticSpec(**raw)
    if spec.train_images < 1 or spec.val_images < 1 or spec.imgsz < 32 or spec.max_objects < 1:
        raise ConfigError(path, "synthetic", "needs train_images, val_images, max_objects >= 1 and imgsz >= 32")
    return spec


def load_preset(name_or_path: str, data: str | None = None) -> StudyConfig:
    """Load and validate a preset; ``data`` (a data YAML path) overrides the preset's dataset.

    Raises:
        ConfigError: invalid preset (names file and key), or an invalid space it refers to.
        UserError: missing preset, space or dataset.
    """
    path = resolve_preset(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(path, "", f"malformed YAML: {e}") from e
    except OSError as e:
        raise UserError(f"cannot read preset {path}: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "a preset must be a mapping (see README, 'Presets')")
    allowed = {"description", "space", "scale", "data", "synthetic", "imgsz"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(path, str(key), f"unknown key (allowed: {', '.join(sorted(allowed))})")
    space_name = _get(raw, path, "space", str)
    if not space_name:
        raise ConfigError(path, "space", "required: a search space name or path")
    scale = _get(raw, path, "scale", str)
    if scale is not None and scale not in SCALES:
        raise ConfigError(path, "scale", f"must be one of {', '.join(SCALES)}")
    imgsz = _get(raw, path, "imgsz", int, 640)
    if imgsz < 32 or imgsz % 32:
        raise ConfigError(path, "imgsz", f"deployment image size must be a positive multiple of 32, got {imgsz}")
    space = load_space(space_name, scale, relative_to=path.parent)
    data_key = data or _get(raw, path, "data", str, "synthetic")
    if data_key == "synthetic":
        dataset = synthetic_dataset(_synthetic(raw.get("synthetic"), path))
    else:
        try:
            dataset = local_dataset(Path(data_key) if data else path.parent / data_key)
        except UserError as e:
            raise (e if data else ConfigError(path, "data", str(e))) from e
    return StudyConfig(
        name=path.stem,
        path=path,
        description=_get(raw, path, "description", str, ""),
        space=space,
        dataset=dataset,
        imgsz=imgsz,
        raw=raw,
    )
