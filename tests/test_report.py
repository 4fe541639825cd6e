"""The report's figures and page on tiny hand-made studies: each figure fits a half-width optuna-dashboard card,
the choice heatmap's shares, hover labels, the stock model's own trace, latency on a log axis with IQR bars, the
normalised hypervolume, and the page's header, contents, caveat box and export commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import pytest

from nas.objectives import DIRECTIONS, GFLOPS, HV_REFERENCE, LATENCY, MAP, normalised_losses
from nas.reporting import CARD_HEIGHT, CARD_WIDTH, figures, write_html
from nas.reporting.figures import choice_shares, trained
from nas.reporting.page import export_command

IDS = [
    "nas-pareto-3d",
    "nas-pareto-map-gflops",
    "nas-pareto-map-latency",
    "nas-pareto-latency-gflops",
    "nas-hypervolume",
    "nas-choice-frequency",
    "nas-parallel",
    "nas-pareto-table",
]
STOCK_ARCH = {"down_p2": "Conv", "c3k2_p2": "C3k2"}


def _trial(values: tuple[float, float, float], arch: dict[str, str], iqr: float, **attrs: Any) -> Any:
    user_attrs = {
        "trained": True,
        "architecture": arch,
        "summary": " ".join(f"{p}={op}" for p, op in arch.items() if op not in ("Conv", "C3k2")) or "stock",
        "latency": {"median_ms": values[2], "iqr_ms": iqr, "backend": "torch"},
        "params": 1000,
        **attrs,
    }
    return optuna.trial.create_trial(values=list(values), user_attrs=user_attrs)


def _study(maps: tuple[float, float, float] = (0.30, 0.32, 0.28)) -> optuna.Study:
    """Return a 3-trial study: #0 the stock model, #1 better mAP at more cost (front), #2 dominated by #0."""
    study = optuna.create_study(directions=list(DIRECTIONS), study_name="tiny")
    study.add_trials(
        [
            _trial((maps[0], 6.0, 10.0), STOCK_ARCH, 0.4, reference=True),
            _trial((maps[1], 7.0, 12.0), {"down_p2": "GhostV2", "c3k2_p2": "C3k2_Conv2Former(k=13)"}, 0.6),
            _trial((maps[2], 6.5, 11.0), {"down_p2": "GhostV2", "c3k2_p2": "C3k2"}, 0.2),
        ]
    )
    for k, v in {
        "base_model": "yolo11n.yaml",
        "dataset": "coco8.yaml",
        "schedule": {"epochs": 3, "imgsz": 64, "batch": 8},
        "runtime": {"device": "Test CPU", "latency_backend": "onnxruntime", "init": "scratch"},
    }.items():
        study.set_user_attr(k, v)
    return study


@pytest.fixture
def study() -> optuna.Study:
    return _study()


def test_figure_ids_and_count(study: optuna.Study) -> None:
    assert list(figures(study)) == IDS


def test_every_dashboard_figure_fits_a_half_width_card(study: optuna.Study) -> None:
    for fid, fig in figures(study).items():
        assert fig.layout.height is not None and fig.layout.height <= CARD_HEIGHT, fid
        assert fig.layout.width is None or fig.layout.width <= CARD_WIDTH, fid
        # one plot per figure: side-by-side subplots do not fit the card's width
        assert "xaxis2" not in fig.layout.to_plotly_json(), fid


def test_choice_shares_on_a_known_front(study: optuna.Study) -> None:
    front = [t for t in trained(study) if t.number in (0, 1)]
    points, columns, cells, totals = choice_shares(trained(study), front)
    assert points == ["down_p2", "c3k2_p2"]  # stored (layer) order, not sorted
    assert columns == ["stock", "GhostV2", "Conv2Former"]  # C3k2_X counts as X, the kernel dropped
    assert totals == (2, 3)
    assert cells == {
        ("down_p2", "stock"): (1, 1),
        ("down_p2", "GhostV2"): (1, 2),
        ("c3k2_p2", "stock"): (1, 2),
        ("c3k2_p2", "Conv2Former"): (1, 1),
    }
    heat = figures(study)["nas-choice-frequency"].data[0]
    assert isinstance(heat, go.Heatmap)
    assert list(heat.y) == points and list(heat.x) == columns
    assert list(heat.text[0]) == ["50/33", "50/67", ""]  # front % / all %; blank: never tried there
    assert list(heat.text[1]) == ["50/67", "", "50/33"]
    assert heat.z[0][0] == pytest.approx(50.0)


def _scatters(fig: go.Figure) -> list[Any]:
    return [d for d in fig.data if isinstance(d, go.Scatter | go.Scatter3d)]


def test_hover_spells_out_the_architecture_and_change_against_stock(study: optuna.Study) -> None:
    for fid in ("nas-pareto-3d", "nas-pareto-map-gflops"):
        front = next(d for d in figures(study)[fid].data if d.name == "Pareto front")
        (label,) = front.hovertext
        assert "down_p2: GhostV2, c3k2_p2: C3k2_Conv2Former(k=13)" in label
        assert "vs stock: mAP +2.00 pt, GFLOPs +16.7%, latency +20.0%" in label


def test_the_stock_model_has_its_own_trace_and_marker_in_every_scatter(study: optuna.Study) -> None:
    for fid, fig in figures(study).items():
        scatters = _scatters(fig)
        if not scatters:
            continue
        stock = [d for d in scatters if d.name and d.name.startswith("stock model")]
        assert len(stock) == 1, fid
        assert stock[0].marker.symbol == "diamond" and stock[0].showlegend is not False, fid
        others = {d.marker.color for d in scatters if d is not stock[0]}
        assert stock[0].marker.color not in others, fid
        assert "stock model (reference)" in stock[0].hovertext[0]


