"""Study presets (``studies/*.yaml``): loaded and validated once, with errors naming the file and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import studies

from .data.datasets import Dataset, local_dataset, synthetic_dataset
from .data.synthetic import SyntheticSpec
from .errors import ConfigError, UserError, read_yaml
from .evaluate import Constraints
from .proxy import OPTIMIZERS, TRAIN_ARGS
from .space import SearchSpace, load_space

STUDIES_DIR = Path(studies.__file__).parent
SCALES = ("n", "s", "m", "l", "x")
SAMPLERS = ("tpe", "nsga2", "random")
DEFAULT_SAMPLER = "tpe"  # chosen by benchmarks/search_efficiency.py


DEFAULT_SCHEDULE = {
    "epochs": 6,
    "imgsz": 128,
    "batch": 16,
    "nbs": 16,
    "optimizer": "AdamW",
    "lr0": 0.003,
    "lrf": 0.1,
    "warmup_epochs": 1.0,
}
LATENCY_KEYS = {"runs": int, "warmup": int, "threads": int, "half": bool}


@dataclass(frozen=True)
class LatencySettings:
    """How latency is measured (see ``nas.latency``)."""

    runs: int = 20
    warmup: int = 5
    threads: int | None = None
    half: bool = False


@dataclass(frozen=True)
class StudyConfig:
    """A validated preset: space, dataset, deployment size, proxy schedule, latency protocol, constraints."""

    name: str
    path: Path
    description: str
    space: SearchSpace
    dataset: Dataset
    imgsz: int
    schedule: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SCHEDULE))
    init: str = "scratch"
    warm_epochs: int = 0  # epochs of the warm-start base (init: warm); 0 when init is scratch
    latency: LatencySettings = field(default_factory=LatencySettings)
    constraints: Constraints = field(default_factory=Constraints)
    sampler: str = DEFAULT_SAMPLER
    raw: dict = field(default_factory=dict, repr=False)


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
    """Return ``raw[key]`` (``default`` if absent or null) checked to be a ``kind``; ConfigError names the key."""
    value = raw.get(key)
    value = default if value is None else value
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
        if key == "min_visible" and value > 1:
            raise ConfigError(path, "synthetic.min_visible", f"is a fraction of the object, 0..1, got {value!r}")
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
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "a preset must be a mapping (see README, 'Presets')")
    allowed = {
        "description",
        "space",
        "scale",
        "data",
        "synthetic",
        "imgsz",
        "train",
        "init",
        "warm_epochs",
        "latency",
        "constraints",
        "sampler",
    }
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
    init = _get(raw, path, "init", str, "scratch")
    if init not in ("scratch", "warm"):
        raise ConfigError(path, "init", f"must be 'scratch' or 'warm', got {init!r}")
    schedule = _schedule(raw.get("train"), path)
    warm_epochs = _get(raw, path, "warm_epochs", int, 4 * schedule["epochs"] if init == "warm" else 0)
    if init == "warm" and warm_epochs < 1:
        raise ConfigError(path, "warm_epochs", f"must be >= 1 with init: warm, got {warm_epochs}")
    if init == "scratch" and raw.get("warm_epochs") is not None:
        raise ConfigError(path, "warm_epochs", "only applies with init: warm")
    sampler = _get(raw, path, "sampler", str, DEFAULT_SAMPLER)
    if sampler not in SAMPLERS:
        raise ConfigError(path, "sampler", f"must be one of {', '.join(SAMPLERS)}")
    return StudyConfig(
        name=path.stem,
        sampler=sampler,
        path=path,
        description=_get(raw, path, "description", str, ""),
        space=space,
        dataset=dataset,
        imgsz=imgsz,
        schedule=schedule,
        init=init,
        warm_epochs=warm_epochs,
        latency=_latency(raw.get("latency"), path),
        constraints=_constraints(raw.get("constraints"), path),
        raw=raw,
    )


def _typed(value: Any, kind: type) -> bool:
    """Return True if ``value`` is a ``kind`` (ints accepted for floats; bools only for bool)."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _schedule(raw: Any, path: Path) -> dict[str, Any]:
    """Validate the ``train:`` section (Ultralytics train arguments) and return the full schedule."""
    if raw is None:
        return dict(DEFAULT_SCHEDULE)
    if not isinstance(raw, dict):
        raise ConfigError(path, "train", "must be a mapping of Ultralytics train arguments")
    for key, value in raw.items():
        kind = TRAIN_ARGS.get(key)
        if kind is None:
            raise ConfigError(path, f"train.{key}", f"not a proxy-schedule argument (allowed: {', '.join(TRAIN_ARGS)})")
        if not _typed(value, kind):
            raise ConfigError(path, f"train.{key}", f"expected {kind.__name__}, got {value!r}")
        if kind in (int, float) and value < 0:
            raise ConfigError(path, f"train.{key}", f"must not be negative, got {value!r}")
    schedule = {**DEFAULT_SCHEDULE, **raw}
    if schedule["epochs"] < 1:
        raise ConfigError(path, "train.epochs", "must be at least 1")
    if schedule["imgsz"] < 32 or schedule["imgsz"] % 32:
        raise ConfigError(path, "train.imgsz", "must be a positive multiple of 32")
    if schedule["batch"] < 1:
        raise ConfigError(path, "train.batch", "must be at least 1")
    if schedule.get("nbs", 64) < 1:
        raise ConfigError(path, "train.nbs", "must be at least 1")
    if not 0 < float(schedule.get("fraction", 1.0)) <= 1:
        raise ConfigError(path, "train.fraction", "must be in (0, 1]")
    if schedule["optimizer"] not in OPTIMIZERS:
        raise ConfigError(path, "train.optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
    return schedule


def _latency(raw: Any, path: Path) -> LatencySettings:
    """Validate the ``latency:`` section."""
    if raw is None:
        return LatencySettings()
    if not isinstance(raw, dict):
        raise ConfigError(path, "latency", "must be a mapping (runs, warmup, threads, half)")
    for key, value in raw.items():
        kind = LATENCY_KEYS.get(key)
        if kind is None:
            raise ConfigError(path, f"latency.{key}", f"unknown key (allowed: {', '.join(LATENCY_KEYS)})")
        if not _typed(value, kind) or (kind is int and value < 1):
            raise ConfigError(path, f"latency.{key}", f"expected a positive {kind.__name__}, got {value!r}")
    return LatencySettings(**raw)


def _constraints(raw: Any, path: Path) -> Constraints:
    """Validate the ``constraints:`` section (max_gflops, max_params, max_latency_ms)."""
    if raw is None:
        return Constraints()
    if not isinstance(raw, dict):
        raise ConfigError(path, "constraints", "must be a mapping (max_gflops, max_params, max_latency_ms)")
    for key, value in raw.items():
        if key not in Constraints.__dataclass_fields__:
            raise ConfigError(path, f"constraints.{key}", "unknown constraint (max_gflops, max_params, max_latency_ms)")
        if value is not None and (not _typed(value, float) or value <= 0):
            raise ConfigError(path, f"constraints.{key}", f"expected a positive number, got {value!r}")
    return Constraints(**raw)
