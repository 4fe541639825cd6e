"""Where the report's figures go: a self-contained HTML page, and the study itself for optuna-dashboard.

The page: the study's setting in a header, the caveats in a warning box, a table of contents, every figure full
width (copies laid out taller than the dashboard's cards), and the Pareto trials as an HTML table with the export
command of each. plotly.js is inlined once, so the page needs no network.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from ..caveats import study_caveats
from ..objectives import GFLOPS, LATENCY, MAP, pareto_front, reference_trial, values_of
from ..study import DEFAULT_STORAGE, completed
from ..study.verify import verified
from .figures import architecture_items, front_rows, iqr_ms, trained, vs_stock

TABLE_ID = "nas-pareto-table"
PAGE_HEIGHT = 600  # px: a figure's height on the page, where it has the full width
TALL = {"nas-pareto-3d": 700}  # figures that read better taller still
ROW_PX = 32  # the heatmap's px per insertion point on the page

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 24px 48px; color: #222 }
h1 { font-size: 22px; margin: 20px 0 8px } h2 { font-size: 17px; margin: 28px 0 6px }
dl.setting { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 }
dl.setting dt { color: #666 } dl.setting dd { margin: 0 }
.caveats { background: #fff4e5; border: 1px solid #f0a030; border-left: 6px solid #e67e00; padding: 8px 16px;
  margin: 12px 0 }
.caveats h2 { margin: 4px 0; color: #8a4b00 }
nav.toc ol { columns: 2; margin: 4px 0 }
table.pareto { border-collapse: collapse; width: 100%; font-size: 13px }
table.pareto th, table.pareto td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left;
  vertical-align: top }
table.pareto tr.stock { background: #e8f0fb }
table.pareto td.num { text-align: right; white-space: nowrap }
code { font-size: 12px; background: #f4f4f4; padding: 1px 3px; word-break: break-all }
.figure { margin: 8px 0 }
"""


def _title_text(fig: go.Figure, fid: str) -> str:
    """Return a figure's title without its small-type note, or its id when it has none."""
    text = fig.layout.title.text or fid
    return text.split("<br>")[0]


def page_copy(fid: str, fig: go.Figure) -> go.Figure:
    """Return a copy of a dashboard figure laid out for the page's full width: taller, the heatmap by its rows."""
    copy = go.Figure(fig)
    height = TALL.get(fid, PAGE_HEIGHT)
    if fig.data and isinstance(fig.data[0], go.Heatmap):
        height = max(height, 160 + ROW_PX * len(fig.data[0].y or ()))
    copy.update_layout(height=height)
    return copy


def export_command(study_name: str, storage: str, number: int) -> str:
    """Return the shell command that exports trial ``number`` of the study as a YAML Ultralytics trains."""
    q = shlex.quote
    return (
        f"python -m nas.export --study {q(study_name)} --storage {q(storage)} --trial {number} "
        f"--out trial_{number}.yaml"
    )


def _setting(study: optuna.Study, front: list[FrozenTrial]) -> list[tuple[str, str]]:
    """Return the header's (label, value) rows: what the numbers were measured on."""
    attrs = study.user_attrs
    schedule: Mapping[str, Any] = attrs.get("schedule") or {}
    runtime: Mapping[str, Any] = attrs.get("runtime") or {}
    return [
        ("base model", str(attrs.get("base_model", "?"))),
        ("search space", str(attrs.get("space_name", "?"))),
        ("dataset", str(attrs.get("dataset", "?"))),
        ("schedule", ", ".join(f"{k} {v}" for k, v in schedule.items()) or "?"),
        ("latency imgsz", str(attrs.get("imgsz", "?"))),
        ("device", str(runtime.get("device", "?"))),
        ("latency backend", str(runtime.get("latency_backend", "?"))),
        ("init", str(runtime.get("init", "?"))),
        ("trials", f"{len(completed(study))} complete, {len(trained(study))} trained"),
        ("Pareto front", f"{len(front)} trials"),
    ]


def _header(study: optuna.Study, front: list[FrozenTrial]) -> str:
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in _setting(study, front))
    return f"<h1>Study {html.escape(study.study_name)}</h1><dl class='setting'>{rows}</dl>"


