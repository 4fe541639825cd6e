"""Choosing among Pareto trials: knee (closest to the ideal point after normalising), best mAP, fastest, smallest."""

from __future__ import annotations

import math

from optuna.trial import FrozenTrial

PICKS = ("knee", "best-map", "fastest", "smallest")


def within(trials: list[FrozenTrial], max_gflops: float | None, max_latency_ms: float | None) -> list[FrozenTrial]:
    """Return the trials whose GFLOPs and latency are within the given bounds (None: unbounded)."""
    return [
        t
        for t in trials
        if (max_gflops is None or t.values[1] <= max_gflops)
        and (max_latency_ms is None or t.values[2] <= max_latency_ms)
    ]


def hypervolume(values: list[list[float]], lo: list[float], hi: list[float], ref: float = 1.1) -> float:
    """Return the hypervolume of ``values`` (mAP50-95, GFLOPs, latency) once each objective is scaled by [lo, hi].

    Scaled values are clipped to [0, 1] and mAP is flipped, so every objective is minimised; the reference
    point is ``ref`` in every objective. Dominated points are allowed (they add nothing).
    """
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    if not values:
        return 0.0
    vals = np.asarray(values, dtype=float)
    low, high = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    scaled = np.clip((vals - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0)
    scaled[:, 0] = 1.0 - scaled[:, 0]
    return float(compute_hypervolume(scaled, np.full(vals.shape[1], ref)))


def knee(trials: list[FrozenTrial]) -> FrozenTrial:
    """Return the trial closest (Euclidean) to the ideal point once each objective is scaled to [0, 1].

    Scaling uses the range over ``trials``; mAP is flipped so that 0 is best for every objective.
    """
    cols = list(zip(*(t.values for t in trials), strict=True))
    lo, hi = [min(c) for c in cols], [max(c) for c in cols]

    def scaled(v: float, i: int) -> float:
        span = hi[i] - lo[i]
        x = (v - lo[i]) / span if span > 0 else 0.0
        return 1.0 - x if i == 0 else x

    return min(trials, key=lambda t: (math.hypot(*(scaled(v, i) for i, v in enumerate(t.values))), t.number))


def pick(trials: list[FrozenTrial], how: str) -> FrozenTrial:
    """Return the trial chosen by ``how`` (one of ``PICKS``) among non-empty ``trials``; ties go to the lower number."""
    if how == "knee":
        return knee(trials)
    if how == "best-map":
        return min(trials, key=lambda t: (-t.values[0], t.values[1], t.number))
    if how == "fastest":
        return min(trials, key=lambda t: (t.values[2], -t.values[0], t.number))
    if how == "smallest":
        return min(trials, key=lambda t: (t.values[1], -t.values[0], t.number))
    raise ValueError(f"unknown pick {how!r}")
