"""The report's figures (plotly), each sized for a half-width optuna-dashboard card.

optuna-dashboard 0.21 shows a saved figure in a half-width card (``Grid xs=6``) whose plot div is 450 px high with
the card's ``overflow: hidden``: a taller figure is cut off, never scrolled. At a 1280 px viewport (side bar
folded) the div is 568 px wide, 648 px at 1440. So every figure here has an explicit height of at most
``CARD_HEIGHT``, no fixed width (plotly fills the card), small margins, the legend in one row above the plot, and
one plot per figure (the pairwise views are three figures: three subplots side by side do not fit 568 px).

Figures, by id: the 3-objective front in 3D, the three 2D pairs (latency on a log axis with IQR error bars), the
normalised hypervolume history, the share of each choice per insertion point on the front against all trials (one
heatmap), a parallel-coordinates view from the choices to the objectives, and a compact table of the Pareto
trials. In every scatter the stock model (the reference, trial 0) has its own colour, symbol and legend entry,
and hovering a point spells out its architecture in layer order and its change against the stock model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from modules.table import OPERATORS, is_stock

from ..objectives import (
    GFLOPS,
    LATENCY,
    MAP,
    change,
    counts_for_front,
    normalised_hypervolume_history,
    pareto_front,
    reference_trial,
    value,
    values_of,
)
from ..study import completed
from ..study.records import record
from ..study.verify import verified

CARD_HEIGHT = 450  # px: optuna-dashboard's plot div for a saved figure (the card hides what is below)
CARD_WIDTH = 568  # px: that div's width at a 1280 px viewport; figures set no width and fill it
HEIGHT = 440  # every dashboard figure's height: the card's, less a few px so nothing touches its edge
DOMINATED, FRONT, STOCK = "rgba(100,100,100,0.6)", "#d62728", "#1f77b4"
LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0.0, "font": {"size": 11}}
MARGIN = {"l": 10, "r": 10, "t": 70, "b": 10}  # axes keep their labels by automargin
LABELS = {MAP: "mAP50-95", GFLOPS: "GFLOPs", LATENCY: "latency (ms, log)"}
POINTS_PER_LINE = 2  # architecture entries per hover line: with C3k2_Conv2Former(k=13) names, 3 overflow 568 px


def trained(study: optuna.Study) -> list[FrozenTrial]:
    """Return the complete, trained trials that stand for themselves (no reuse of another trial's result)."""
    return [t for t in completed(study) if counts_for_front(t)]


def _title(text: str, note: str = "") -> dict[str, Any]:
    """Return a layout title: ``text``, and ``note`` in small type on a second line."""
    text = f"{text}<br><sup>{note}</sup>" if note else text
    return {"text": text, "font": {"size": 14}, "x": 0.01}


def architecture_items(t: FrozenTrial) -> list[str]:
    """Return the trial's choices in the stored (layer) order as 'point: Operator' strings (empty if none)."""
    return [f"{point}: {op}" for point, op in record(t, "architecture", {}).items()]


def architecture_text(t: FrozenTrial, per_line: int = POINTS_PER_LINE) -> str:
    """Return the trial's architecture spelled out in layer order, ``per_line`` points a line (``<br>`` between),
    e.g. ``down_p2: GhostV2, c3k2_p2: C3k2_Conv2Former(k=13)``; '' when the trial records none."""
    items = architecture_items(t)
    return "<br>".join(", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line))


def vs_stock(t: FrozenTrial, reference: FrozenTrial | None) -> str:
    """Return the trial's change against the stock model ('vs stock: mAP +1.20 pt, GFLOPs -3.1%, latency +4.0%'),
    'the stock model (reference)' for the reference itself, or '' when there is nothing to compare with."""
    if t.user_attrs.get("reference"):
        return "the stock model (reference)"
    d = change(values_of(t), values_of(reference)) if reference else t.user_attrs.get("vs_stock")
    return f"vs stock: mAP {d[MAP]:+.2f} pt, GFLOPs {d[GFLOPS]:+.1f}%, latency {d[LATENCY]:+.1f}%" if d else ""


def iqr_ms(t: FrozenTrial) -> float:
    """Return the interquartile range of the trial's latency samples in ms (0 when not recorded)."""
    return float((record(t, "latency") or {}).get("iqr_ms") or 0.0)


def hover(t: FrozenTrial, reference: FrozenTrial | None, group: str) -> str:
    """Return a point's hover label: number and group, objective values, change against the stock model and the
    architecture in layer order."""
    v = values_of(t)
    lines = [
        f"<b>#{t.number}</b> ({group})",
        f"{MAP} {v[MAP]:.4f} · {v[GFLOPS]:.3f} GFLOPs · {v[LATENCY]:.2f} ms (IQR {iqr_ms(t):.2f})",
        vs_stock(t, reference),
        architecture_text(t),
    ]
    return "<br>".join(line for line in lines if line)


def groups(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial]) -> list[tuple[str, list[FrozenTrial], dict]]:
    """Return (legend name, trials, marker) for the dominated trials, the Pareto front and the stock model; the
    stock model is only in its own group (drawn last, on top)."""
    on_front = {t.number for t in front}
    stock = [t for t in trials if t.user_attrs.get("reference")]
    rest = [t for t in trials if not t.user_attrs.get("reference")]
    line = {"width": 1, "color": "black"}
    return [
        ("dominated", [t for t in rest if t.number not in on_front], {"color": DOMINATED, "symbol": "circle"}),
        ("Pareto front", [t for t in rest if t.number in on_front], {"color": FRONT, "symbol": "circle"}),
        ("stock model (reference)", stock, {"color": STOCK, "symbol": "diamond", "line": line}),
    ]


def _axis(trials: Sequence[FrozenTrial], name: str) -> list[float]:
    return [values_of(t)[name] for t in trials]


def _stock_group(name: str, front: Sequence[FrozenTrial], t: FrozenTrial) -> str:
    """Return the hover group of a point of the stock trace, which may also stand on the front."""
    return name + (", on the Pareto front" if any(f.number == t.number for f in front) else "")


def pareto_3d(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial], reference: FrozenTrial | None) -> go.Figure:
    """Return the 3D scatter of all trained trials (latency on a log axis), the front and stock model marked.

    Kept at card size rather than replaced by the pairs: with the legend in one row, zero side margins and short
    axis titles the scene gets the whole card, and turning it is the one view that shows the three-way trade-off.
    """
    fig = go.Figure()
    for name, group, marker in groups(trials, front):
        size = 7 if marker["symbol"] == "diamond" else 4
        if name == "dominated":  # the scene's shading lightens grey: a darker one stays visible on its background
            marker = {**marker, "color": "rgba(80,80,80,0.8)"}
        fig.add_trace(
            go.Scatter3d(
                x=_axis(group, GFLOPS),
                y=_axis(group, LATENCY),
                z=_axis(group, MAP),
                mode="markers",
                name=name,
                marker={**marker, "size": size},
                hovertext=[hover(t, reference, _stock_group(name, front, t)) for t in group],
                hoverinfo="text",
            )
        )
    axis = {"title": {"font": {"size": 11}}, "tickfont": {"size": 9}}
    fig.update_layout(
        title=_title("Pareto front in 3D", "drag to turn; hover a point for its architecture"),
        height=HEIGHT,
        margin={"l": 0, "r": 0, "t": 70, "b": 0},
        legend=LEGEND,
        hoverlabel={"font": {"size": 11}},
        scene={
            "xaxis": {**axis, "title": {**axis["title"], "text": "GFLOPs"}},
            "yaxis": {**axis, "title": {**axis["title"], "text": "latency ms"}, "type": "log"},
            "zaxis": {**axis, "title": {**axis["title"], "text": "mAP50-95"}, **_map_range(trials, MAP)},
            "camera": {"eye": {"x": 1.6, "y": -1.6, "z": 0.8}},
            "aspectmode": "cube",
        },
    )
    return fig


