"""optuna-dashboard open on a SQLite study while ``nas.search`` runs: the search never fails with "database is
locked", and the dashboard keeps answering (WAL journal and busy timeout, ``nas.study.storage``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
from collections import Counter
from contextlib import closing
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tests.fast_smoke import fast_smoke_preset
from tests.servers import dashboard, get_json

ROOT = Path(__file__).resolve().parents[1]
TRIALS = 10
POLL_S = 0.2


def has_study(db: Path) -> bool:
    """Return whether the SQLite file ``db`` holds a study yet (read with plain sqlite3, creating nothing)."""
    if not db.exists():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return c.execute("SELECT count(*) FROM studies").fetchone()[0] > 0
    except sqlite3.Error:  # tables not created yet
        return False


class Poller(threading.Thread):
    """Asks the dashboard for the study list and the study's trials every POLL_S, as its browser page does;
    counts the answers by HTTP status (0: no answer)."""

    def __init__(self, base: str) -> None:
        super().__init__(name="dashboard-poller", daemon=True)
        self.base = base
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.stop = threading.Event()

    def ask(self, path: str) -> object | None:
        try:
            answer = get_json(self.base + path, timeout=30)
            self.statuses[200] += 1
            return answer
        except urllib.error.HTTPError as e:
            self.statuses[e.code] += 1
            self.errors.append(f"{path}: {e.code} {e.read()[:300]!r}")
        except OSError as e:
            self.statuses[0] += 1
            self.errors.append(f"{path}: {e}")
        return None

    def run(self) -> None:
        while not self.stop.wait(POLL_S):
            studies = self.ask("/api/studies")
            for s in (studies or {}).get("study_summaries", []):  # type: ignore[union-attr]
                self.ask(f"/api/studies/{s['study_id']}?after=0")


def test_search_runs_to_the_end_while_the_dashboard_polls(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT), "NAS_CACHE_DIR": str(tmp_path / "cache")}
    preset = fast_smoke_preset(tmp_path)  # the same writes to the database, in less time
    argv = ["--study", str(preset), "--trials", str(TRIALS), "--storage", storage, "--run-dir", str(tmp_path / "runs")]
    with (tmp_path / "search.log").open("w") as log:
        search = subprocess.Popen(
            [sys.executable, "-m", "nas.search", *argv], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env
        )
        try:
            # the dashboard opens the study once the search has created it (two processes creating Optuna's tables
            # at once is a race of its own, not the one tested here)
            while not has_study(tmp_path / "nas.db"):
                assert search.poll() is None, (tmp_path / "search.log").read_text()[-3000:]
                time.sleep(0.1)
            with dashboard(storage, log=tmp_path / "dashboard.log") as base:
                poller = Poller(base)
                poller.start()
                try:
                    returncode = search.wait(timeout=1200)
                finally:
                    poller.stop.set()
                    poller.join(timeout=60)
        finally:
            if search.poll() is None:
                search.kill()
                search.wait()
    out = (tmp_path / "search.log").read_text()
    assert returncode == 0, out[-3000:]
    assert "database is locked" not in out
    trials = optuna.load_study(study_name="smoke", storage=storage).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * TRIALS
    assert poller.statuses[200] >= 50, (poller.statuses, poller.errors[:5])
    assert not [code for code in poller.statuses if code >= 500], (poller.statuses, poller.errors[:5])
    assert "database is locked" not in (tmp_path / "dashboard.log").read_text()
