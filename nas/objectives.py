"""The study's objectives, by name: their directions, reading a trial's values, dominance, the Pareto front,
choosing among Pareto trials (knee, best mAP, fastest, smallest) and the hypervolume.

This is the only module that knows the order of a trial's ``values``; everything else reads them by name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState


@dataclass(frozen=True)
class Objective:
    """One objective: its name (the study's metric name) and whether larger is better."""

    name: str
    direction: str  # "maximize" or "minimize"

    @property
    def sign(self) -> int:
        """Return +1 when larger is better, -1 when smaller is better."""
        return 1 if self.direction == "maximize" else -1


MAP, GFLOPS, LATENCY = "mAP50-95", "GFLOPs", "latency_ms"
OBJECTIVES = (Objective(MAP, "maximize"), Objective(GFLOPS, "minimize"), Objective(LATENCY, "minimize"))
NAMES = tuple(o.name for o in OBJECTIVES)
DIRECTIONS = tuple(o.direction for o in OBJECTIVES)
PICKS = ("knee", "best-map", "fastest", "smallest")

Values = Mapping[str, float]


def values_of(trial: FrozenTrial) -> dict[str, float]:
    """Return a complete trial's objective values by name.

    Raises:
        ValueError: the trial has no values, or not one per objective.
    """
    if trial.values is None or len(trial.values) != len(NAMES):
        raise ValueError(f"trial {trial.number} has no values for the objectives {', '.join(NAMES)}")
    return dict(zip(NAMES, trial.values, strict=True))


def value(trial: FrozenTrial, name: str) -> float:
    """Return objective ``name`` of a complete trial.

    Raises:
        ValueError: the trial has no values; KeyError: ``name`` is not an objective.
    """
    return values_of(trial)[name]


def to_list(values: Values) -> list[float]:
    """Return ``values`` in the order Optuna stores them (for ``study.tell``).

    Raises:
        KeyError: an objective is missing.
    """
    return [float(values[name]) for name in NAMES]


def dominates(a: Values, b: Values) -> bool:
    """Return True if ``a`` is at least as good as ``b`` in every objective and better in one."""
    diffs = [o.sign * (a[o.name] - b[o.name]) for o in OBJECTIVES]
    return all(d >= 0 for d in diffs) and any(d > 0 for d in diffs)


def counts_for_front(trial: FrozenTrial) -> bool:
    """Return True for a trial that may stand on the front: trained, and not a reuse of another trial's result."""
    return bool(trial.user_attrs.get("trained")) and "dedup_of" not in trial.user_attrs


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Return the feasible, trained trials on the Pareto front of the objectives, by trial number.

    Uses Optuna's ``best_trials`` (feasible trials only, as recorded by ``trial.set_constraint``); trials that
    reuse another's result (``dedup_of``) and untrained ones are left out.
    """
    return sorted((t for t in study.best_trials if counts_for_front(t)), key=lambda t: t.number)


def reference_trial(study: optuna.Study) -> FrozenTrial | None:
    """Return the study's reference trial: the complete, unmodified base model flagged ``reference`` (trial 0 of
    studies made since the reference was introduced), or None."""
    return next(
        (t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.user_attrs.get("reference")),
        None,
    )


def change(values: Values, reference: Values) -> dict[str, float]:
    """Return ``values`` against ``reference``: mAP50-95 in points (x100 of the difference), the others in percent."""
    out = {MAP: 100.0 * (values[MAP] - reference[MAP])}
    for name in (GFLOPS, LATENCY):
        out[name] = 100.0 * (values[name] / reference[name] - 1.0) if reference[name] else math.nan
    return out


def better_and_worse(values: Values, reference: Values) -> tuple[list[str], list[str]]:
    """Return (the objectives where ``values`` beats ``reference``, those where it is worse), by name."""
    signs = {o.name: o.sign * (values[o.name] - reference[o.name]) for o in OBJECTIVES}
    return [n for n in NAMES if signs[n] > 0], [n for n in NAMES if signs[n] < 0]


def within(trials: Iterable[FrozenTrial], max_gflops: float | None, max_latency_ms: float | None) -> list[FrozenTrial]:
    """Return the trials whose GFLOPs and latency are within the given bounds (None: unbounded)."""
    return [
        t
        for t in trials
        if (max_gflops is None or value(t, GFLOPS) <= max_gflops)
        and (max_latency_ms is None or value(t, LATENCY) <= max_latency_ms)
    ]


def _losses(points: Iterable[Values], lo: Values, hi: Values) -> list[tuple[float, ...]]:
    """Return each point scaled by [lo, hi] to [0, 1] per objective (clipped), flipped where larger is better, so
    0 is best. An objective with no range (lo == hi) separates nothing: every point scores 0 (best) in it."""
    out = []
    for p in points:
        scaled = []
        for o in OBJECTIVES:
            span = hi[o.name] - lo[o.name]
            if span <= 0:
                scaled.append(0.0)
                continue
            x = min(max((p[o.name] - lo[o.name]) / span, 0.0), 1.0)
            scaled.append(1.0 - x if o.sign > 0 else x)
        out.append(tuple(scaled))
    return out


def _volume(points: Sequence[tuple[float, ...]], ref: Sequence[float]) -> float:
    """Return the volume dominated by ``points`` (minimised, each below ``ref``) up to ``ref``, by slicing."""
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    if len(ref) == 2:  # staircase sweep
        area, best_y = 0.0, ref[1]
        ordered = sorted(points)
        for i, (x, y) in enumerate(ordered):
            best_y = min(best_y, y)
            right = ordered[i + 1][0] if i + 1 < len(ordered) else ref[0]
            area += (right - x) * (ref[1] - best_y)
        return area
    ordered = sorted(points, key=lambda p: p[-1])
    total = 0.0
    for i, p in enumerate(ordered):
        top = ordered[i + 1][-1] if i + 1 < len(ordered) else ref[-1]
        if top > p[-1]:
            total += (top - p[-1]) * _volume([q[:-1] for q in ordered[: i + 1]], ref[:-1])
    return total


def _non_dominated(losses: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Return the distinct points of ``losses`` that no other point dominates (all minimised)."""
    front: list[tuple[float, ...]] = []
    for p in sorted(set(losses)):
        if not any(all(q <= x for q, x in zip(f, p, strict=True)) for f in front):
            front.append(p)
    return front