def _map_range(trials: Sequence[FrozenTrial], name: str) -> dict[str, Any]:
    """Return the axis settings of ``name`` if it is mAP50-95: from 0 (less a margin for the markers) up, and to
    0.01 when every value is 0 (plotly would span -1 to 1, as if negative mAP existed); nothing for the others."""
    if name != MAP:
        return {}
    top = max((value(t, MAP) for t in trials), default=0.0) or 0.01
    return {"range": [-0.04 * top, 1.08 * top]}


def _latency_error(group: Sequence[FrozenTrial]) -> dict[str, Any]:
    """Return error bars spanning each trial's latency IQR (half of it either side of the median)."""
    return {"type": "data", "array": [iqr_ms(t) / 2 for t in group], "visible": True, "thickness": 1, "width": 0}


def pareto_pair(
    trials: Sequence[FrozenTrial],
    front: Sequence[FrozenTrial],
    reference: FrozenTrial | None,
    x: str,
    y: str,
) -> go.Figure:
    """Return the ``y`` against ``x`` scatter of all trained trials (off the 3-objective front: grey), latency on
    a log axis with its IQR as error bars."""
    fig = go.Figure()
    for name, group, marker in groups(trials, front):
        size = 11 if marker["symbol"] == "diamond" else 7
        errors = {f"error_{axis}": _latency_error(group) for axis, n in (("x", x), ("y", y)) if n == LATENCY}
        fig.add_trace(
            go.Scatter(
                x=_axis(group, x),
                y=_axis(group, y),
                mode="markers",
                name=name,
                marker={**marker, "size": size},
                hovertext=[hover(t, reference, _stock_group(name, front, t)) for t in group],
                hoverinfo="text",
                **errors,
            )
        )
    fig.update_xaxes(title_text=LABELS[x], type="log" if x == LATENCY else "linear", **_map_range(trials, x))
    fig.update_yaxes(title_text=LABELS[y], type="log" if y == LATENCY else "linear", **_map_range(trials, y))
    note = "grey: dominated in all three objectives" + ("; bars: latency IQR" if LATENCY in (x, y) else "")
    fig.update_layout(
        title=_title(f"{LABELS[y].split(' (')[0]} vs {LABELS[x].split(' (')[0]}", note),
        height=HEIGHT,
        margin=MARGIN,
        legend=LEGEND,
        hoverlabel={"font": {"size": 11}},
    )
    return fig