def test_latency_is_on_a_log_axis_with_iqr_error_bars(study: optuna.Study) -> None:
    figs = figures(study)
    assert figs["nas-pareto-map-latency"].layout.xaxis.type == "log"
    assert figs["nas-pareto-latency-gflops"].layout.yaxis.type == "log"
    assert figs["nas-pareto-3d"].layout.scene.yaxis.type == "log"
    iqr = {0: 0.4, 1: 0.6, 2: 0.2}
    for d in figs["nas-pareto-map-latency"].data:
        numbers = [int(re.match(r"<b>#(\d+)", h).group(1)) for h in d.hovertext]
        assert list(d.error_x.array) == pytest.approx([iqr[n] / 2 for n in numbers])  # each bar spans one IQR
    assert all(d.error_y.array for d in figs["nas-pareto-latency-gflops"].data)


def test_normalised_losses_by_hand() -> None:
    stock = {MAP: 0.3, GFLOPS: 6.0, LATENCY: 10.0}
    assert normalised_losses(stock, stock) == pytest.approx((0.7, 1.0, 1.0))
    assert normalised_losses({MAP: 0.5, GFLOPS: 30.0, LATENCY: 5.0}, stock) == pytest.approx((0.5, 2.0, 0.5))
    assert HV_REFERENCE == {MAP: 1.0, GFLOPS: 2.0, LATENCY: 2.0}
    with pytest.raises(ValueError, match="positive"):
        normalised_losses(stock, {**stock, GFLOPS: 0.0})


def test_hypervolume_history_is_normalised_by_the_stock_model_and_starts_at_zero(study: optuna.Study) -> None:
    fig = figures(study)["nas-hypervolume"]
    # stock alone: its mAP (0.3 x 1 x 1); #1 adds 0.32 x (2 - 7/6) x (2 - 1.2) less the shared 0.3 x (2 - 7/6) x 0.8
    second = 0.3 + 0.32 * (5 / 6) * 0.8 - 0.3 * (5 / 6) * 0.8
    assert list(fig.data[0].y) == pytest.approx([0.3, second, second])
    assert fig.layout.yaxis.rangemode == "tozero"
    assert "stock model" in fig.layout.title.text and "2× its GFLOPs" in fig.layout.title.text


def test_hypervolume_without_a_stock_trial_says_what_it_divides_by() -> None:
    study = optuna.create_study(directions=list(DIRECTIONS))
    study.add_trials([_trial((0.2, 4.0, 8.0), STOCK_ARCH, 0.1), _trial((0.1, 2.0, 4.0), STOCK_ARCH, 0.1)])
    fig = figures(study)["nas-hypervolume"]
    assert "normalised by trial #0 (no stock trial)" in fig.layout.title.text
    assert fig.data[0].y[0] == pytest.approx(0.2)


def test_dashboard_table_is_compact_and_lists_the_front(study: optuna.Study) -> None:
    fig = figures(study)["nas-pareto-table"]
    table = fig.data[0]
    assert list(table.cells.values[0]) == [1, 0]  # best mAP first
    assert list(table.cells.values[-1]) == ["down_p2=GhostV2 c3k2_…", "stock model"]  # summary clipped, stock marked
    assert fig.layout.height <= CARD_HEIGHT


def test_report_page(study: optuna.Study, tmp_path: Path) -> None:
    figs = figures(study)
    page = write_html(study, figs, tmp_path, storage="sqlite:///my runs/nas.db").read_text()
    for field in ("yolo11n.yaml", "coco8.yaml", "epochs 3", "Test CPU", "onnxruntime", "2 trials"):
        assert field in page, field
    for fid in IDS:
        assert f"href='#{fid}'" in page, fid
        assert f'id="{fid}"' in page or f"id='{fid}'" in page, fid
    assert page.count("python -m nas.export") == 2  # one per Pareto row
    assert "--storage &#x27;sqlite:///my runs/nas.db&#x27; --trial 1 --out trial_1.yaml" in page
    assert re.search(r"<tr class=stock><td class='num'>#0 <b>stock</b>", page)
    assert "class='caveats'" not in page
    assert page.count("* plotly.js v") == 1  # inlined once
    assert '<script src="http' not in page


def test_report_page_warns_when_map_is_zero(tmp_path: Path) -> None:
    study = _study(maps=(0.0, 0.0, 0.0))
    page = write_html(study, figures(study), tmp_path).read_text()
    box = page[page.index("class='caveats'") : page.index("</div>", page.index("class='caveats'"))]
    assert "is ≈0" in box
    assert page.index("class='caveats'") < page.index("<nav")  # at the top, before the contents


def test_export_command_quotes_what_the_shell_would_split() -> None:
    assert export_command("my study", "sqlite:///a.db", 3) == (
        "python -m nas.export --study 'my study' --storage sqlite:///a.db --trial 3 --out trial_3.yaml"
    )


def test_an_all_zero_map_axis_starts_at_zero_not_minus_one() -> None:
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["mAP50-95", "GFLOPs", "latency_ms"])
    for i in range(3):
        study.add_trial(
            optuna.trial.create_trial(values=[0.0, 6.0 + i, 20.0 - i], user_attrs={"trained": True, "key": f"k{i}"})
        )
    figs = figures(study)
    lo, hi = figs["nas-pareto-map-gflops"].layout.yaxis.range
    assert -0.001 < lo <= 0 < hi <= 0.011
    assert figs["nas-pareto-3d"].layout.scene.zaxis.range[1] == hi
