"""Opening a study: the storage default, the fingerprint that keeps trials comparable, the sampler, and loading a
stored study for the readers (export, report)."""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

import optuna
import yaml
from optuna.exceptions import ExperimentalWarning

from ..config import SAMPLERS, StudyConfig
from ..errors import UserError
from ..objectives import DIRECTIONS, NAMES
from ..space import SPACES_DIR
from .storage import Storage, open_storage

DEFAULT_STORAGE_FILE = "nas_studies.db"
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_STORAGE_FILE}"


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """Return the sampler ``name`` (tpe: multivariate TPE with grouping, for conditional kernels; nsga2; random).

    Raises:
        UserError: unknown sampler name.
    """
    if name == "tpe":
        with warnings.catch_warnings():  # multivariate/group are experimental flags, stable in practice
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=20, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r} (one of {', '.join(SAMPLERS)})")


def fingerprint(cfg: StudyConfig, runtime: dict[str, Any] | None = None) -> str:
    """Return a hash of what makes trial values comparable: space, scale, dataset, sizes, schedule, init, plus
    ``runtime`` (the device the latency objective is measured on, the initial weights)."""
    blob = {
        "runtime": runtime or {},
        "space": cfg.space.path.read_text(),
        "scale": cfg.space.scale,
        "dataset": cfg.dataset.description,
        "imgsz": cfg.imgsz,
        "schedule": cfg.schedule,
        "init": cfg.init,
        "latency": cfg.latency.__dict__,
        "constraints": cfg.constraints.__dict__,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def open_study(
    cfg: StudyConfig, storage: Storage, study_name: str, runtime: dict[str, Any] | None = None
) -> optuna.Study:
    """Create or resume ``study_name`` in ``storage`` for ``cfg`` (set ``study.sampler`` before running trials).

    ``runtime`` (device name, initial weights) joins the fingerprint: resuming on another device or from other
    weights would mix incomparable latencies and accuracies, so it is refused like a changed schedule.

    Raises:
        UserError: the storage cannot be opened, or the stored study was made with a different space,
            dataset or schedule (resuming would mix incomparable trials).
    """
    try:
        study = optuna.create_study(
            study_name=study_name, storage=storage.backend, directions=list(DIRECTIONS), load_if_exists=True
        )
    except Exception as e:  # SQLAlchemy/Optuna raise many types for a bad URL, a corrupt file, no server
        raise UserError(f"cannot open storage {storage.url}: {str(e).splitlines()[0]}") from e
    fp = fingerprint(cfg, runtime)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # set_metric_names: stable in practice
            study.set_metric_names(list(NAMES))
        attrs = {
            "fingerprint": fp,
            "preset": yaml.safe_dump(cfg.raw, sort_keys=False),
            "preset_path": str(cfg.path),
            "space": cfg.space.path.read_text(),
            "space_name": cfg.space.name,
            "base_model": cfg.space.identity,
            "dataset": cfg.dataset.description,
            "nc": cfg.dataset.nc,
            "schedule": cfg.schedule,
            "imgsz": cfg.imgsz,
            "runtime": runtime or {},
        }
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    elif stored != fp:
        _check_same_space(study, cfg, storage.url)
        raise UserError(
            f"study {study_name!r} in {storage.url} was created with a different space, dataset, schedule, device or "
            "initial weights; choose a new study name with --study-name (or another --storage)"
        )
    return study


def _check_same_space(study: optuna.Study, cfg: StudyConfig, url: str) -> None:
    """Refuse to resume ``study`` with another search space than the one it stores (name, file text, base model).

    Raises:
        UserError: the spaces differ; the message names both and the ``--space`` that resumes the study.
    """
    attrs = study.user_attrs
    stored = (attrs.get("space_name"), attrs.get("base_model"), attrs.get("space"))
    if None in stored or stored == (cfg.space.name, cfg.space.identity, cfg.space.path.read_text()):
        return
    name, base, _ = stored
    if (name, base) == (cfg.space.name, cfg.space.identity):
        raise UserError(
            f"study {study.study_name!r} in {url} was created with a different space: {name} over {base} has been "
            "edited since; choose a new study name with --study-name"
        )
    how = f"--space {name}" if (SPACES_DIR / f"{name}.yaml").is_file() else "its space file"
    raise UserError(
        f"study {study.study_name!r} in {url} was created with a different space ({name} over {base}) than this "
        f"run's ({cfg.space.name} over {cfg.space.identity}); resume it with {how}, or choose a new study name with "
        "--study-name"
    )


def load_study(url: str, name: str) -> optuna.Study:
    """Return the stored study ``name`` for reading (never creates a database).

    Raises:
        UserError: the storage cannot be opened or holds no such study.
    """
    backend = open_storage(url, worker=False).backend
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(backend)]
    except Exception as e:
        raise UserError(f"cannot open storage {url}: {str(e).splitlines()[0]}") from e
    if name not in names:
        raise UserError(f"no study {name!r} in {url} (studies: {', '.join(names) or 'none'})")
    return optuna.load_study(study_name=name, storage=backend)