def hypervolume_history(trials: Sequence[FrozenTrial], reference: FrozenTrial | None) -> go.Figure:
    """Return the normalised hypervolume of the front after each trial (``objectives.normalised_hypervolume_history``:
    mAP50-95 as is, GFLOPs and latency divided by the stock model's, reference point mAP 0 and 2x stock cost).

    Without a stock trial the earliest trained trial stands in for it, and the title says so.
    """
    ordered = sorted(trials, key=lambda t: t.number)
    scale = reference or ordered[0]
    hv = normalised_hypervolume_history([values_of(t) for t in ordered], values_of(scale))
    by = f"the stock model (#{scale.number})" if reference else f"trial #{scale.number} (no stock trial)"
    fig = go.Figure(go.Scatter(x=[t.number for t in ordered], y=hv, mode="lines+markers", name="hypervolume"))
    if reference in ordered:
        name, _, marker = groups([reference], [])[-1]
        at = hv[ordered.index(reference)]
        tip = f"#{reference.number}: the stock model (reference) alone: hypervolume {at:.4f} = its {MAP}"
        fig.add_trace(
            go.Scatter(
                x=[reference.number],
                y=[at],
                mode="markers",
                name=name,
                hovertext=[tip],
                marker={**marker, "size": 11},
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=_title(
            f"Hypervolume history, normalised by {by}",
            "mAP as is, GFLOPs and latency ÷ its; reference point: mAP 0, 2× its GFLOPs, 2× its latency",
        ),
        xaxis_title="trial",
        yaxis={"title": {"text": "hypervolume (max 4; stock alone = its mAP)"}, "rangemode": "tozero"},
        height=HEIGHT,
        margin={**MARGIN, "t": 80},
        # the history never falls below its first value, so the bottom right of the plot is always empty
        legend={**LEGEND, "orientation": "v", "x": 0.99, "xanchor": "right", "y": 0.02, "yanchor": "bottom"},
    )
    return fig


def choice_label(op: str) -> str:
    """Return the heatmap column of a choice: ``stock`` for the stock layer, else the operator's family
    (``C3k2_GhostV2`` and ``GhostV2`` are both ``GhostV2``); kernel arguments are dropped."""
    name = op.split("(")[0]
    if is_stock(name):
        return "stock"
    return OPERATORS[name].family.name if name in OPERATORS else name


def choice_shares(
    trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial]
) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[int, int]], tuple[int, int]]:
    """Return (insertion points in layer order, choice columns, {(point, column): (on the front, among all)},
    (front size, trials counted)) over the trials that record an architecture."""
    trials = [t for t in trials if record(t, "architecture")]
    numbers = {t.number for t in front}
    points = list(dict.fromkeys(p for t in trials for p in record(t, "architecture")))
    counts: Counter[tuple[str, str]] = Counter()
    on_front: Counter[tuple[str, str]] = Counter()
    for t in trials:
        for point, op in record(t, "architecture").items():
            counts[point, choice_label(op)] += 1
            on_front[point, choice_label(op)] += t.number in numbers
    labels = {c for _, c in counts}
    columns = [c for c in ("stock", *(o.family.name for o in OPERATORS.values())) if c in labels]
    columns = list(dict.fromkeys(columns)) + sorted(labels - set(columns))
    cells = {k: (on_front[k], n) for k, n in counts.items()}
    return points, columns, cells, (sum(t.number in numbers for t in trials), len(trials))


