"""What a person sees, in a real browser: the HTML report and optuna-dashboard of a smoke study, opened in headless
Chromium (Debian's ``chromium``; no browser is downloaded).

Every figure must have a plot area of at least MIN_PLOT px and lie inside its card (no overflow hidden or scrolled
away), the Pareto table must show one row per Pareto trial, and a trial's page in the dashboard must offer its
model YAML for download. Full-page screenshots go to ``$NAS_SCREENSHOTS_DIR`` (default: a pytest temporary folder).
Without Chromium or playwright the test is skipped, unless ``NAS_REQUIRE_BROWSER=1`` (CI), which makes it fail.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest

from nas.cli import report
from nas.objectives import pareto_front
from nas.study.artifacts import artifact_dir
from nas.study.records import record
from tests.servers import dashboard, get_json

CHROMIUM = Path(os.environ.get("NAS_CHROMIUM", "/usr/bin/chromium"))
MIN_PLOT = (200, 150)  # width, height in CSS px
VIEWPORT = {"width": 1400, "height": 900}
SLACK_PX = 1.0  # sub-pixel rounding between nested boxes

# For every plotly figure on the page: its outer box, its plot areas (cartesian subplots, 3D scenes, tables, else
# the whole svg), and the boxes of the ancestors that cut off what overflows them (the cards).
MEASURE_JS = """
() => [...document.querySelectorAll('.js-plotly-plot')].map((g) => {
  const box = (e) => { const r = e.getBoundingClientRect();
                       return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  let areas = [...g.querySelectorAll('.nsewdrag')].map(box);
  areas = areas.concat([...g.querySelectorAll('.gl-container > div, [id^="scene"]')].map(box));
  areas = areas.concat([...g.querySelectorAll('g.table-control-view')].map(box));
  if (areas.length === 0) areas = [...g.querySelectorAll('.main-svg')].slice(0, 1).map(box);
  const clips = [];
  for (let e = g.parentElement; e && e !== document.body; e = e.parentElement) {
    const s = getComputedStyle(e);
    if ([s.overflow, s.overflowX, s.overflowY].some((o) => o !== 'visible'))
      clips.push({tag: e.tagName + '.' + (e.className || ''), ...box(e)});
  }
  const title = g.querySelector('.gtitle');
  return {id: g.id || (g.closest('[id]') || {}).id || '', title: title ? title.textContent : '',
          table: g.querySelector('g.table') !== null, figure: box(g.querySelector('.main-svg') || g), areas, clips};
})
"""

# The Pareto tables of the page, plotly tables (rows in the first column's cell blocks, header excluded) and HTML
# tables (class "pareto" or inside an element whose id names the Pareto table): how many body rows exist and how many
# are fully visible, inside the table's view and every ancestor that cuts off overflow.
TABLE_ROWS_JS = """
() => {
  const clipped = (e, r) => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (![s.overflow, s.overflowX, s.overflowY].some((o) => o !== 'visible')) continue;
      const c = a.getBoundingClientRect();
      if (r.top < c.top - 1 || r.bottom > c.bottom + 1 || r.left < c.left - 1 || r.right > c.right + 1) return true;
    }
    return false;
  };
  const plotly = [...document.querySelectorAll('g.table')].map((t) => {
    const view = t.querySelector('g.table-control-view').getBoundingClientRect();
    const column = t.querySelector('g.y-column');
    const cells = [...column.querySelectorAll('g.column-block:not(#header) g.column-cell')];
    const shown = cells.filter((c) => { const r = c.getBoundingClientRect();
      return r.height > 0 && r.top >= view.top - 1 && r.bottom <= view.bottom + 1 && !clipped(t, r); });
    return {kind: 'plotly', rows: cells.length, shown: shown.length, height: view.height};
  });
  const html = [...document.querySelectorAll('table.pareto, [id*="pareto-table"] table')].map((t) => {
    const rows = [...t.querySelectorAll('tr')].filter((r) => !r.querySelector('th'));
    const shown = rows.filter((r) => { const b = r.getBoundingClientRect(); return b.height > 0 && !clipped(r, b); });
    return {kind: 'html', rows: rows.length, shown: shown.length, height: t.getBoundingClientRect().height};
  });
  return plotly.concat(html);
}
"""


@dataclass(frozen=True)
class Served:
    """The smoke study as a person opens it: its report file, the dashboard's base URL, the study's id there."""

    storage: str
    report: Path
    dashboard: str
    study_id: int
    pareto: int


def require_browser() -> Any:
    """Return playwright's ``sync_playwright``; skip (fail with NAS_REQUIRE_BROWSER=1) without it or Chromium."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing is None and not CHROMIUM.is_file():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("NAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NAS_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("NAS_SCREENSHOTS_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(screenshots: Path) -> Iterator[Any]:
    """A headless Chromium page at VIEWPORT."""
    sync_playwright = require_browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served(page: Any, smoke_study: tuple[str, Path]) -> Iterator[Served]:  # no browser: skipped before the search
    """The smoke study's report written and its figures saved to the study, optuna-dashboard serving both."""
    storage, work = smoke_study
    assert report.main(["--study", "smoke", "--storage", storage, "--out", str(work / "report")]) == 0
    study = optuna.load_study(study_name="smoke", storage=storage)
    with dashboard(storage, artifact_dir(storage), log=work / "dashboard.log") as base:
        studies = get_json(f"{base}/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == "smoke")
        yield Served(storage, work / "report" / "index.html", base, study_id, len(pareto_front(study)))


def open_and_settle(page: Any, url: str, figures: bool) -> None:
    """Open ``url`` and wait until plotly has drawn (when ``figures``) and the layout is still."""
    page.goto(url, wait_until="load")
    if figures:
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    page.wait_for_timeout(1500)  # plotly's resize after the first draw, the dashboard's fetches


def figure_problems(measured: list[dict[str, Any]]) -> list[str]:
    """Return one line per figure whose plot area is smaller than MIN_PLOT or that overflows one of its cards."""
    problems = []
    for f in measured:
        name = f["id"] or f["title"] or "(untitled figure)"
        biggest = max(f["areas"], key=lambda a: a["w"] * a["h"], default=None)
        # a table is as high as its rows need: its height is checked by counting the rows it shows (check_page)
        min_h = 0 if f["table"] else MIN_PLOT[1]
        if biggest is None or biggest["w"] < MIN_PLOT[0] or biggest["h"] < min_h:
            size = f"{biggest['w']:.0f} x {biggest['h']:.0f}" if biggest else "none"
            problems.append(f"{name}: plot area {size} px, below {MIN_PLOT[0]} x {MIN_PLOT[1]}")
        fig = f["figure"]
        for c in f["clips"]:
            inside = (
                fig["x"] >= c["x"] - SLACK_PX
                and fig["y"] >= c["y"] - SLACK_PX
                and fig["x"] + fig["w"] <= c["x"] + c["w"] + SLACK_PX
                and fig["y"] + fig["h"] <= c["y"] + c["h"] + SLACK_PX
            )
            if not inside:
                problems.append(
                    f"{name}: figure {fig['w']:.0f} x {fig['h']:.0f} px clipped by its card {c['tag'][:40]} "
                    f"({c['w']:.0f} x {c['h']:.0f} px)"
                )
    return problems


def check_page(page: Any, served: Served, what: str) -> list[str]:
    """Return the figure and Pareto-table problems of the open page (``what`` names it in the lines)."""
    measured = page.evaluate(MEASURE_JS)
    problems = [f"{what}: no figure drawn"] if not measured else []
    problems += [f"{what}: {p}" for p in figure_problems(measured)]
    tables = page.evaluate(TABLE_ROWS_JS)
    if not tables:
        problems.append(f"{what}: no Pareto table")
    for t in tables:
        if t["shown"] != served.pareto:
            problems.append(
                f"{what}: {t['kind']} Pareto table shows {t['shown']} of {served.pareto} rows ({t['rows']} rendered, "
                f"{t['height']:.0f} px high)"
            )
    return problems


def test_report_figures_fit_their_cards_and_the_pareto_table_shows_every_row(
    served: Served, page: Any, screenshots: Path
) -> None:
    open_and_settle(page, served.report.as_uri(), figures=True)
    page.screenshot(path=str(screenshots / "report.png"), full_page=True)
    assert check_page(page, served, "report") == []


def test_dashboard_study_page_figures_fit_their_cards(served: Served, page: Any, screenshots: Path) -> None:
    open_and_settle(page, f"{served.dashboard}/dashboard/studies/{served.study_id}", figures=True)
    page.wait_for_selector("[id^='user-defined-plot:'] .main-svg", timeout=60_000)  # the figures nas.report saved
    page.screenshot(path=str(screenshots / "dashboard-study.png"), full_page=True)
    assert check_page(page, served, "dashboard study page") == []


def test_dashboard_trial_page_offers_the_model_yaml(served: Served, page: Any, screenshots: Path) -> None:
    study = optuna.load_study(study_name="smoke", storage=served.storage)
    trial = pareto_front(study)[0]
    name = f"trial_{trial.number}.yaml"
    url = f"{served.dashboard}/dashboard/studies/{served.study_id}/trials?numbers={trial.number}"
    open_and_settle(page, url, figures=False)
    page.get_by_text(name).first.wait_for(timeout=30_000)
    page.get_by_text(name).first.scroll_into_view_if_needed()  # the page scrolls inside its frame: show the artifact
    page.screenshot(path=str(screenshots / "dashboard-trial.png"), full_page=True)
    links = page.locator("a[href*='/artifacts/']")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs, "the trial page offers no artifact link"
    answers = []
    for href in hrefs:
        with urllib.request.urlopen(urllib.parse.urljoin(served.dashboard, href), timeout=10) as r:
            answers.append(r.read().decode())
    assert record(trial, "model_yaml") in answers  # the download is the YAML the trial trained
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"] + SLACK_PX, f"the trial page is {width} px wide (long attributes?)"
