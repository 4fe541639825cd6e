"""The Optuna study: storage, objectives, sampler, per-trial records, dedup and the search loop.

Objectives, in order: mAP50-95 (maximize), GFLOPs (minimize), latency in ms (minimize). Constraints from the
preset go through ``trial.set_constraint``; a candidate that violates one is recorded with its cost and
latency, mAP50-95 0.0 and ``trained = False``, and is never trained.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from .architecture import Architecture
from .config import SAMPLERS, StudyConfig
from .errors import UserError
from .evaluate import EvalSettings, Evaluation, evaluate
from .storage import Heartbeat, Storage, recover_dead_trials

DEFAULT_STORAGE_FILE = "nas_studies.db"
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_STORAGE_FILE}"
METRIC_NAMES = ["mAP50-95", "GFLOPs", "latency_ms"]
DIRECTIONS = ["maximize", "minimize", "minimize"]
MAX_CONSECUTIVE_FAILURES = 20
TWIN_POLL_S = 2.0
TWIN_MAX_WAIT_S = 3600.0
TAIL_POLL_S = 5.0

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=ExperimentalWarning)  # set_metric_names is stable in practice


def versions() -> dict[str, str | None]:
    """Return the versions of the packages whose behaviour affects a trial's numbers."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "ultralytics", "ultralytics-thop", "optuna"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """Return the sampler ``name`` (tpe: multivariate TPE with grouping, for conditional kernels; nsga2; random).

    Raises:
        UserError: unknown sampler name.
    """
    if name == "tpe":
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
            study_name=study_name, storage=storage.backend, directions=DIRECTIONS, load_if_exists=True
        )
    except Exception as e:  # SQLAlchemy/Optuna raise many types for a bad URL, a corrupt file, no server
        raise UserError(f"cannot open storage {storage.url}: {str(e).splitlines()[0]}") from e
    fp = fingerprint(cfg, runtime)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_metric_names(METRIC_NAMES)
        study.set_user_attr("fingerprint", fp)
        study.set_user_attr("preset", yaml.safe_dump(cfg.raw, sort_keys=False))
        study.set_user_attr("preset_path", str(cfg.path))
        study.set_user_attr("space", cfg.space.path.read_text())
        study.set_user_attr("space_name", cfg.space.name)
        study.set_user_attr("base_model", cfg.space.identity)
        study.set_user_attr("dataset", cfg.dataset.description)
        study.set_user_attr("nc", cfg.dataset.nc)
        study.set_user_attr("schedule", cfg.schedule)
        study.set_user_attr("imgsz", cfg.imgsz)
        study.set_user_attr("runtime", runtime or {})
    elif stored != fp:
        raise UserError(
            f"study {study_name!r} in {storage.url} was created with a different space, dataset, schedule, device or "
            "initial weights; "
            "choose a new study name with --study-name (or another --storage)"
        )
    return study


def completed(study: optuna.Study) -> list[FrozenTrial]:
    """Return the study's COMPLETE trials."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Return the feasible, trained trials on the Pareto front of the three objectives."""
    trials = [
        t
        for t in completed(study)
        if t.user_attrs.get("trained") and t.user_attrs.get("feasible", True) and "dedup_of" not in t.user_attrs
    ]
    return [t for t in trials if not any(_dominates(o.values, t.values) for o in trials if o is not t)]


def _dominates(a: list[float], b: list[float]) -> bool:
    """Return True if ``a`` is at least as good as ``b`` in every objective and better in one."""
    signs = [1 if d == "maximize" else -1 for d in DIRECTIONS]
    ge = all(s * x >= s * y for s, x, y in zip(signs, a, b, strict=True))
    return ge and any(s * x > s * y for s, x, y in zip(signs, a, b, strict=True))


@dataclass
class TrialReport:
    """What one finished trial reports to the progress display."""

    number: int
    summary: str
    values: list[float] | None
    seconds: float
    front: int
    status: str