def hypervolume(points: Iterable[Values], lo: Values, hi: Values, ref: float = 1.1) -> float:
    """Return the hypervolume of ``points`` once each objective is scaled to [0, 1] by ``lo`` and ``hi``.

    Scaled values are clipped to [0, 1] and objectives to maximise are flipped, so every objective is minimised;
    the reference point is ``ref`` in every objective, so the largest possible value is ``ref ** 3``. Dominated
    points are allowed (they add nothing).
    """
    return _volume(_non_dominated(_losses(points, lo, hi)), [ref] * len(OBJECTIVES))


def hypervolume_history(points: Sequence[Values], lo: Values, hi: Values, ref: float = 1.1) -> list[float]:
    """Return the hypervolume of ``points[: i + 1]`` for every i (see ``hypervolume``), keeping the front as it goes."""
    return _history(_losses(points, lo, hi), [ref] * len(OBJECTIVES))


def _history(losses: Iterable[tuple[float, ...]], ref: Sequence[float]) -> list[float]:
    """Return the hypervolume (up to ``ref``) of the first i + 1 ``losses`` for every i, keeping the front."""
    front: list[tuple[float, ...]] = []
    history: list[float] = []
    for loss in losses:
        if not any(all(q <= x for q, x in zip(f, loss, strict=True)) for f in front):
            front = [f for f in front if not all(x <= q for x, q in zip(loss, f, strict=True))] + [loss]
            history.append(_volume(front, ref))
        else:
            history.append(history[-1])
    return history