def _percent(k: int, n: int) -> float:
    return 100.0 * k / n if n else 0.0


def _cell(point: str, column: str, counts: tuple[int, int] | None, totals: tuple[int, int]) -> tuple[Any, ...]:
    """Return one heatmap cell: (front %, 'front% / all%' text, hover text); no colour where never tried."""
    if counts is None:
        return math.nan, "", f"{point}: {column} never tried"
    (k, n), (n_front, n_all) = counts, totals
    tip = f"{point}: {column}<br>Pareto front: {k} of {n_front}<br>all trials: {n} of {n_all}"
    return _percent(k, n_front), f"{_percent(k, n_front):.0f}/{_percent(n, n_all):.0f}", tip


def choice_heatmap(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial]) -> go.Figure:
    """Return one heatmap, insertion points x choices: colour the share of the Pareto trials that use the choice
    at the point, text 'front% / all%' (the share among all trained trials beside it); blank where never tried."""
    points, columns, cells, totals = choice_shares(trials, front)
    grid = [[_cell(p, c, cells.get((p, c)), totals) for c in columns] for p in points]
    z, text, tips = ([[cell[i] for cell in row] for row in grid] for i in range(3))
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=points,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 10},
            hovertext=tips,
            hoverinfo="text",
            colorscale="Reds",
            zmin=0,
            zmax=100,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "front %", "side": "right"}, "thickness": 12},
        )
    )
    fig.update_layout(
        title=_title("Choices: share on the Pareto front vs all trials", "cell: front % / all %; colour: front %"),
        height=HEIGHT,
        margin=MARGIN,
        yaxis={"autorange": "reversed", "tickfont": {"size": 10}},
        xaxis={"side": "bottom", "tickfont": {"size": 10}},
    )
    return fig


def _short(column: str) -> str:
    """Return a family's short label for a crowded axis (``GhostV2`` -> ``Ghost``), else the column itself."""
    return next((o.family.short for o in OPERATORS.values() if o.family.name == column), column)


def parallel_coordinates(
    trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial], reference: FrozenTrial | None
) -> go.Figure:
    """Return parallel coordinates from each insertion point's choice (a categorical axis) to the three objectives;
    lines coloured dominated / Pareto front / stock model, the stock model drawn last."""
    trials = [t for t in trials if record(t, "architecture")]
    points, columns, _, _ = choice_shares(trials, front)
    ordered = [t for name, group, _ in groups(trials, front) for t in group]
    colour = [i for i, (_, group, _) in enumerate(groups(trials, front)) for _ in group]
    code = {c: i for i, c in enumerate(columns)}
    # every choice axis has the same categories in the same order: only the first names them, since names on
    # each would overlap the next axis at card width
    dims = [
        {
            "label": p,
            "values": [code[choice_label(record(t, "architecture").get(p, "?"))] for t in ordered],
            "tickvals": list(range(len(columns))),
            "ticktext": [_short(c) if i == 0 else "" for c in columns],
            "range": [0, max(len(columns) - 1, 1)],
        }
        for i, p in enumerate(points)
    ]
    formats = {MAP: ".3f", GFLOPS: ".1f", LATENCY: ".1f"}
    dims += [
        {"label": LABELS[n].split(" (")[0], "values": _axis(ordered, n), "tickformat": formats[n]}
        for n in (MAP, GFLOPS, LATENCY)
    ]
    scale = [[0.0, DOMINATED], [0.33, DOMINATED], [0.34, FRONT], [0.66, FRONT], [0.67, STOCK], [1.0, STOCK]]
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={
                "color": colour,
                "cmin": 0,
                "cmax": 2,
                "colorscale": scale,
                "showscale": True,
                "colorbar": {
                    "tickvals": [1 / 3, 1, 5 / 3],
                    "ticktext": ["dominated", "front", "stock"],
                    "thickness": 10,
                    "len": 0.6,
                },
            },
            labelangle=-35,
            labelfont={"size": 10},
            tickfont={"size": 9},
        )
    )
    fig.update_layout(
        title=_title("From choices to objectives", "drag along an axis to filter"),
        height=HEIGHT,
        margin={"l": 45, "r": 30, "t": 160, "b": 25},
    )
    return fig


def _verified_cell(rec: Mapping[str, Any] | None) -> str:
    """Return a verified record as '0.4123 (16 ep)', or '' when the trial is not verified."""
    return f"{rec[MAP]:.4f} ({rec['epochs']} ep)" if rec else ""


