"""Rank agreement between two orderings of the same items: Spearman's rho and Kendall's tau-b, ties handled.

Used to judge a proxy against longer training (``nas.verify``, ``benchmarks/proxy_fidelity.py``), also beyond what both
share with a cost score (``partial_spearman``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def ranks(xs: Sequence[float]) -> list[float]:
    """Return the 1-based ranks of ``xs``, ties sharing their average rank."""
    order = sorted(range(len(xs)), key=lambda k: xs[k])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Return Spearman's rho of paired ``a`` and ``b`` (Pearson over average ranks); NaN when a side is constant."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else float("nan")


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Return Kendall's tau-b of paired ``a`` and ``b`` (corrected for ties); NaN when a side is constant."""
    conc = disc = ta = tb = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 and db == 0:
            continue
        if da == 0:
            ta += 1
        elif db == 0:
            tb += 1
        elif da * db > 0:
            conc += 1
        else:
            disc += 1
    denom = ((conc + disc + ta) * (conc + disc + tb)) ** 0.5
    return (conc - disc) / denom if denom else float("nan")


def partial_spearman(a: Sequence[float], b: Sequence[float], given: Sequence[float]) -> float:
    """Return the Spearman agreement of ``a`` and ``b`` beyond what both share with ``given``: the partial
    correlation of their ranks, (r_ab - r_ag r_bg) / sqrt((1 - r_ag^2)(1 - r_bg^2)) with Spearman's r. NaN where a
    side is constant or ranks exactly like ``given`` (nothing is left beyond it).

    A proxy that agrees with longer training only because both follow the architectures' cost gets about 0 here,
    however high its plain Spearman."""
    r_ab, r_ag, r_bg = spearman(a, b), spearman(a, given), spearman(b, given)
    denom = max(0.0, (1 - r_ag**2) * (1 - r_bg**2)) ** 0.5  # max: |r| may exceed 1 by a rounding error
    return (r_ab - r_ag * r_bg) / denom if denom > 1e-12 else float("nan")
