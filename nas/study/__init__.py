"""The Optuna study: storages, opening (fingerprint, sampler), per-trial records, the search loop, ``run_study``."""

from .loop import TrialReport, TrialRunner, completed, running
from .open import DEFAULT_STORAGE, fingerprint, load_study, make_sampler, open_study
from .run import StudyOutcome, StudyRun, run_study
from .storage import Storage, open_storage, recover_dead_trials

__all__ = [
    "DEFAULT_STORAGE",
    "Storage",
    "StudyOutcome",
    "StudyRun",
    "TrialReport",
    "TrialRunner",
    "completed",
    "fingerprint",
    "load_study",
    "make_sampler",
    "open_storage",
    "open_study",
    "recover_dead_trials",
    "run_study",
    "running",
]
