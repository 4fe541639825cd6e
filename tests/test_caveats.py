"""The warnings shown where a study's numbers cannot mean much (console, report, export header)."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import create_trial

from nas.caveats import noisy_latency, small_front, study_caveats, zero_map
from nas.objectives import DIRECTIONS, NAMES

CHOICES = CategoricalDistribution(["Conv", "GhostV2", "DynamicConv", "ACmix"])


def trial(number: int, map50_95: float, gflops: float, noisy: bool = False) -> optuna.trial.FrozenTrial:
    attrs = {"trained": True, "key": f"k{number}", **({"latency_noisy": True} if noisy else {})}
    return create_trial(
        values=[map50_95, gflops, 10.0 + number],
        params={"down_p2": CHOICES.choices[number % 4]},
        distributions={"down_p2": CHOICES},
        user_attrs=attrs,
    )


def study_of(trials: list[optuna.trial.FrozenTrial]) -> optuna.Study:
    study = optuna.create_study(directions=list(DIRECTIONS))
    study.set_metric_names(list(NAMES))
    study.set_user_attr("schedule", {"epochs": 1, "imgsz": 64})
    study.add_trials(trials)
    return study


def test_all_zero_map_is_warned_with_the_schedule() -> None:
    trials = [trial(i, 0.0001 * i, 1.0 + i) for i in range(10)]
    text = zero_map(trials, {"epochs": 1, "imgsz": 64})
    assert text is not None and "10 of 10" in text and "1 epochs at 64 px" in text
    assert zero_map([*trials[:1], trial(1, 0.3, 2.0)], None) is None  # one trial of two learnt something
    assert any("is ≈0" in w for w in study_caveats(study_of(trials)))


def test_a_study_that_learnt_has_no_map_warning() -> None:
    trials = [trial(i, 0.2 + 0.01 * i, 1.0 + i) for i in range(8)]
    assert study_caveats(study_of(trials)) == []  # 8 trials on the front, 4 choices, nothing noisy


def test_noisy_latency_names_the_trials() -> None:
    trials = [trial(0, 0.3, 1.0), trial(1, 0.2, 0.5, noisy=True)]
    assert noisy_latency(trials[:1]) is None
    study = study_of([*trials, *(trial(i, 0.2 + 0.01 * i, 1.0 + i) for i in range(2, 6))])
    assert noisy_latency(study.trials) is not None
    assert next(w for w in study_caveats(study) if "noisy" in w).split(": ")[-1].startswith("#1;")


def test_a_front_smaller_than_the_choices_is_warned() -> None:
    one_best = [trial(0, 0.5, 0.5), *(trial(i, 0.1, 1.0 + i) for i in range(1, 6))]  # trial 0 dominates the rest
    caveats = study_caveats(study_of(one_best))
    assert any("fewer than the 4 choices" in w for w in caveats)
    assert small_front(one_best[:4], 4) is None


def test_a_reused_result_is_not_named_twice_as_noisy() -> None:
    measured, copy = trial(0, 0.3, 1.0, noisy=True), trial(1, 0.3, 1.0, noisy=True)
    copy.user_attrs["dedup_of"] = 0
    study = study_of([measured, copy])
    text = noisy_latency(study.trials)
    assert text is not None and "1 trial(s): #0;" in text
