"""Warnings where a study's numbers cannot mean much: mAP50-95 ≈ 0 for (nearly) every trained trial, latencies
that stayed noisy, a Pareto front smaller than an insertion point's number of choices.

One list of sentences, shown in the console at the end of a search, at the top of the report and in export's
header (each caller formats them its own way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial

from .objectives import MAP, counts_for_front, pareto_front, value
from .study.queries import completed

NEAR_ZERO_MAP = 0.005  # below half a mAP point a detector has learnt nothing usable
MOSTLY = 0.9  # "nearly all": this share of the trained trials


def zero_map(trained: Sequence[FrozenTrial], schedule: Mapping[str, Any] | None = None) -> str | None:
    """Return a warning when mAP50-95 is ≈ 0 for at least ``MOSTLY`` of the ``trained`` trials, else None.

    ``schedule``: the study's proxy schedule (``epochs``, ``imgsz``), named in the warning when given.
    """
    if not trained:
        return None
    zero = sum(value(t, MAP) < NEAR_ZERO_MAP for t in trained)
    if zero < MOSTLY * len(trained):
        return None
    what = f" ({schedule.get('epochs')} epochs at {schedule.get('imgsz')} px)" if schedule else ""
    return (
        f"{MAP} is ≈0 (< {NEAR_ZERO_MAP}) for {zero} of {len(trained)} trained trials: the proxy schedule{what} is "
        "too short for this dataset to learn anything, so the mAP axis ranks noise; train longer (train.epochs, "
        "supernet_epochs) before trusting the front"
    )


def noisy_latency(trials: Sequence[FrozenTrial]) -> str | None:
    """Return a warning naming the trials whose latency stayed noisy after every repeat, else None."""
    # a trial that reused a twin's result (dedup_of) copied its flag: the one measurement is named once
    noisy = sorted(t.number for t in trials if t.user_attrs.get("latency_noisy") and "dedup_of" not in t.user_attrs)
    if not noisy:
        return None
    shown = ", ".join(f"#{n}" for n in noisy[:10]) + (f" and {len(noisy) - 10} more" if len(noisy) > 10 else "")
    return (
        f"latency stayed noisy (IQR/median above latency.max_spread after every repeat) for {len(noisy)} trial(s): "
        f"{shown}; the machine was busy, so their latency ranks may be off; measure again on a quiet machine"
    )


def most_choices(trials: Sequence[FrozenTrial]) -> int:
    """Return the largest number of choices of one categorical search variable among ``trials`` (0 if none)."""
    return max(
        (len(d.choices) for t in trials for d in t.distributions.values() if isinstance(d, CategoricalDistribution)),
        default=0,
    )


def small_front(front: Sequence[FrozenTrial], choices: int) -> str | None:
    """Return a warning when the front holds fewer trials than ``choices`` (an insertion point's), else None."""
    if not front or len(front) >= choices:
        return None
    return (
        f"the Pareto front holds {len(front)} trial(s), fewer than the {choices} choices of an insertion point: "
        "which choices the front prefers is not yet readable; run more trials"
    )


def study_caveats(study: optuna.Study) -> list[str]:
    """Return the warnings that apply to ``study`` (empty when none does, or before any trained trial)."""
    trials = completed(study)
    trained = [t for t in trials if counts_for_front(t)]
    found = [
        zero_map(trained, study.user_attrs.get("schedule")),
        noisy_latency(trials),
        small_front(pareto_front(study), most_choices(trials)),
    ]
    return [w for w in found if w]
