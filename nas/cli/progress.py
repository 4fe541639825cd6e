"""The console during a search: a legend once, then one line (at most ``WIDTH`` characters) per finished trial;
and a bar with an ETA during the one-off trainings (warm base, supernet)."""

from __future__ import annotations

import re
import sys
import textwrap
import time
from collections.abc import Mapping
from typing import Any, TextIO

from modules.table import OPERATORS, is_stock, short_name

from ..objectives import GFLOPS, LATENCY, MAP
from ..space.space import SearchSpace, takes_kernel
from ..study import TrialReport

WIDTH = 120  # the widest console line
VALUES = 42  # the objective values' columns
STATUS = 10  # the status column (wider statuses push the architecture right)
MIN_ARCH = 14  # the architecture column never gets narrower than this (the status is cut first)
_DEDUP = re.compile(r"\s*\(= #(\d+)\)$")
# the loop's statuses, shortened for the trial line (the others are shown as they are)
SHORT_STATUS = {"reference (stock)": "stock", "infeasible (not trained)": "infeasible", "ok": "ok"}


def eta(seconds_per_unit: float, remaining: float) -> str:
    """Return an h:mm:ss estimate for ``remaining`` units of ``seconds_per_unit`` each."""
    s = int(max(0.0, seconds_per_unit * remaining))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def point_labels(space: SearchSpace) -> dict[str, str]:
    """Return ``{point name: short label}``: ``L<first layer>`` (``L17`` for a point tying 17 and 20), or the
    point's name where two points would share a label."""
    labels = {p.name: f"L{min(p.layers)}" for p in space.points}
    taken = list(labels.values())
    return {name: label if taken.count(label) == 1 else name for name, label in labels.items()}


def legend(space: SearchSpace) -> list[str]:
    """Return the lines that explain the trial lines' abbreviations for ``space`` (each at most ``WIDTH`` wide)."""
    labels = point_labels(space)
    points = [
        f"{labels[p.name]}={p.name}" + (f"(layers {','.join(map(str, p.layers))})" if len(p.layers) > 1 else "")
        for p in space.points
    ]
    ops: dict[str, str] = {}
    for p in space.points:
        for op in p.choices:
            if is_stock(op) or op not in OPERATORS:
                continue
            family = OPERATORS[op].family.name
            label = f"{short_name(op)}<k>" if takes_kernel(op) else short_name(op)
            ops[label] = f"{family} kernel k" if takes_kernel(op) else family
    text = [
        "legend: points " + " ".join(points),
        "legend: operators "
        + ", ".join(f"{k}={v}" for k, v in ops.items())
        + " (at a C3k2 point, the operator's C3k2_ form); points not listed keep the stock layer",
        "legend: Δ = change against the stock model (the study's reference trial): mAP50-95 in points, GFLOPs and "
        "latency in percent",
    ]
    return [line for entry in text for line in textwrap.wrap(entry, WIDTH, subsequent_indent="  ")]


def short_summary(summary: str, labels: Mapping[str, str]) -> str:
    """Return an ``Architecture.summary()`` with its point names replaced by their short labels."""
    parts = []
    for token in summary.split():
        point, sep, choice = token.partition("=")
        parts.append(f"{labels.get(point, point)}{sep}{choice}")
    return " ".join(parts)


