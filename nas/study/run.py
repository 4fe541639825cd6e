"""``run_study``: the library entry point that opens or resumes a study and runs it to its trial total."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from ..config import StudyConfig
from ..errors import UserError
from ..measure import Runtime, warm_start_weights
from ..measure.phase_progress import PhaseProgress
from ..measure.supernet import train_supernet
from ..objectives import pareto_front
from .loop import TrialReport, TrialRunner
from .open import make_sampler, open_study
from .queries import completed
from .records import runtime_record
from .storage import Storage, recover_dead_trials


@dataclass(frozen=True)
class StudyRun:
    """How to run a preset's study, beyond the preset itself (the ``nas.search`` flags)."""

    trials: int  # the study's total of COMPLETE trials, across workers
    study_name: str | None = None  # default: the preset's name
    device: str = "cpu"
    seed: int = 0  # sampler seed; trial n trains with seed + n
    sampler: str | None = None  # default: the preset's
    weights: Path | None = None  # a local checkpoint every trial inherits from (instead of init: warm)
    run_dir: Path = Path("nas_runs")
    keep_runs: bool = False
    fail_running: bool = False  # fail and retry every RUNNING trial first (a dead journal worker's)


@dataclass(frozen=True)
class StudyOutcome:
    """What a run leaves: the study, how many trials this call ran, and the Pareto front now."""

    study: optuna.Study
    ran: int
    front: list[FrozenTrial]


def run_study(
    cfg: StudyConfig,
    storage: Storage,
    run: StudyRun,
    on_trial: Callable[[TrialReport, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    on_phase: PhaseProgress | None = None,
) -> StudyOutcome:
    """Open or resume the study of ``cfg`` in ``storage`` and run it until it has ``run.trials`` complete trials.

    ``on_trial(report, complete, total)`` follows each finished trial; ``log`` receives one-line messages
    (recovered trials, the warm start, where the study stands); ``on_phase(phase, epochs done, epochs total)``
    follows the one-off trainings (the warm base, the supernet) epoch by epoch.

    Raises:
        UserError: the stored study is incompatible, the warm start failed, or candidates keep failing.
    """
    say = log or (lambda _msg: None)
    study_name = run.study_name or cfg.name
    study = open_study(cfg, storage, study_name, runtime_record(cfg, run.device, run.weights))
    dead = recover_dead_trials(study, storage, all_running=run.fail_running)
    if dead:
        say(f"trial(s) {', '.join(f'#{n}' for n in dead)} of a dead worker: marked failed, queued again")
    # offset the seed by the trials already stored: a resumed study must not replay the same random stream; on a
    # shared storage also by the process id, or workers started together would all draw the same architectures
    stored = len(study.get_trials(deepcopy=False))
    offset = stored + (0 if storage.exclusive else os.getpid())
    study.sampler = make_sampler(run.sampler or cfg.sampler, (run.seed + offset) % 2**32)
    if stored == 0:  # a new study: trial 0 is the stock model, the reference every candidate is compared with
        _enqueue_reference(study, cfg, say)
    run_root = run.run_dir / study_name
    weights, supernet = run.weights, None
    if weights is None and cfg.init == "warm":
        weights = warm_start_weights(cfg, run_root, run.device, run.seed, log=say, progress=on_phase)
    if cfg.init == "supernet":
        if weights is not None:
            raise UserError("--weights does not apply with init: supernet (every trial inherits from the supernet)")
        supernet = train_supernet(cfg, run_root, run.device, run.seed, log=say, progress=on_phase)
    runtime = Runtime(run.device, run_root, run.keep_runs, weights, supernet)
    say(
        f"study {study_name} in {storage.url}: {len(completed(study))}/{run.trials} complete trials; "
        f"space {cfg.space.name} ({cfg.space.size():,} architectures), device {run.device}"
    )
    ran = TrialRunner(study, cfg, runtime, storage, run.seed, run.trials).run(on_trial)
    return StudyOutcome(study, ran, pareto_front(study))


def _enqueue_reference(study: optuna.Study, cfg: StudyConfig, say: Callable[[str], None]) -> None:
    """Queue the unmodified base model as the study's first trial, flagged ``reference`` (if the space holds it)."""
    stock = cfg.space.stock_params()
    if stock is None:
        say("the unmodified base model is not in this space (a point leaves out its stock layer): no reference trial")
        return
    study.enqueue_trial(stock, user_attrs={"reference": True})
