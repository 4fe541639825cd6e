"""nas.objectives on hand-built trials: reading values by name, dominance, the Pareto front (constraints, untrained
and dedup trials), the pick rules and the knee, and the hypervolume (hand-computed cases, Optuna as an oracle)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume  # private: used only as an independent oracle
from optuna.trial import FrozenTrial, TrialState

from nas import objectives
from nas.objectives import (
    DIRECTIONS,
    GFLOPS,
    LATENCY,
    MAP,
    NAMES,
    PICKS,
    counts_for_front,
    dominates,
    hypervolume,
    hypervolume_history,
    knee,
    pareto_front,
    pick,
    to_list,
    value,
    values_of,
    within,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

REF = 1.1
LO = {MAP: 0.0, GFLOPS: 0.0, LATENCY: 0.0}
HI = {MAP: 1.0, GFLOPS: 10.0, LATENCY: 100.0}


def pt(map50_95: float, gflops: float, latency_ms: float) -> dict[str, float]:
    """Objective values by name."""
    return {MAP: map50_95, GFLOPS: gflops, LATENCY: latency_ms}


def frozen(
    map50_95: float,
    gflops: float,
    latency_ms: float,
    *,
    trained: bool = True,
    constraints: dict[str, float] | None = None,
    **attrs: object,
) -> FrozenTrial:
    """A COMPLETE trial with values in Optuna's order (mAP, GFLOPs, latency), written out here on purpose."""
    return optuna.trial.create_trial(
        values=[map50_95, gflops, latency_ms], user_attrs={"trained": trained, **attrs}, constraints=constraints
    )


