"""Study presets (``studies/*.yaml``): loaded and validated once, with errors naming the file and the key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import studies

from .data.datasets import Dataset, local_dataset, synthetic_dataset
from .data.synthetic import SyntheticSpec
from .errors import ConfigError, UserError, read_yaml
from .settings import DEFAULT_SCHEDULE, LATENCY_BACKENDS, OPTIMIZERS, TRAIN_ARGS, Constraints, LatencySettings
from .space import SPACES_DIR, SearchSpace, load_space

STUDIES_DIR = Path(studies.__file__).parent
SCALES = ("n", "s", "m", "l", "x")
SAMPLERS = ("tpe", "nsga2", "random")
INITS = ("scratch", "warm", "supernet")  # how a candidate's weights start (see README, 'Presets')
SUPERNET_KERNELS = ("separate", "shared")  # Conv2Former kernels in the supernet: own weights, or one's centre crop
# how the supernet's training picks paths: one uniform path per batch (SPOS), or every operator of every point once
# per batch, their losses averaged (FairNAS's strict fairness)
SUPERNET_SAMPLINGS = ("uniform", "fair")
DEFAULT_SAMPLER = "tpe"  # chosen by benchmarks/search_efficiency.py
VERIFY_EPOCHS = 16  # `verify:` default length: the from-scratch reference of benchmarks/proxy_fidelity.py
PRESET_KEYS = (
    "description",
    "space",
    "scale",
    "data",
    "synthetic",
    "imgsz",
    "train",
    "verify",
    "init",
    "warm_epochs",
    "supernet_epochs",
    "supernet_kernels",
    "supernet_sampling",
    "latency",
    "constraints",
    "sampler",
)


@dataclass(frozen=True)
class StudyConfig:
    """A validated preset: space, dataset, deployment size, proxy schedule, init, latency protocol, constraints."""

    name: str
    path: Path
    description: str
    space: SearchSpace
    dataset: Dataset
    imgsz: int
    schedule: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SCHEDULE))
    # `nas.verify`: the from-scratch schedule of the front's verification (default: the proxy's, 16 epochs)
    verify_schedule: dict[str, Any] = field(default_factory=lambda: {**DEFAULT_SCHEDULE, "epochs": VERIFY_EPOCHS})
    init: str = "scratch"
    warm_epochs: int = 0  # epochs of the warm-start base (init: warm); 0 otherwise
    supernet_epochs: int = 0  # epochs of the weight-sharing supernet (init: supernet); 0 otherwise
    supernet_kernels: str = "separate"  # the supernet's Conv2Former kernels (init: supernet): separate or shared
    supernet_sampling: str = "uniform"  # how the supernet's training picks paths (init: supernet): uniform or fair
    latency: LatencySettings = field(default_factory=LatencySettings)
    constraints: Constraints = field(default_factory=Constraints)
    sampler: str = DEFAULT_SAMPLER
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Key:
    """What one key of a preset section accepts: a type, and optional inclusive bounds or allowed values."""

    kind: type
    low: float | None = None
    high: float | None = None
    above: float | None = None  # exclusive lower bound
    choices: tuple[str, ...] | None = None
    multiple_of: int | None = None


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


def _typed(value: Any, kind: type) -> bool:
    """Return True if ``value`` is a ``kind`` (ints accepted for floats; bools only for bool)."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _check(path: Path, name: str, value: Any, key: Key) -> Any:
    """Return ``value`` if it satisfies ``key``; raise ConfigError naming the file and ``name`` otherwise."""
    if not _typed(value, key.kind):
        raise ConfigError(path, name, f"expected {key.kind.__name__}, got {value!r}")
    if key.choices is not None and value not in key.choices:
        raise ConfigError(path, name, f"must be one of {', '.join(key.choices)}, got {value!r}")
    if key.low is not None and value < key.low:
        raise ConfigError(path, name, f"must be at least {key.low}, got {value!r}")
    if key.high is not None and value > key.high:
        raise ConfigError(path, name, f"must be at most {key.high}, got {value!r}")
    if key.above is not None and value <= key.above:
        raise ConfigError(path, name, f"must be greater than {key.above}, got {value!r}")
    if key.multiple_of is not None and value % key.multiple_of:
        raise ConfigError(path, name, f"must be a multiple of {key.multiple_of}, got {value!r}")
    return value