def _caveats(study: optuna.Study) -> str:
    """Return the warning box of the study's caveats, or '' when there is none."""
    found = study_caveats(study)
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(c)}</li>" for c in found)
    return f"<div class='caveats' role='alert' id='caveats'><h2>Caveats</h2><ul>{items}</ul></div>"


def _toc(entries: list[tuple[str, str]]) -> str:
    links = "".join(f"<li><a href='#{fid}'>{html.escape(title)}</a></li>" for fid, title in entries)
    return f"<nav class='toc'><h2>Contents</h2><ol>{links}</ol></nav>"


def _row(study: optuna.Study, t: FrozenTrial, reference: FrozenTrial | None, storage: str) -> str:
    """Return one Pareto trial as a table row; the stock model's row has class ``stock``."""
    v, stock = values_of(t), bool(t.user_attrs.get("reference"))
    rec = verified(study, t.number)
    cells = [
        f"#{t.number}" + (" <b>stock</b>" if stock else ""),
        f"{v[MAP]:.4f}",
        f"{rec[MAP]:.4f} ({rec['epochs']} ep)" if rec else "",
        f"{v[GFLOPS]:.3f}",
        f"{v[LATENCY]:.2f} ± {iqr_ms(t) / 2:.2f}",
    ]
    text = [
        html.escape(vs_stock(t, reference).removeprefix("vs stock: ")),
        html.escape(", ".join(architecture_items(t))),
        f"<code>{html.escape(export_command(study.study_name, storage, t.number))}</code>",
    ]
    tds = [f"<td class='num'>{c}</td>" for c in cells] + [f"<td>{c}</td>" for c in text]
    return f"<tr{' class=stock' if stock else ''}>{''.join(tds)}</tr>"


def pareto_html(study: optuna.Study, front: list[FrozenTrial], storage: str) -> str:
    """Return the Pareto trials as an HTML table (best mAP50-95 first), with the export command of each row."""
    reference = reference_trial(study)
    head = [
        "trial",
        MAP,
        f"verified {MAP}",
        GFLOPS,
        "latency ms (± IQR/2)",
        "vs stock",
        "architecture (layer order)",
        "export",
    ]
    rows = "".join(_row(study, t, reference, storage) for t in front_rows(front))
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (
        f"<section id='{TABLE_ID}'><h2>Pareto trials</h2>"
        f"<table class='pareto'><thead><tr>{ths}</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def write_html(study: optuna.Study, figs: dict[str, go.Figure], out_dir: Path, storage: str = DEFAULT_STORAGE) -> Path:
    """Write ``out_dir/index.html`` and return its path: the study's setting, its caveats, a table of contents,
    the figures full width (plotly.js inlined once, no network needed to view) and the Pareto trials as an HTML
    table with each one's export command (naming ``storage``, the study's storage URL). The dashboard's compact
    table figure (``nas-pareto-table``) is replaced by that HTML table.

    Raises:
        OSError: the folder or file cannot be written.
    """
    front = pareto_front(study)
    shown = {fid: fig for fid, fig in figs.items() if fid != TABLE_ID}
    parts = []
    for i, (fid, fig) in enumerate(shown.items()):
        div = page_copy(fid, fig).to_html(
            full_html=False, include_plotlyjs=i == 0, div_id=fid, config={"responsive": True}
        )
        parts.append(f"<div class='figure'>{div}</div>")
    toc = [(TABLE_ID, "Pareto trials"), *((fid, _title_text(fig, fid)) for fid, fig in shown.items())]
    body = _header(study, front) + _caveats(study) + _toc(toc) + pareto_html(study, front, storage) + "".join(parts)
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>NAS report: {html.escape(study.study_name)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def save_to_dashboard(study: optuna.Study, figs: dict[str, go.Figure]) -> None:
    """Store the figures in the study so optuna-dashboard shows them, one half-width card each (same ids:
    re-running overwrites).

    Raises:
        ValueError: a figure id is not a valid HTML id.
    """
    from optuna_dashboard import save_plotly_graph_object

    for fid, fig in figs.items():
        save_plotly_graph_object(study, fig, graph_object_id=fid)