def fit(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` characters: whole tokens, then ``…+N`` naming how many were left out."""
    if len(text) <= width:
        return text
    tokens = text.split()
    for keep in range(len(tokens) - 1, -1, -1):
        cut = " ".join([*tokens[:keep], f"…+{len(tokens) - keep}"])
        if len(cut) <= width:
            return cut
    return text[: max(width - 1, 0)] + "…"


def format_values(values: Mapping[str, float] | None, delta: Mapping[str, float] | None) -> str:
    """Return the objective columns (``VALUES`` wide), each value with its change against stock:
    '0.123  +0.50    6.51  -3.1%    12.3  +4.0%' (blank changes before there is a stock trial to compare with,
    all blank for a failed trial)."""
    if values is None:
        return " " * VALUES
    d = delta or {}
    dm = f"{d[MAP]:+6.2f}" if MAP in d else ""
    dg = f"{d[GFLOPS]:+.1f}%" if GFLOPS in d else ""
    dl = f"{d[LATENCY]:+.1f}%" if LATENCY in d else ""
    text = f"{values[MAP]:.3f} {dm:>6}  {values[GFLOPS]:6.2f} {dg:>6}  {values[LATENCY]:6.1f} {dl:>6}"
    return f"{text:<{VALUES}}"


def trial_line(r: TrialReport, done: int, total: int, eta_text: str, labels: Mapping[str, str]) -> str:
    """Return the console line of one finished trial, at most ``WIDTH`` characters: number, progress and ETA,
    objective values with their change against stock, front size, status (with a 'latency noisy' flag) and, in
    the room left, the architecture in layer order (short labels, cut with ``…+N``)."""
    summary, status = r.summary, SHORT_STATUS.get(r.status, r.status)
    twin = _DEDUP.search(summary)
    if twin:
        summary, status = summary[: twin.start()], f"dedup #{twin.group(1)}"
    if r.latency_noisy:
        status += " latency noisy"
    progress = f"{done}/{total}"
    head = f"#{r.number:<4} {progress:>{_done_width(total)}} {eta_text:>7}  {format_values(r.values, r.vs_stock)}"
    head += f"  {r.front:>5}  {status:<{STATUS}}"
    room = WIDTH - len(head) - 3
    if room < MIN_ARCH:  # a long status (a failure's reason): cut it, not the architecture
        head = fit_chars(head, len(head) - (MIN_ARCH - room))
        room = MIN_ARCH
    return f"{head} | {fit(short_summary(summary, labels), room)}"


def header(total: int) -> str:
    """Return the column header above the trial lines (aligned with ``trial_line``'s columns for ``total``)."""
    values = f"{'mAP50-95 Δpt':<12}  {'GFLOPs':>6} {'Δ%':>6}  {'ms':>6} {'Δ%':>6}"
    return (
        f"{'trial':<5} {'done':>{_done_width(total)}} {'ETA':>7}  {values:<{VALUES}}  {'front':>5}  "
        f"{'status':<{STATUS}} | architecture (layer order)"
    )


def _done_width(total: int) -> int:
    """Return the width of the 'done/total' column (at least its header's)."""
    return max(2 * len(str(total)) + 1, len("done"))


def fit_chars(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


class Progress:
    """``on_trial`` callback: one stderr line per finished trial (``trial_line``); the legend (``intro``) and a
    column header are printed once, with the first."""

    def __init__(self, space: SearchSpace | None = None, stream: TextIO | None = None) -> None:
        self.space = space
        self.labels = point_labels(space) if space else {}
        self.trial_seconds = 0.0
        self.finished = 0
        self.stream = stream

    def intro(self) -> list[str]:
        """Return the legend of the abbreviations (none when the space is not known)."""
        return legend(self.space) if self.space else []

    def __call__(self, r: TrialReport, done: int, total: int) -> None:
        """Print the line for trial ``r``; ``done`` of ``total`` complete trials exist now."""
        out = self.stream or sys.stderr
        if self.finished == 0:  # not before: bad input found while the study opens prints only its error line
            for line in self.intro():
                print(line, file=out, flush=True)
            print(header(total), file=out, flush=True)
        self.finished += 1
        # the trials' own seconds: the one-off warm base or supernet before the first trial is not a trial's cost
        self.trial_seconds += r.seconds
        line = trial_line(r, done, total, eta(self.trial_seconds / self.finished, total - done), self.labels)
        print(line, file=out, flush=True)


class PhaseBar:
    """``on_phase`` callback for the one-off trainings: a bar with an ETA on stderr.

    On a terminal one line is redrawn in place (at most every ``redraw_s``); otherwise (a log file, CI) one line
    is printed per finished epoch.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24, redraw_s: float = 0.5) -> None:
        self.stream = stream
        self.width = width
        self.redraw_s = redraw_s
        self.phase: str | None = None
        self.start = 0.0
        self.last_drawn = -1.0
        self.last_epoch = -1

    def line(self, phase: str, done: float, total: int, elapsed: float) -> str:
        """Return '[#####...] supernet epoch 5/16, ETA 0:03:12' for ``done`` of ``total`` epochs."""
        frac = min(done / total, 1.0) if total else 1.0
        filled = int(self.width * frac)
        bar = "#" * filled + "." * (self.width - filled)
        left = f"ETA {eta(elapsed / done, total - done)}" if done > 0 else "ETA ?"
        if done >= total:
            left = f"done in {eta(1.0, elapsed)}"
        return f"[{bar}] {phase} epoch {min(int(done), total)}/{total}, {left}"

    def __call__(self, phase: str, done: float, total: int) -> None:
        """Show ``done`` of ``total`` epochs of ``phase``."""
        out: Any = self.stream or sys.stderr
        now = time.perf_counter()
        if phase != self.phase:
            self.phase, self.start, self.last_drawn, self.last_epoch = phase, now, -1.0, -1
        text = self.line(phase, done, total, now - self.start)
        if _is_tty(out):
            finished = done >= total
            if finished or now - self.last_drawn >= self.redraw_s:
                out.write(f"\r{text}\033[K" + ("\n" if finished else ""))
                out.flush()
                self.last_drawn = now
        elif done == int(done) and int(done) > self.last_epoch and done > 0:
            self.last_epoch = int(done)
            print(text, file=out, flush=True)


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
