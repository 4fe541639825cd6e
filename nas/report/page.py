"""Where the report's figures go: a self-contained HTML page, and the study itself for optuna-dashboard."""

from __future__ import annotations

import html
from pathlib import Path

import optuna
import plotly.graph_objects as go

from ..objectives import pareto_front
from ..study import completed


def write_html(study: optuna.Study, figs: dict[str, go.Figure], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (plotly.js inlined once, no network needed to view) and return its path.

    Raises:
        OSError: the folder or file cannot be written.
    """
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