def study_of(*trials: FrozenTrial) -> optuna.Study:
    """An in-memory study with the objectives' directions holding ``trials`` (numbered 0, 1, ... in order)."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for t in trials:
        study.add_trial(t)
    return study


def numbered(*specs: tuple[float, float, float]) -> list[FrozenTrial]:
    """Trained trials numbered 0, 1, ... with the given (mAP, GFLOPs, latency)."""
    return study_of(*(frozen(*s) for s in specs)).get_trials()


# ---------------------------------------------------------------------------------------------------------------
# names, order, reading values


def test_objective_names_directions_and_storage_order() -> None:
    assert NAMES == ("mAP50-95", "GFLOPs", "latency_ms")
    assert DIRECTIONS == ("maximize", "minimize", "minimize")
    assert to_list({LATENCY: 3, MAP: 1, GFLOPS: 2}) == [1.0, 2.0, 3.0]  # Optuna's order whatever the dict's
    assert all(isinstance(x, float) for x in to_list({LATENCY: 3, MAP: 1, GFLOPS: 2}))
    with pytest.raises(KeyError):
        to_list({MAP: 1.0, GFLOPS: 2.0})


def test_values_of_reads_by_name() -> None:
    (t,) = numbered((0.25, 7.5, 42.0))
    assert values_of(t) == {MAP: 0.25, GFLOPS: 7.5, LATENCY: 42.0}
    assert (value(t, MAP), value(t, GFLOPS), value(t, LATENCY)) == (0.25, 7.5, 42.0)
    assert values_of(t) == pt(*to_list(values_of(t)))  # to_list inverts values_of
    with pytest.raises(KeyError):
        value(t, "params")


def test_values_of_a_failed_trial_or_wrong_count_raises_value_error() -> None:
    study = study_of(optuna.trial.create_trial(state=TrialState.FAIL))
    (failed,) = study.get_trials()
    with pytest.raises(ValueError, match="no values"):
        values_of(failed)
    with pytest.raises(ValueError, match="no values"):
        value(failed, MAP)
    with pytest.raises(ValueError, match="no values"):
        values_of(optuna.trial.create_trial(values=[0.5, 1.0]))


# ---------------------------------------------------------------------------------------------------------------
# dominance, bounds


def test_dominates_respects_each_direction() -> None:
    base = pt(0.5, 4.0, 20.0)
    assert not dominates(base, base)  # equal: not better anywhere
    assert dominates(pt(0.6, 4.0, 20.0), base)  # higher mAP is better
    assert not dominates(base, pt(0.6, 4.0, 20.0))
    assert dominates(pt(0.5, 3.0, 20.0), base)  # fewer GFLOPs is better
    assert not dominates(pt(0.5, 5.0, 20.0), base)
    assert dominates(base, pt(0.5, 5.0, 20.0))
    assert dominates(pt(0.5, 4.0, 19.0), base)  # lower latency is better
    assert dominates(base, pt(0.5, 4.0, 21.0))
    trade_off = pt(0.6, 5.0, 20.0)  # better mAP, worse GFLOPs: neither dominates
    assert not dominates(trade_off, base) and not dominates(base, trade_off)
    assert dominates(pt(0.7, 1.0, 1.0), pt(0.1, 9.0, 90.0))


def test_within_bounds_are_inclusive_and_none_is_unbounded() -> None:
    trials = numbered((0.1, 2.0, 30.0), (0.2, 5.0, 10.0), (0.3, 5.0001, 10.0), (0.4, 1.0, 30.0001))
    numbers = lambda ts: [t.number for t in ts]  # noqa: E731
    assert numbers(within(trials, None, None)) == [0, 1, 2, 3]
    assert numbers(within(trials, 5.0, None)) == [0, 1, 3]  # 5.0 <= 5.0 kept, 5.0001 out
    assert numbers(within(trials, None, 30.0)) == [0, 1, 2]  # 30.0 kept, 30.0001 out
    assert numbers(within(trials, 5.0, 30.0)) == [0, 1]
    assert numbers(within(reversed(trials), 5.0, 30.0)) == [1, 0]  # keeps the given order
    assert within(trials, 0.5, None) == []


def test_bounds_are_per_objective_min_and_max() -> None:
    lo, hi = objectives.bounds([pt(0.3, 9.0, 10.0), pt(0.1, 2.0, 50.0), pt(0.2, 5.0, 30.0)])
    assert lo == pt(0.1, 2.0, 10.0) and hi == pt(0.3, 9.0, 50.0)


# ---------------------------------------------------------------------------------------------------------------
# the Pareto front


def test_counts_for_front() -> None:
    assert counts_for_front(frozen(0.5, 1.0, 1.0))
    assert not counts_for_front(frozen(0.5, 1.0, 1.0, trained=False))
    assert not counts_for_front(optuna.trial.create_trial(values=[0.5, 1.0, 1.0]))  # no record: not trained
    assert not counts_for_front(frozen(0.5, 1.0, 1.0, dedup_of=0))


def test_pareto_front_with_mixed_directions() -> None:
    study = study_of(
        frozen(0.50, 4.0, 20.0),  # 0: on the front
        frozen(0.60, 6.0, 20.0),  # 1: higher mAP but more GFLOPs: on the front
        frozen(0.40, 5.0, 25.0),  # 2: dominated by 0
        frozen(0.50, 4.0, 19.0),  # 3: dominates 0 (lower latency)
        frozen(0.45, 3.0, 30.0),  # 4: fewest GFLOPs: on the front
    )
    assert [t.number for t in pareto_front(study)] == [1, 3, 4]


def test_pareto_front_leaves_out_infeasible_trials() -> None:
    study = study_of(
        frozen(0.50, 4.0, 20.0, constraints={"max_gflops": -0.2}),  # 0: feasible, dominated by 3 only
        frozen(0.40, 5.0, 25.0, constraints={"max_gflops": 0.0}),  # 1: violation 0 is feasible; dominated by 0
        frozen(0.90, 1.0, 1.0, constraints={"max_gflops": 0.5}),  # 2: would dominate all; infeasible
        frozen(0.95, 0.5, 0.5, constraints={"max_gflops": -0.9, "max_latency_ms": 1e-6}),  # 3: one violated
        frozen(0.30, 4.5, 10.0, constraints={"max_gflops": -0.1}),  # 4: fastest feasible
    )
    assert [t.number for t in pareto_front(study)] == [0, 4]


def test_pareto_front_reads_constraints_set_through_ask_and_tell() -> None:
    study = study_of()
    for (m, g, lat), violation in [((0.9, 1.0, 1.0), 0.3), ((0.5, 4.0, 20.0), -0.5), ((0.6, 5.0, 25.0), -0.1)]:
        trial = study.ask()
        trial.set_user_attr("trained", True)
        trial.set_constraint("max_gflops", violation)
        study.tell(trial, [m, g, lat])
    assert [t.number for t in pareto_front(study)] == [1, 2]


def test_pareto_front_leaves_out_untrained_and_dedup_trials() -> None:
    study = study_of(
        frozen(0.50, 4.0, 20.0),  # 0: on the front
        frozen(0.60, 6.0, 20.0),  # 1: on the front
        frozen(0.00, 0.5, 5.0, trained=False),  # 2: would stand on the front (fewest GFLOPs); never trained
        frozen(0.70, 7.0, 18.0, dedup_of=1),  # 3: would stand on the front; a reuse
        frozen(0.60, 6.0, 20.0, dedup_of=1),  # 4: a reuse of 1 with its values: must not push 1 off
        optuna.trial.create_trial(values=[0.1, 1.0, 1.0]),  # 5: fastest; no record at all
    )
    assert {t.number for t in study.best_trials} >= {0, 1, 2, 3, 4, 5}  # Optuna alone would keep them
    assert [t.number for t in pareto_front(study)] == [0, 1]


def test_pareto_front_of_an_empty_or_all_failed_study_is_empty() -> None:
    assert pareto_front(study_of()) == []
    assert pareto_front(study_of(optuna.trial.create_trial(state=TrialState.FAIL))) == []


# ---------------------------------------------------------------------------------------------------------------
# the pick rules and the knee

# each rule picks a different trial (a swapped rule fails)
DISAGREE = [
    (0.50, 8.0, 40.0),  # 0: best mAP
    (0.30, 3.0, 60.0),  # 1: smallest
    (0.35, 6.0, 20.0),  # 2: fastest
    (0.45, 4.0, 25.0),  # 3: knee (scaled distance 0.344, the others 1.118, 1.414, 0.960)
]


@pytest.mark.parametrize(("how", "expected"), [("best-map", 0), ("smallest", 1), ("fastest", 2), ("knee", 3)])
def test_each_pick_rule_picks_its_own_trial(how: str, expected: int) -> None:
    trials = numbered(*DISAGREE)
    assert pick(trials, how).number == expected
    assert pick(list(reversed(trials)), how).number == expected  # not by position


def test_picks_are_the_documented_rules() -> None:
    assert set(PICKS) == {"knee", "best-map", "fastest", "smallest"}


def test_best_map_ties_go_to_fewer_gflops_then_lower_number() -> None:
    trials = numbered((0.5, 4.0, 10.0), (0.5, 3.0, 50.0), (0.4, 1.0, 1.0), (0.5, 3.0, 50.0))
    assert pick(trials, "best-map").number == 1  # fewer GFLOPs wins the mAP tie (not the faster 0)
    assert pick(list(reversed(trials)), "best-map").number == 1  # 1 and 3 equal: lower number


def test_fastest_ties_go_to_higher_map_then_lower_number() -> None:
    trials = numbered((0.4, 1.0, 10.0), (0.6, 9.0, 10.0), (0.9, 0.5, 11.0), (0.6, 9.0, 10.0))
    assert pick(trials, "fastest").number == 1  # higher mAP wins the latency tie (not the smaller 0)
    assert pick(list(reversed(trials)), "fastest").number == 1


def test_smallest_ties_go_to_higher_map_then_lower_number() -> None:
    trials = numbered((0.4, 2.0, 1.0), (0.6, 2.0, 90.0), (0.9, 2.5, 1.0), (0.6, 2.0, 90.0))
    assert pick(trials, "smallest").number == 1  # higher mAP wins the GFLOPs tie (not the faster 0)
    assert pick(list(reversed(trials)), "smallest").number == 1


def test_pick_rejects_unknown_rules_and_empty_lists() -> None:
    trials = numbered(*DISAGREE)
    with pytest.raises(ValueError, match="unknown pick 'pareto'"):
        pick(trials, "pareto")
    with pytest.raises(ValueError, match="unknown pick"):
        pick(trials, "best_map")
    for how in PICKS:
        with pytest.raises(ValueError, match="no trials"):
            pick([], how)


def test_knee_scales_each_objective_before_measuring_distance() -> None:
    # ranges: mAP 0.4..0.6, GFLOPs 1..2, latency 100..300 ms. Scaled losses (0 best):
    # 0: (0, 1, 0) -> 1.0; 1: (1, 0, 1) -> 1.414; 2: (0.5, 0.5, 0.25) -> 0.75. Unscaled, latency's milliseconds
    # would swamp the rest and 0 (closest in raw units to the ideal (0.6, 1, 100)) would win.
    specs = [(0.6, 2.0, 100.0), (0.4, 1.0, 300.0), (0.5, 1.5, 150.0)]
    assert knee(numbered(*specs)).number == 2
    # scaling makes the knee independent of units: GFLOPs in MFLOPs, latency in seconds
    rescaled = [(m, g * 1000, lat / 1000) for m, g, lat in specs]
    assert knee(numbered(*rescaled)).number == 2
    # move trial 2 to (0.45, 1.9, 290): losses (0.75, 0.9, 0.95) -> 1.51, now the worst; 0 is the knee
    assert knee(numbered(*specs[:2], (0.45, 1.9, 290.0))).number == 0


def test_knee_ties_go_to_the_lower_number() -> None:
    # scaled losses (0, 1, 0) and (1, 0, 0): both at distance 1 (latency has no range)
    trials = numbered((1.0, 2.0, 5.0), (0.0, 1.0, 5.0))
    assert knee(trials).number == 0
    assert knee(list(reversed(trials))).number == 0
    assert pick(list(reversed(trials)), "knee").number == 0


def test_knee_of_one_trial_is_that_trial() -> None:
    (t,) = numbered((0.3, 5.0, 50.0))
    assert knee([t]) is t


# ---------------------------------------------------------------------------------------------------------------
# hypervolume


def scaled_losses(points: Sequence[dict[str, float]], lo: dict[str, float], hi: dict[str, float]) -> np.ndarray:
    """The documented scaling, written independently: (v - lo) / (hi - lo) clipped to [0, 1], mAP flipped."""
    rows = []
    for p in points:
        row = []
        for name, direction in zip(NAMES, DIRECTIONS, strict=True):
            x = min(max((p[name] - lo[name]) / (hi[name] - lo[name]), 0.0), 1.0)
            row.append(1.0 - x if direction == "maximize" else x)
        rows.append(row)
    return np.asarray(rows, dtype=float).reshape(-1, len(NAMES))


def oracle(points: Sequence[dict[str, float]], lo: dict[str, float], hi: dict[str, float]) -> float:
    return float(compute_hypervolume(scaled_losses(points, lo, hi), np.full(len(NAMES), REF)))


def test_volume_slicing_in_one_and_two_dimensions() -> None:
    # the private slicing routine's lower-dimensional cases (the 3-objective volume recurses down to them)
    assert objectives._volume([(0.25,), (0.5,)], [1.0]) == pytest.approx(0.75)
    assert objectives._volume([(0.2, 0.6), (0.5, 0.1), (0.6, 0.6)], [1.0, 1.0]) == pytest.approx(
        0.8 * 0.4 + 0.5 * 0.9 - 0.5 * 0.4
    )
    assert objectives._volume([], [1.0, 1.0]) == 0.0


def test_hypervolume_of_nothing_is_zero() -> None:
    assert hypervolume([], LO, HI) == 0.0


def test_hypervolume_of_one_point() -> None:
    assert hypervolume([pt(1.0, 0.0, 0.0)], LO, HI) == pytest.approx(REF**3, abs=1e-12)  # the ideal corner
    assert hypervolume([pt(1.0, 0.0, 0.0)], LO, HI) == pytest.approx(1.331, abs=1e-12)
    assert hypervolume([pt(0.0, 10.0, 100.0)], LO, HI) == pytest.approx(0.1**3, abs=1e-12)  # the worst corner
    assert hypervolume([pt(0.5, 5.0, 50.0)], LO, HI) == pytest.approx(0.6**3, abs=1e-12)
    # losses (0.2, 0.3, 0.9): (1.1 - 0.2)(1.1 - 0.3)(1.1 - 0.9)
    assert hypervolume([pt(0.8, 3.0, 90.0)], LO, HI) == pytest.approx(0.9 * 0.8 * 0.2, abs=1e-12)
    assert hypervolume([pt(1.0, 0.0, 0.0)], LO, HI, ref=2.0) == pytest.approx(8.0, abs=1e-12)


# p1 losses (0.2, 0.5, 0.6): box 0.9*0.6*0.5 = 0.27; p2 (0.5, 0.1, 0.4): 0.6*1.0*0.7 = 0.42;
# p3 (0.9, 0.9, 0.0): 0.2*0.2*1.1 = 0.044. Overlaps (boxes from the coordinate-wise max): p1p2 (0.5, 0.5, 0.6) 0.18;
# p1p3 (0.9, 0.9, 0.6) 0.02; p2p3 (0.9, 0.9, 0.4) 0.028; p1p2p3 (0.9, 0.9, 0.6) 0.02.
P1, P2, P3 = pt(0.8, 5.0, 60.0), pt(0.5, 1.0, 40.0), pt(0.1, 9.0, 0.0)


def test_hypervolume_of_two_and_three_points_by_inclusion_exclusion() -> None:
    assert hypervolume([P1, P2], LO, HI) == pytest.approx(0.27 + 0.42 - 0.18, abs=1e-12)
    assert hypervolume([P1, P2, P3], LO, HI) == pytest.approx(
        0.27 + 0.42 + 0.044 - 0.18 - 0.02 - 0.028 + 0.02, abs=1e-12
    )


def test_hypervolume_is_invariant_under_permutation() -> None:
    pts = [P1, P2, P3, pt(0.6, 2.0, 70.0), pt(0.3, 0.5, 95.0)]
    expected = hypervolume(pts, LO, HI)
    for perm in itertools.permutations(pts):
        assert hypervolume(list(perm), LO, HI) == pytest.approx(expected, abs=1e-12)


def test_hypervolume_dominated_and_repeated_points_add_nothing() -> None:
    base = hypervolume([P1, P2, P3], LO, HI)
    dominated = [pt(0.7, 6.0, 70.0), pt(0.5, 1.0, 41.0), pt(0.0, 10.0, 100.0)]  # by P1, by P2, by all
    assert hypervolume([P1, P2, P3, *dominated], LO, HI) == pytest.approx(base, abs=1e-12)
    assert hypervolume([P1, P1, P2, P3, P2], LO, HI) == pytest.approx(base, abs=1e-12)
    # and a non-dominated point does add
    assert hypervolume([P1, P2, P3, pt(0.9, 8.0, 5.0)], LO, HI) > base + 1e-3


def test_hypervolume_clips_points_outside_the_bounds() -> None:
    # beyond the best end counts as the ideal corner, beyond the worst end as the worst corner
    assert hypervolume([pt(1.5, -3.0, -10.0)], LO, HI) == pytest.approx(REF**3, abs=1e-12)
    assert hypervolume([pt(-0.5, 20.0, 500.0)], LO, HI) == pytest.approx(0.1**3, abs=1e-12)
    assert hypervolume([pt(0.5, 50.0, 50.0)], LO, HI) == pytest.approx(0.6 * 0.1 * 0.6, abs=1e-12)
    assert hypervolume([pt(2.0, 5.0, 50.0)], LO, HI) == hypervolume([pt(1.0, 5.0, 50.0)], LO, HI)


def test_hypervolume_scales_by_the_given_bounds() -> None:
    p = pt(0.5, 5.0, 50.0)
    assert hypervolume([p], LO, HI) == pytest.approx(0.6**3, abs=1e-12)  # losses (0.5, 0.5, 0.5)
    # twice the range: mAP 0.5 of 2 -> 0.25, flipped 0.75; GFLOPs 5 of 20 -> 0.25; latency 50 of 200 -> 0.25
    wide = pt(2.0, 20.0, 200.0)
    assert hypervolume([p], LO, wide) == pytest.approx(0.35 * 0.85 * 0.85, abs=1e-12)
    # a lower bound above zero shifts: mAP (0.5 - 0.25) / 0.5 = 0.5; GFLOPs (5 - 4) / 2 = 0.5; latency (50 - 40) / 20
    assert hypervolume([p], pt(0.25, 4.0, 40.0), pt(0.75, 6.0, 60.0)) == pytest.approx(0.6**3, abs=1e-12)


def _random_points(rng: random.Random, n: int) -> list[dict[str, float]]:
    """Random points, partly outside LO..HI (clipping) and partly on a coarse grid (ties in a coordinate)."""
    out = []
    for _ in range(n):
        if rng.random() < 0.4:
            out.append(pt(rng.randint(0, 4) / 4, rng.randint(0, 4) * 2.5, rng.randint(0, 4) * 25.0))
        else:
            out.append(pt(rng.uniform(-0.1, 1.1), rng.uniform(-1.0, 11.0), rng.uniform(-10.0, 110.0)))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_hypervolume_agrees_with_optuna(seed: int) -> None:
    rng = random.Random(seed)
    pts = _random_points(rng, rng.randint(1, 25))
    expected = oracle(pts, LO, HI)
    assert hypervolume(pts, LO, HI) == pytest.approx(expected, abs=1e-9)
    # and with bounds taken from the points themselves (as the report does)
    lo, hi = objectives.bounds(pts)
    if all(hi[n] > lo[n] for n in NAMES):
        assert hypervolume(pts, lo, hi) == pytest.approx(oracle(pts, lo, hi), abs=1e-9)


def test_oracle_scaling_matches_the_hand_computed_cases() -> None:
    # guards the oracle itself: it must agree with the hand-computed volumes above
    assert oracle([pt(1.0, 0.0, 0.0)], LO, HI) == pytest.approx(1.331, abs=1e-12)
    assert oracle([P1, P2], LO, HI) == pytest.approx(0.51, abs=1e-12)


def test_hypervolume_history_is_the_hypervolume_of_each_prefix_and_never_falls() -> None:
    rng = random.Random(7)
    pts = _random_points(rng, 30)
    pts[10:10] = [pts[3], pt(-1.0, 20.0, 200.0)]  # a repeat and a dominated point mid-way
    history = hypervolume_history(pts, LO, HI)
    assert len(history) == len(pts)
    for i, h in enumerate(history):
        assert h == pytest.approx(hypervolume(pts[: i + 1], LO, HI), abs=1e-12), i
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(history))
    assert history[10] == history[9] and history[11] == history[10]  # neither the repeat nor the dominated one adds
    assert history[-1] > history[0]


def test_hypervolume_history_by_hand() -> None:
    history = hypervolume_history([P2, pt(0.4, 2.0, 50.0), P1, P3], LO, HI)
    assert history == pytest.approx([0.42, 0.42, 0.51, 0.526], abs=1e-12)
    assert math.isclose(history[-1], hypervolume([P1, P2, P3], LO, HI), abs_tol=1e-12)


def test_an_objective_without_range_scores_best_whatever_its_direction() -> None:
    one = {MAP: 0.0, GFLOPS: 5.0, LATENCY: 10.0}
    assert hypervolume([one], one, one) == pytest.approx(1.1**3)  # every objective constant: the ideal corner
    two = [{MAP: 0.0, GFLOPS: 4.0, LATENCY: 10.0}, {MAP: 0.0, GFLOPS: 6.0, LATENCY: 10.0}]
    lo, hi = objectives.bounds(two)
    # mAP and latency constant (loss 0), GFLOPs spans [4, 6]: the better point alone gives 1.1 * 1.1 * 1.1
    assert hypervolume(two, lo, hi) == pytest.approx(1.1**3)
    assert hypervolume(two[1:], lo, hi) == pytest.approx(1.1 * 0.1 * 1.1)


def test_change_against_the_stock_model_is_in_points_and_percent() -> None:
    ref = {MAP: 0.40, GFLOPS: 8.0, LATENCY: 50.0}
    got = objectives.change({MAP: 0.425, GFLOPS: 6.0, LATENCY: 55.0}, ref)
    assert got == pytest.approx({MAP: 2.5, GFLOPS: -25.0, LATENCY: 10.0})
    better, worse = objectives.better_and_worse({MAP: 0.425, GFLOPS: 6.0, LATENCY: 55.0}, ref)
    assert better == [MAP, GFLOPS] and worse == [LATENCY]
    assert objectives.better_and_worse(ref, ref) == ([], [])
