"""The console during a search: one line per finished trial with a bar over trials and an ETA."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping

from ..objectives import GFLOPS, LATENCY, MAP
from ..study import TrialReport


def format_values(values: Mapping[str, float] | None) -> str:
    """Return 'mAP50-95 0.123 |   6.51 GFLOPs |    12.3 ms' (or '-' for a failed trial)."""
    if values is None:
        return "-"
    return f"{MAP} {values[MAP]:.3f} | {values[GFLOPS]:6.2f} GFLOPs | {values[LATENCY]:7.1f} ms"


def eta(seconds_per_trial: float, remaining: int) -> str:
    """Return an h:mm:ss estimate for ``remaining`` trials."""
    s = int(max(0.0, seconds_per_trial * remaining))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _vs(delta: Mapping[str, float] | None) -> str:
    """Return ' (stock +0.50pt/-3.1%/+4.0%)': the change against the reference, or '' before there is one."""
    if not delta:
        return ""
    return f" (vs stock {delta[MAP]:+.2f}pt/{delta[GFLOPS]:+.1f}%/{delta[LATENCY]:+.1f}%)"


class Progress:
    """``on_trial`` callback: one stderr line per finished trial with a bar over trials and an ETA."""

    def __init__(self, width: int = 24) -> None:
        self.trial_seconds = 0.0
        self.finished = 0
        self.width = width

    def __call__(self, r: TrialReport, done: int, total: int) -> None:
        """Print the line for trial ``r``; ``done`` of ``total`` complete trials exist now."""
        self.finished += 1
        # the trials' own seconds: the one-off warm base or supernet before the first trial is not a trial's cost
        self.trial_seconds += r.seconds
        per_trial = self.trial_seconds / self.finished
        filled = math.floor(self.width * min(done, total) / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        print(
            f"[{bar}] {done}/{total} ETA {eta(per_trial, total - done)} | #{r.number:<4} {r.summary[:60]:<60} | "
            f"{format_values(r.values)}{_vs(r.vs_stock)} | {r.seconds:6.1f}s | front {r.front} | {r.status}"
            f"{' | latency noisy' if r.latency_noisy else ''}",
            file=sys.stderr,
            flush=True,
        )
