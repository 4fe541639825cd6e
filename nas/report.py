"""``python -m nas.report``: a self-contained HTML report of a study, and the same figures for optuna-dashboard.

Figures: the 3-objective Pareto front (3D, and each 2D pair with dominated trials greyed), the hypervolume
history, per insertion point how often each choice appears on the Pareto front against all trials, and a
table of the Pareto trials with their architectures.
"""

from __future__ import annotations

import html
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from .errors import ArgumentParser, UserError, cli
from .export import load_study
from .pareto import hypervolume
from .study import DEFAULT_STORAGE, METRIC_NAMES, completed, pareto_front

GREY, FRONT = "rgba(150,150,150,0.45)", "#d62728"


def _trained(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in completed(study) if t.user_attrs.get("trained") and "dedup_of" not in t.user_attrs]


def _dominated(trials: list[FrozenTrial], front: list[FrozenTrial]) -> list[FrozenTrial]:
    on_front = {t.number for t in front}
    return [t for t in trials if t.number not in on_front]


def _hover(t: FrozenTrial) -> str:
    m, g, lat = t.values
    return f"#{t.number} {t.user_attrs.get('summary', '')}<br>mAP50-95 {m:.4f}, {g:.3f} GFLOPs, {lat:.2f} ms"


def pareto_3d(trials: list[FrozenTrial], front: list[FrozenTrial]) -> go.Figure:
    """Return the 3D scatter of all trained trials, the Pareto front highlighted."""
    fig = go.Figure()
    for group, colour, name in ((_dominated(trials, front), GREY, "dominated"), (front, FRONT, "Pareto front")):
        fig.add_trace(
            go.Scatter3d(
                x=[t.values[1] for t in group],
                y=[t.values[2] for t in group],
                z=[t.values[0] for t in group],
                mode="markers",
                name=name,
                marker={"size": 4, "color": colour},
                text=[_hover(t) for t in group],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title="Pareto front: mAP50-95 vs GFLOPs vs latency",
        scene={"xaxis_title": METRIC_NAMES[1], "yaxis_title": METRIC_NAMES[2], "zaxis_title": METRIC_NAMES[0]},
    )
    return fig


def pareto_pairs(trials: list[FrozenTrial], front: list[FrozenTrial]) -> go.Figure:
    """Return the three 2D projections; trials off the 3-objective front are grey."""
    pairs = [(1, 0), (2, 0), (1, 2)]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{METRIC_NAMES[y]} vs {METRIC_NAMES[x]}" for x, y in pairs])
    dominated = _dominated(trials, front)
    for col, (x, y) in enumerate(pairs, 1):
        for group, colour, name in ((dominated, GREY, "dominated"), (front, FRONT, "Pareto front")):
            fig.add_trace(
                go.Scatter(
                    x=[t.values[x] for t in group],
                    y=[t.values[y] for t in group],
                    mode="markers",
                    name=name,
                    marker={"color": colour, "size": 7},
                    text=[_hover(t) for t in group],
                    hoverinfo="text",
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=METRIC_NAMES[x], row=1, col=col)
        fig.update_yaxes(title_text=METRIC_NAMES[y], row=1, col=col)
    fig.update_layout(title="Pareto front, pairwise (dominated trials greyed)")
    return fig


def hypervolume_history(trials: list[FrozenTrial]) -> go.Figure:
    """Return the hypervolume of the front after each trial, objectives scaled to [0, 1] by their observed range."""
    ordered = sorted(trials, key=lambda t: t.number)
    values = [list(t.values) for t in ordered]
    cols = list(zip(*values, strict=True))
    lo, hi = [min(c) for c in cols], [max(c) for c in cols]
    hv = [hypervolume(values[: i + 1], lo, hi) for i in range(len(values))]
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


def pareto_table(front: list[FrozenTrial]) -> go.Figure:
    """Return a table of the Pareto trials with their objectives and architectures."""
    rows = sorted(front, key=lambda t: -t.values[0])
    fig = go.Figure(
        go.Table(
            header={"values": ["trial", *METRIC_NAMES, "params", "key", "architecture"]},
            cells={
                "values": [
                    [t.number for t in rows],
                    [f"{t.values[0]:.4f}" for t in rows],
                    [f"{t.values[1]:.3f}" for t in rows],
                    [f"{t.values[2]:.2f}" for t in rows],
                    [f"{t.user_attrs.get('params', 0):,}" for t in rows],
                    [t.user_attrs.get("key", "") for t in rows],
                    [t.user_attrs.get("summary", "") for t in rows],
                ]
            },
            columnwidth=[40, 70, 60, 70, 80, 100, 420],
        )
    )
    fig.update_layout(title="Pareto trials", height=120 + 30 * len(rows))
    return fig


def figures(study: optuna.Study) -> dict[str, go.Figure]:
    """Return the report's figures by id (also the ids they are saved under in the study)."""
    trials, front = _trained(study), pareto_front(study)
    return {
        "nas-pareto-3d": pareto_3d(trials, front),
        "nas-pareto-pairs": pareto_pairs(trials, front),
        "nas-hypervolume": hypervolume_history(trials),
        "nas-choice-frequency": choice_frequencies(trials, front),
        "nas-pareto-table": pareto_table(front),
    }


def write_html(study: optuna.Study, figs: dict[str, go.Figure], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (plotly.js inlined once, no network needed to view) and return its path."""
    parts = [
        f"<h1>Study {html.escape(study.study_name)}</h1>",
        f"<p>{len(completed(study))} complete trials, Pareto front of {len(pareto_front(study))}. "
        f"Dataset: {html.escape(str(study.user_attrs.get('dataset', '')))}. "
        f"Base: {html.escape(str(study.user_attrs.get('base_model', '')))}.</p>",
    ]
    for i, (fid, fig) in enumerate(figs.items()):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, div_id=fid))
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>NAS report</title></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def save_to_dashboard(study: optuna.Study, figs: dict[str, go.Figure]) -> None:
    """Store the figures in the study so optuna-dashboard shows them (same ids: re-running overwrites)."""
    from optuna_dashboard import save_plotly_graph_object

    for fid, fig in figs.items():
        save_plotly_graph_object(study, fig, graph_object_id=fid)


@cli
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nas.report``; return the exit status (0 ok, 2 bad input)."""
    p = ArgumentParser(prog="python -m nas.report", description=__doc__)
    p.add_argument("--study", required=True, help="study name in the storage")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--out", default="report", help="output folder for index.html (default: report/)")
    args = p.parse_args(argv)
    study = load_study(args.storage, args.study)
    if not _trained(study):
        raise UserError(f"study {args.study!r} has no complete, trained trial yet")
    figs = figures(study)
    try:
        path = write_html(study, figs, Path(args.out))
    except OSError as e:
        raise UserError(f"cannot write the report to {args.out}: {e.strerror or e}") from e
    try:
        save_to_dashboard(study, figs)
    except Exception as e:  # the HTML is written; a storage that refuses the figures must not look like a crash
        raise UserError(f"wrote {path}, but could not save the figures into the study: {e}") from e
    print(f"wrote {path}; figures saved to the study for optuna-dashboard", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