def _section(raw: Any, path: Path, section: str, keys: Mapping[str, Key]) -> dict[str, Any]:
    """Return a preset section (a mapping) with every key known and valid; null values are left out.

    Raises:
        ConfigError: not a mapping, an unknown key, or a bad value (names ``section.key``).
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(path, section, f"must be a mapping (keys: {', '.join(keys)})")
    out = {}
    for name, value in raw.items():
        if name not in keys:
            raise ConfigError(path, f"{section}.{name}", f"unknown key (allowed: {', '.join(keys)})")
        if value is not None:
            out[name] = _check(path, f"{section}.{name}", value, keys[name])
    return out


def _get(raw: dict, path: Path, name: str, key: Key, default: Any = None) -> Any:
    """Return the top-level ``raw[name]`` checked against ``key``; ``default`` if absent or null."""
    value = raw.get(name)
    return default if value is None else _check(path, name, value, key)


TRAIN_KEYS = {
    **{name: Key(kind, low=0) if kind in (int, float) else Key(kind) for name, kind in TRAIN_ARGS.items()},
    "epochs": Key(int, low=0),  # 0 only with init: supernet (checked in load_preset)
    "batch": Key(int, low=1),
    "nbs": Key(int, low=1),
    "imgsz": Key(int, low=32, multiple_of=32),
    "fraction": Key(float, above=0, high=1),
    "optimizer": Key(str, choices=OPTIMIZERS),
}
LATENCY_KEYS = {
    "runs": Key(int, low=1),
    "warmup": Key(int, low=1),
    "threads": Key(int, low=1),
    "half": Key(bool),
    "backend": Key(str, choices=LATENCY_BACKENDS),
    "max_spread": Key(float, above=0),
}
CONSTRAINT_KEYS = {name: Key(float, above=0) for name in ("max_gflops", "max_params", "max_latency_ms")}
SYNTHETIC_KEYS = {
    **{name: Key(int, low=0) for name in SyntheticSpec.__dataclass_fields__},
    "train_images": Key(int, low=1),
    "val_images": Key(int, low=1),
    "max_objects": Key(int, low=1),
    "imgsz": Key(int, low=32),
    "min_visible": Key(float, low=0, high=1),
}


def load_preset(name_or_path: str, data: str | None = None, space: str | None = None) -> StudyConfig:
    """Load and validate a preset; ``data`` (a data YAML path) overrides the preset's dataset and ``space`` (a
    shipped space name or a path, resolved like the preset's ``space:`` but relative to the working directory)
    overrides its search space, at the preset's ``scale:``.

    Returns:
        The validated preset. With ``space``, its ``raw`` names that space, so a study stores the space it used.

    Raises:
        ConfigError: invalid preset (names file and key), or an invalid space it refers to.
        UserError: missing preset, space or dataset; an unknown ``space`` (the message starts ``--space``).
    """
    path = resolve_preset(name_or_path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "a preset must be a mapping (see README, 'Presets')")
    for key in raw:
        if key not in PRESET_KEYS:
            raise ConfigError(path, str(key), f"unknown key (allowed: {', '.join(sorted(PRESET_KEYS))})")
    space_name = _get(raw, path, "space", Key(str))
    if not space_name:
        raise ConfigError(path, "space", "required: a search space name or path")
    scale = _get(raw, path, "scale", Key(str, choices=SCALES))
    imgsz = _get(raw, path, "imgsz", Key(int, low=32, multiple_of=32), 640)
    if space is not None:
        space_cfg = _override_space(space, scale)
        shipped = space_cfg.path == (SPACES_DIR / f"{space}.yaml").resolve()
        raw = {**raw, "space": space if shipped else str(space_cfg.path)}  # the stored preset names what ran
    else:
        try:
            space_cfg = load_space(space_name, scale, relative_to=path.parent)
        except ConfigError:
            raise  # names the space file and its key
        except UserError as e:
            raise ConfigError(path, "space", str(e)) from e
    data_key = data or _get(raw, path, "data", Key(str), "synthetic")
    if data_key == "synthetic":
        dataset = synthetic_dataset(SyntheticSpec(**_section(raw.get("synthetic"), path, "synthetic", SYNTHETIC_KEYS)))
    else:
        try:
            dataset = local_dataset(Path(data_key) if data else path.parent / data_key)
        except UserError as e:
            raise (e if data else ConfigError(path, "data", str(e))) from e
    init = _get(raw, path, "init", Key(str, choices=INITS), "scratch")
    schedule = {**DEFAULT_SCHEDULE, **_section(raw.get("train"), path, "train", TRAIN_KEYS)}
    if schedule["epochs"] == 0 and init != "supernet":
        raise ConfigError(path, "train.epochs", "must be at least 1 (0 validates inherited weights: init: supernet)")
    verify_schedule = {**schedule, "epochs": VERIFY_EPOCHS, **_section(raw.get("verify"), path, "verify", TRAIN_KEYS)}
    if verify_schedule["epochs"] < 1:
        raise ConfigError(path, "verify.epochs", "must be at least 1")
    base_epochs = {}
    for mode in ("warm", "supernet"):
        key = f"{mode}_epochs"
        if init != mode and raw.get(key) is not None:
            raise ConfigError(path, key, f"only applies with init: {mode}")
        default = 4 * max(schedule["epochs"], 1) if init == mode else 0
        base_epochs[key] = _get(raw, path, key, Key(int, low=1), default)
    for key in ("supernet_kernels", "supernet_sampling"):
        if init != "supernet" and raw.get(key) is not None:
            raise ConfigError(path, key, "only applies with init: supernet")
    kernels = _get(raw, path, "supernet_kernels", Key(str, choices=SUPERNET_KERNELS), "separate")
    sampling = _get(raw, path, "supernet_sampling", Key(str, choices=SUPERNET_SAMPLINGS), "uniform")
    return StudyConfig(
        name=path.stem,
        path=path,
        description=_get(raw, path, "description", Key(str), ""),
        space=space_cfg,
        dataset=dataset,
        imgsz=imgsz,
        schedule=schedule,
        verify_schedule=verify_schedule,
        init=init,
        **base_epochs,
        supernet_kernels=kernels,
        supernet_sampling=sampling,
        latency=LatencySettings(**_section(raw.get("latency"), path, "latency", LATENCY_KEYS)),
        constraints=Constraints(**_section(raw.get("constraints"), path, "constraints", CONSTRAINT_KEYS)),
        sampler=_get(raw, path, "sampler", Key(str, choices=SAMPLERS), DEFAULT_SAMPLER),
        raw=raw,
    )


def _override_space(name_or_path: str, scale: str | None) -> SearchSpace:
    """Return the space ``--space`` names (a shipped name or a path) at the preset's ``scale``.

    Raises:
        ConfigError: the space file is invalid (names the file and its key).
        UserError: no such space or base model; the message starts with ``--space``.
    """
    try:
        return load_space(name_or_path, scale)
    except ConfigError:
        raise
    except UserError as e:
        raise UserError(f"--space: {e}") from e