def _record(trial: optuna.Trial, arch: Architecture, cfg: StudyConfig, settings: EvalSettings, ev: Evaluation) -> None:
    """Store everything about an evaluated trial as user attributes (``run_one`` adds the phase times)."""
    attrs: dict[str, Any] = {
        "key": arch.key,
        "summary": arch.summary(),
        "architecture": arch.as_dict(),
        "operators": arch.operators(),
        "model_yaml": arch.to_yaml(cfg.dataset.nc),
        "imgsz": settings.imgsz,
        "train_imgsz": settings.schedule["imgsz"],
        "device": settings.device,
        "versions": versions(),
        "trained": ev.proxy is not None,
        "feasible": ev.feasible,
        "init_weights": str(settings.weights) if settings.weights else None,
    }
    if ev.cost:
        attrs.update(params=ev.cost.params, gflops=ev.cost.gflops)
    if ev.latency:
        attrs.update(latency=ev.latency.as_dict(), latency_ms=ev.latency.median_ms)
    if ev.proxy:
        attrs.update(map50=ev.proxy.map50, map50_95=ev.proxy.map50_95, epochs=ev.proxy.epochs)
    if ev.violations:
        attrs["violations"] = ev.violations
    if ev.error:
        attrs["fail_reason"] = ev.error
    for k, v in attrs.items():
        trial.set_user_attr(k, v)


def _find_duplicate(study: optuna.Study, key: str) -> FrozenTrial | None:
    """Return a COMPLETE trial of this study with architecture ``key`` (same schedule: the study pins it)."""
    return next((t for t in completed(study) if t.user_attrs.get("key") == key), None)


