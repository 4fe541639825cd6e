"""The report's figures (plotly): the 3-objective Pareto front (3D, and each 2D pair with dominated trials
greyed), the hypervolume history, per insertion point how often each choice appears on the Pareto front against
all trials, and a table of the Pareto trials with their architectures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from .. import objectives
from ..objectives import GFLOPS, LATENCY, MAP, bounds, counts_for_front, pareto_front, values_of
from ..study import completed
from ..study.verify import verified

GREY, FRONT, STOCK = "rgba(150,150,150,0.45)", "#d62728", "#1f77b4"


def trained(study: optuna.Study) -> list[FrozenTrial]:
    """Return the complete, trained trials that stand for themselves (no reuse of another trial's result)."""
    return [t for t in completed(study) if counts_for_front(t)]


def _dominated(trials: list[FrozenTrial], front: list[FrozenTrial]) -> list[FrozenTrial]:
    on_front = {t.number for t in front}
    return [t for t in trials if t.number not in on_front]


def _vs_stock(t: FrozenTrial) -> str:
    """Return the trial's change against the stock model as recorded, or what it is."""
    if t.user_attrs.get("reference"):
        return "the stock model (reference)"
    d = t.user_attrs.get("vs_stock")
    return f"vs stock: mAP {d[MAP]:+.2f} pt, GFLOPs {d[GFLOPS]:+.1f}%, latency {d[LATENCY]:+.1f}%" if d else ""


def _hover(t: FrozenTrial) -> str:
    v = values_of(t)
    return (
        f"#{t.number} {t.user_attrs.get('summary', '')}<br>"
        f"{MAP} {v[MAP]:.4f}, {v[GFLOPS]:.3f} GFLOPs, {v[LATENCY]:.2f} ms<br>{_vs_stock(t)}"
    )


def _groups(trials: list[FrozenTrial], front: list[FrozenTrial]) -> list[tuple[list[FrozenTrial], dict, str]]:
    """Return (trials, marker, legend name) for the dominated trials, the front and the stock reference."""
    reference = [t for t in trials if t.user_attrs.get("reference")]
    return [
        (_dominated(trials, front), {"color": GREY}, "dominated"),
        (front, {"color": FRONT}, "Pareto front"),
        (reference, {"color": STOCK, "symbol": "diamond"}, "stock model (reference)"),
    ]


def _axis(trials: list[FrozenTrial], name: str) -> list[float]:
    return [values_of(t)[name] for t in trials]


def pareto_3d(trials: list[FrozenTrial], front: list[FrozenTrial]) -> go.Figure:
    """Return the 3D scatter of all trained trials, the Pareto front highlighted."""
    fig = go.Figure()
    for group, marker, name in _groups(trials, front):
        fig.add_trace(
            go.Scatter3d(
                x=_axis(group, GFLOPS),
                y=_axis(group, LATENCY),
                z=_axis(group, MAP),
                mode="markers",
                name=name,
                marker={"size": 4, **marker},
                text=[_hover(t) for t in group],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title="Pareto front: mAP50-95 vs GFLOPs vs latency",
        scene={"xaxis_title": GFLOPS, "yaxis_title": LATENCY, "zaxis_title": MAP},
    )
    return fig


def pareto_pairs(trials: list[FrozenTrial], front: list[FrozenTrial]) -> go.Figure:
    """Return the three 2D projections; trials off the 3-objective front are grey."""
    pairs = [(GFLOPS, MAP), (LATENCY, MAP), (GFLOPS, LATENCY)]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{y} vs {x}" for x, y in pairs])
    for col, (x, y) in enumerate(pairs, 1):
        for group, marker, name in _groups(trials, front):
            fig.add_trace(
                go.Scatter(
                    x=_axis(group, x),
                    y=_axis(group, y),
                    mode="markers",
                    name=name,
                    marker={"size": 7, **marker},
                    text=[_hover(t) for t in group],
                    hoverinfo="text",
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=x, row=1, col=col)
        fig.update_yaxes(title_text=y, row=1, col=col)
    fig.update_layout(title="Pareto front, pairwise (dominated trials greyed)")
    return fig


def hypervolume_history(trials: list[FrozenTrial]) -> go.Figure:
    """Return the hypervolume of the front after each trial, objectives scaled to [0, 1] by their observed range."""
    ordered = sorted(trials, key=lambda t: t.number)
    values = [values_of(t) for t in ordered]
    lo, hi = bounds(values)
    hv = objectives.hypervolume_history(values, lo, hi)
    fig = go.Figure(go.Scatter(x=[t.number for t in ordered], y=hv, mode="lines+markers", name="hypervolume"))
    fig.update_layout(
        title="Hypervolume history (objectives scaled to [0, 1], reference point 1.1)",
        xaxis_title="trial",
        yaxis_title="hypervolume",
    )
    return fig


def choice_frequencies(trials: list[FrozenTrial], front: list[FrozenTrial]) -> go.Figure:
    """Return, per insertion point, the share of each choice among all trials and among Pareto trials."""
    points = sorted({p for t in trials for p in t.user_attrs.get("architecture", {})})
    fig = make_subplots(rows=max(len(points), 1), cols=1, subplot_titles=points, vertical_spacing=0.04)
    for row, point in enumerate(points, 1):
        all_counts = Counter(t.user_attrs["architecture"][point].split("(")[0] for t in trials)
        front_counts = Counter(t.user_attrs["architecture"][point].split("(")[0] for t in front)
        choices = sorted(all_counts)
        for counts, total, name, colour in (
            (all_counts, len(trials), "all trials", GREY),
            (front_counts, len(front), "Pareto front", FRONT),
        ):
            fig.add_trace(
                go.Bar(
                    x=choices,
                    y=[counts[c] / max(total, 1) for c in choices],
                    name=name,
                    marker_color=colour,
                    showlegend=row == 1,
                ),
                row=row,
                col=1,
            )
    fig.update_layout(
        title="Choice frequency per insertion point: Pareto front vs all trials",
        barmode="group",
        height=260 * max(len(points), 1),
    )
    return fig


def _verified_cell(record: Mapping[str, Any] | None) -> str:
    """Return a verified record as '0.4123 (16 ep)', or '' when the trial is not verified."""
    return f"{record[MAP]:.4f} ({record['epochs']} ep)" if record else ""


def pareto_table(front: list[FrozenTrial], checked: Mapping[int, Mapping[str, Any] | None] | None = None) -> go.Figure:
    """Return a table of the Pareto trials with their objectives and architectures; ``checked`` maps a trial number
    to its verified record (``nas.study.verify.verified``), shown beside the proxy mAP50-95 (empty where none)."""
    rows = sorted(front, key=lambda t: (-values_of(t)[MAP], t.number))
    checked = checked or {}
    columns = ["trial", MAP, f"verified {MAP}", GFLOPS, LATENCY, "vs stock", "params", "key", "architecture"]
    fig = go.Figure(
        go.Table(
            header={"values": columns},
            cells={
                "values": [
                    [t.number for t in rows],
                    [f"{v:.4f}" for v in _axis(rows, MAP)],
                    [_verified_cell(checked.get(t.number)) for t in rows],
                    [f"{v:.3f}" for v in _axis(rows, GFLOPS)],
                    [f"{v:.2f}" for v in _axis(rows, LATENCY)],
                    [_vs_stock(t).removeprefix("vs stock: ") for t in rows],
                    [f"{t.user_attrs.get('params', 0):,}" for t in rows],
                    [t.user_attrs.get("key", "") for t in rows],
                    [t.user_attrs.get("summary", "") for t in rows],
                ]
            },
            columnwidth=[40, 70, 90, 60, 70, 220, 80, 100, 420],
        )
    )
    # plotly's default margins take 180 px: keep them small so every row shows
    margin = {"t": 40, "b": 10, "l": 10, "r": 10}
    fig.update_layout(title="Pareto trials", height=90 + 30 * (len(rows) + 1), margin=margin)
    return fig


def figures(study: optuna.Study) -> dict[str, go.Figure]:
    """Return the report's figures by id (also the ids they are saved under in the study)."""
    trials, front = trained(study), pareto_front(study)
    return {
        "nas-pareto-3d": pareto_3d(trials, front),
        "nas-pareto-pairs": pareto_pairs(trials, front),
        "nas-hypervolume": hypervolume_history(trials),
        "nas-choice-frequency": choice_frequencies(trials, front),
        "nas-pareto-table": pareto_table(front, {t.number: verified(study, t.number) for t in front}),
    }