# The one normalisation that makes hypervolumes comparable across runs and studies (the report's history uses it):
# losses (1 - mAP50-95, GFLOPs / stock GFLOPs, latency / stock latency), every one minimised, up to this reference
# point: mAP50-95 0, twice the stock model's GFLOPs, twice its latency.
HV_REFERENCE = {MAP: 1.0, GFLOPS: 2.0, LATENCY: 2.0}


def normalised_losses(values: Values, scale: Values) -> tuple[float, ...]:
    """Return ``values`` as normalised losses in ``NAMES`` order: ``1 - mAP50-95`` and GFLOPs and latency divided
    by ``scale``'s (the stock model's), each clipped to [0, ``HV_REFERENCE``] so a point beyond the reference point
    lies on it (and adds nothing).

    Raises:
        ValueError: ``scale``'s GFLOPs or latency is not positive.
    """
    for name in (GFLOPS, LATENCY):
        if not scale[name] > 0:
            raise ValueError(f"cannot normalise by a {name} of {scale[name]} (it must be positive)")
    raw = {MAP: 1.0 - values[MAP], GFLOPS: values[GFLOPS] / scale[GFLOPS], LATENCY: values[LATENCY] / scale[LATENCY]}
    return tuple(min(max(raw[n], 0.0), HV_REFERENCE[n]) for n in NAMES)


def normalised_hypervolume_history(points: Sequence[Values], scale: Values) -> list[float]:
    """Return the normalised hypervolume of ``points[: i + 1]`` for every i.

    Normalisation (``normalised_losses``): mAP50-95 as is, GFLOPs and latency divided by ``scale``'s (the stock
    model's), reference point (mAP50-95 0, 2x GFLOPs, 2x latency). The largest possible value is 4 (mAP50-95 1 at
    no cost); the stock model alone scores its own mAP50-95 (its volume is ``mAP x 1 x 1``), so a history is
    readable against it and comparable across studies of any base model.

    Raises:
        ValueError: ``scale``'s GFLOPs or latency is not positive.
    """
    return _history((normalised_losses(p, scale) for p in points), [HV_REFERENCE[n] for n in NAMES])


def bounds(points: Iterable[Values]) -> tuple[dict[str, float], dict[str, float]]:
    """Return (lowest, highest) value of each objective over ``points`` (which must not be empty)."""
    pts = list(points)
    return ({n: min(p[n] for p in pts) for n in NAMES}, {n: max(p[n] for p in pts) for n in NAMES})


def knee(trials: Sequence[FrozenTrial]) -> FrozenTrial:
    """Return the trial closest (Euclidean) to the ideal point once each objective is scaled to [0, 1].

    Scaling uses the range over ``trials``; objectives to maximise are flipped so that 0 is best for each.
    Ties go to the lower trial number.
    """
    vals = [values_of(t) for t in trials]
    lo, hi = bounds(vals)
    losses = _losses(vals, lo, hi)
    best = min(range(len(trials)), key=lambda i: (math.hypot(*losses[i]), trials[i].number))
    return trials[best]


def pick(trials: Sequence[FrozenTrial], how: str) -> FrozenTrial:
    """Return the trial chosen by ``how`` (one of ``PICKS``) among non-empty ``trials``; ties go to the lower number.

    ``best-map``: highest mAP50-95, then fewest GFLOPs; ``fastest``: lowest latency, then highest mAP;
    ``smallest``: fewest GFLOPs, then highest mAP; ``knee``: see ``knee``.

    Raises:
        ValueError: unknown ``how`` or no trials.
    """
    if not trials:
        raise ValueError("no trials to pick from")
    if how == "knee":
        return knee(trials)
    keys = {
        "best-map": lambda t: (-value(t, MAP), value(t, GFLOPS), t.number),
        "fastest": lambda t: (value(t, LATENCY), -value(t, MAP), t.number),
        "smallest": lambda t: (value(t, GFLOPS), -value(t, MAP), t.number),
    }
    if how not in keys:
        raise ValueError(f"unknown pick {how!r} (one of {', '.join(PICKS)})")
    return min(trials, key=keys[how])
