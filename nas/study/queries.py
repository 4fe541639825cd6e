"""Which trials of a study are where: complete, running, or already holding an architecture."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def completed(study: optuna.Study) -> list[FrozenTrial]:
    """Return the study's COMPLETE trials."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def running(study: optuna.Study) -> list[FrozenTrial]:
    """Return the study's RUNNING trials (this worker's and others')."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def find_duplicate(study: optuna.Study, key: str) -> FrozenTrial | None:
    """Return a COMPLETE trial of this study with architecture ``key`` (same schedule: the study pins it)."""
    return next((t for t in completed(study) if t.user_attrs.get("key") == key), None)
