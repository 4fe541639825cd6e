"""The Optuna study: storages, opening (fingerprint, sampler), per-trial records, the search loop and ``run_study``,
the library entry point.

What readers of a stored study need (``load_study``, ``open_storage``, ``completed``) is imported at once; the
search loop and ``run_study`` (which bring the training code) only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from .open import DEFAULT_STORAGE, fingerprint, load_study, make_sampler, open_study
from .queries import completed, running
from .storage import Storage, open_storage, recover_dead_trials

_LAZY = {
    "StudyRun": "run",
    "StudyOutcome": "run",
    "run_study": "run",
    "TrialRunner": "loop",
    "TrialReport": "loop",
}

__all__ = [
    "DEFAULT_STORAGE",
    "Storage",
    "completed",
    "fingerprint",
    "load_study",
    "make_sampler",
    "open_storage",
    "open_study",
    "recover_dead_trials",
    "running",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the search loop's names on first use (``from nas.study import run_study``)."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