def front_rows(front: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Return the Pareto trials in table order: highest mAP50-95 first, then by trial number."""
    return sorted(front, key=lambda t: (-values_of(t)[MAP], t.number))


def _compact_change(t: FrozenTrial, reference: FrozenTrial | None) -> str:
    """Return the change against the stock model in one short line: '+1.2 pt -3% +4%' (mAP, GFLOPs, latency)."""
    text = vs_stock(t, reference)
    if not text.startswith("vs stock"):
        return "stock" if text else ""
    d = change(values_of(t), values_of(reference)) if reference else t.user_attrs["vs_stock"]
    return f"{d[MAP]:+.1f} pt {d[GFLOPS]:+.0f}% {d[LATENCY]:+.0f}%"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


TABLE_ROW, TABLE_HEADER, TABLE_CHROME = 22, 36, 60  # px: a row, the header (two lines), the title and margins
TABLE_ROWS = (CARD_HEIGHT - 10 - TABLE_HEADER - TABLE_CHROME) // TABLE_ROW  # rows that fit in the card


def pareto_table(
    front: Sequence[FrozenTrial],
    checked: Mapping[int, Mapping[str, Any] | None] | None = None,
    reference: FrozenTrial | None = None,
) -> go.Figure:
    """Return a compact table of the Pareto trials for the dashboard card: trial, mAP50-95, verified mAP50-95
    (``checked`` maps a trial number to its record from ``nas.study.verify.verified``), GFLOPs, latency, change
    against the stock model and a clipped summary; one line a row, as many rows as fit the card (best mAP50-95
    first; the title says when some are left to the report, which lists them all)."""
    checked = checked or {}
    rows = front_rows(front)
    shown = rows[:TABLE_ROWS]
    columns = ["trial", MAP, f"verified {MAP}", GFLOPS, "latency ms", "vs stock: mAP, GFLOPs, lat.", "summary"]
    cells = [
        [t.number for t in shown],  # plain numbers: callers look trials up by them
        [f"{v:.4f}" for v in _axis(shown, MAP)],
        [_verified_cell(checked.get(t.number)) for t in shown],
        [f"{v:.2f}" for v in _axis(shown, GFLOPS)],
        [f"{v:.2f}" for v in _axis(shown, LATENCY)],
        [_compact_change(t, reference) for t in shown],
        ["stock model" if t.user_attrs.get("reference") else _clip(t.user_attrs.get("summary", ""), 22) for t in shown],
    ]
    font = {"size": 10}
    fig = go.Figure(
        go.Table(
            header={"values": columns, "font": font, "height": TABLE_HEADER, "align": "left"},
            cells={"values": cells, "font": font, "height": TABLE_ROW, "align": "left"},
            columnwidth=[46, 58, 80, 48, 48, 112, 134],
        )
    )
    note = f"the best {len(shown)} of {len(rows)} by {MAP}; all in the report" if len(shown) < len(rows) else ""
    height = TABLE_CHROME + TABLE_HEADER + TABLE_ROW * max(len(shown), 1) + 10
    margin = {"t": TABLE_CHROME - 10, "b": 5, "l": 5, "r": 5}
    fig.update_layout(title=_title("Pareto trials", note), height=height, margin=margin)
    return fig


def figures(study: optuna.Study) -> dict[str, go.Figure]:
    """Return the report's figures by id (also the ids they are saved under in the study), each sized for a
    half-width optuna-dashboard card.

    Raises:
        ValueError: the study has no trained trial (nothing to plot).
    """
    trials, front, reference = trained(study), pareto_front(study), reference_trial(study)
    if not trials:
        raise ValueError(f"study {study.study_name!r} has no complete, trained trial to plot")
    pairs = {
        "nas-pareto-map-gflops": (GFLOPS, MAP),
        "nas-pareto-map-latency": (LATENCY, MAP),
        "nas-pareto-latency-gflops": (GFLOPS, LATENCY),
    }
    return {
        "nas-pareto-3d": pareto_3d(trials, front, reference),
        **{fid: pareto_pair(trials, front, reference, x, y) for fid, (x, y) in pairs.items()},
        "nas-hypervolume": hypervolume_history(trials, reference),
        "nas-choice-frequency": choice_heatmap(trials, front),
        "nas-parallel": parallel_coordinates(trials, front, reference),
        "nas-pareto-table": pareto_table(front, {t.number: verified(study, t.number) for t in front}, reference),
    }