def _running(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def _wait_for_twin(study: optuna.Study, storage: Storage, number: int, key: str) -> FrozenTrial | None:
    """Wait while another worker's earlier RUNNING trial has architecture ``key``; return it if it completed.

    Workers sharing a study draw the same architecture now and then; the later trial reuses the earlier one's
    result instead of training it twice. Dead workers' trials are failed meanwhile (RDB heartbeats); a twin
    that never finishes (a dead journal worker) is given up after TWIN_MAX_WAIT_S and the trial trains itself.
    """
    deadline = time.monotonic() + TWIN_MAX_WAIT_S
    while time.monotonic() < deadline:
        twin = next((t for t in _running(study) if t.number < number and t.user_attrs.get("key") == key), None)
        if twin is None:
            break
        time.sleep(TWIN_POLL_S)
        recover_dead_trials(study, storage)
    return _find_duplicate(study, key)


def run_one(
    study: optuna.Study,
    cfg: StudyConfig,
    settings: EvalSettings,
    storage: Storage,
    data_yaml: Path,
    seed: int,
    total: int,
) -> TrialReport | None:
    """Ask for one trial, evaluate (or reuse) its architecture, tell the result; return its report.

    Returns None, telling the trial failed as surplus, when other workers' running trials already make up the
    ``total`` wanted (workers asked at the same moment).
    """
    t0 = time.perf_counter()
    trial = study.ask()
    try:
        with Heartbeat(storage, trial._trial_id):
            ahead = [t for t in _running(study) if t.number < trial.number]
            if len(completed(study)) + len(ahead) >= total:
                trial.set_user_attr("fail_reason", "surplus: other workers were already running the last trials")
                study.tell(trial, state=TrialState.FAIL)
                return None
            arch = cfg.space.sample(trial)
            trial.set_user_attr("key", arch.key)  # visible to other workers at once, for _wait_for_twin
            return _evaluate_and_tell(study, trial, arch, cfg, settings, storage, data_yaml, seed, t0)
    except (UpdateFinishedTrialError, ValueError) as e:
        if storage.backend.get_trial(trial._trial_id).state.is_finished():
            # another worker failed it as stale (our heartbeats did not reach the database); its retry is queued
            return TrialReport(trial.number, "-", None, time.perf_counter() - t0, len(pareto_front(study)),
                               "lost: failed as stale by another worker, queued again")  # fmt: skip
        _fail(study, trial, f"{type(e).__name__}: {e}")
        raise
    except BaseException as e:  # Ctrl-C, a storage error, bad input: never leave the trial RUNNING
        _fail(study, trial, "interrupted (SIGINT)" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}")
        raise


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Tell ``trial`` failed with ``reason``, unless it is finished already (best effort: the storage may be down)."""
    with contextlib.suppress(Exception):
        trial.set_user_attr("fail_reason", reason)
    with contextlib.suppress(Exception):
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)


def _evaluate_and_tell(
    study: optuna.Study,
    trial: optuna.Trial,
    arch: Architecture,
    cfg: StudyConfig,
    settings: EvalSettings,
    storage: Storage,
    data_yaml: Path,
    seed: int,
    t0: float,
) -> TrialReport:
    duplicate = _wait_for_twin(study, storage, trial.number, arch.key)
    if duplicate is not None:
        for k, v in duplicate.user_attrs.items():
            if k not in ("phases", "dedup_of"):
                trial.set_user_attr(k, v)
        trial.set_user_attr("dedup_of", duplicate.number)
        trial.set_user_attr("phases", {})
        for name, value in _constraints(duplicate).items():
            trial.set_constraint(name, value)
        study.tell(trial, duplicate.values)
        return TrialReport(
            trial.number,
            f"{arch.summary()} (= #{duplicate.number})",
            duplicate.values,
            time.perf_counter() - t0,
            len(pareto_front(study)),
            "dedup",
        )
    ev = evaluate(arch, cfg.dataset.nc, data_yaml, settings, seed + trial.number, f"trial_{trial.number}")
    t_store = time.perf_counter()
    _record(trial, arch, cfg, settings, ev)
    for name, value in ev.violations.items():
        trial.set_constraint(name, value)
    phases = {k: round(v, 4) for k, v in ev.phases.items()}
    trial.set_user_attr("phases", {**phases, "storage_s": round(time.perf_counter() - t_store, 4)})
    if ev.error:
        values, status = None, f"failed: {ev.error}"
        study.tell(trial, state=TrialState.FAIL)
    else:
        values = [ev.proxy.map50_95 if ev.proxy else 0.0, ev.cost.gflops, ev.latency.median_ms]
        status = "ok" if ev.proxy else "infeasible (not trained)"
        study.tell(trial, values)
    return TrialReport(trial.number, arch.summary(), values, time.perf_counter() - t0, len(pareto_front(study)), status)


def _constraints(t: FrozenTrial) -> dict[str, float]:
    """Return a trial's constraint values by name (as recorded in its ``violations`` attribute)."""
    return dict(t.user_attrs.get("violations") or {})


def search(
    study: optuna.Study,
    cfg: StudyConfig,
    settings: EvalSettings,
    storage: Storage,
    trials: int,
    seed: int,
    on_trial: Callable[[TrialReport, int, int], None] | None = None,
) -> int:
    """Run trials until the study has ``trials`` COMPLETE ones (counting other workers' running ones); return
    how many this call ran.

    Raises:
        UserError: too many consecutive candidate failures (something is wrong beyond one candidate).
    """
    data_yaml = cfg.dataset.data_yaml()
    ran, failures = 0, 0
    while True:
        recover_dead_trials(study, storage)
        done, running = len(completed(study)), len(_running(study))
        if done >= trials:
            return ran
        if done + running >= trials:
            if not storage.heartbeats:
                return ran  # SQLite: nobody else runs; journal: a dead worker's trial needs --fail-running
            # other workers run the last trials; stay until they complete, or go stale and are queued again
            time.sleep(TAIL_POLL_S)
            continue
        report = run_one(study, cfg, settings, storage, data_yaml, seed, trials)
        if report is None:
            continue
        ran += 1
        failures = failures + 1 if report.values is None else 0
        if on_trial:
            on_trial(report, len(completed(study)), trials)
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise UserError(f"{failures} consecutive trials failed; last: {report.status}")


def format_values(values: list[float] | None) -> str:
    """Return 'mAP50-95 0.123 | 6.51 GFLOPs | 12.3 ms' (or '-' for a failed trial)."""
    if values is None:
        return "-"
    m, g, lat = values
    return f"mAP50-95 {m:.3f} | {g:6.2f} GFLOPs | {lat:7.1f} ms"


def eta(seconds_per_trial: float, remaining: int) -> str:
    """Return an h:mm:ss estimate for ``remaining`` trials."""
    s = int(max(0.0, seconds_per_trial * remaining))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """``on_trial`` callback: one stderr line per finished trial with a bar over trials and an ETA."""

    def __init__(self, width: int = 24) -> None:
        self.started = time.perf_counter()
        self.finished = 0
        self.width = width

    def __call__(self, r: TrialReport, done: int, total: int) -> None:
        """Print the line for trial ``r``; ``done`` of ``total`` complete trials exist now."""
        self.finished += 1
        per_trial = (time.perf_counter() - self.started) / self.finished
        filled = math.floor(self.width * min(done, total) / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        print(
            f"[{bar}] {done}/{total} ETA {eta(per_trial, total - done)} | #{r.number:<4} {r.summary[:60]:<60} | "
            f"{format_values(r.values)} | {r.seconds:6.1f}s | front {r.front} | {r.status}",
            file=sys.stderr,
            flush=True,
        )
