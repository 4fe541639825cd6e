"""The user's main job end to end: smoke study -> --list -> export -> fresh-process rebuild -> report -> dashboard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nas.cli import export, report, search
from nas.objectives import GFLOPS, MAP, NAMES, pareto_front, pick, values_of
from nas.study import load_study, open_storage
from nas.study.records import record, records
from tests.fast_smoke import fast_smoke_preset
from tests.servers import dashboard, get_json

ROOT = Path(__file__).resolve().parents[1]
OLD_STUDY = ROOT / "tests" / "data" / "main_smoke_study.db"  # written by the code before the reorganisation


def test_study_has_three_complete_trials_with_named_objectives(smoke_study: tuple[str, Path]) -> None:
    storage, work = smoke_study
    study = optuna.load_study(study_name="smoke", storage=storage)
    trials = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(trials) == 3
    assert study.metric_names == list(NAMES)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    for t in trials:
        a = records(t)
        for key in (
            "key",
            "model_yaml",
            "params",
            "imgsz",
            "train_imgsz",
            "latency",
            "device",
            "phases",
            "versions",
        ):
            assert key in a, key
        if "dedup_of" not in a:
            assert "map50" in a and a["trained"]
            assert 0.0 <= values_of(t)[MAP] <= a["map50"] <= 1.0
            assert values_of(t)["latency_ms"] == a["latency"]["median_ms"]  # the objective is the measured median
            phases = {"build_s", "cost_s", "latency_s", "train_setup_s", "train_s", "val_s", "storage_s"}
            assert phases <= set(a["phases"])
        assert a["latency"]["runs"] >= 20 and a["latency"]["imgsz"] == 640
    for key in ("preset", "space", "dataset", "fingerprint"):
        assert key in study.user_attrs
    assert trials[0].number == 0 and trials[0].user_attrs["reference"] and trials[0].user_attrs["summary"] == "stock"
    assert all("vs_stock" in t.user_attrs for t in trials[1:])
    assert not any((work / "runs" / "smoke").glob("trial_*"))  # run folders removed


def test_a_trial_stores_under_64_kb_and_leaves_no_files(smoke_study: tuple[str, Path], tmp_path: Path) -> None:
    _, work = smoke_study
    leftover = [p for p in (work / "runs").rglob("*") if p.is_file()]
    assert leftover == []
    from nas.config import load_preset
    from nas.study import open_study

    empty = tmp_path / "empty.db"  # the same study with no trial: the database's fixed size
    storage = open_storage(f"sqlite:///{empty}", worker=True)
    open_study(load_preset("smoke"), storage, "smoke")
    storage.close()
    per_trial = ((work / "nas.db").stat().st_size - empty.stat().st_size) / 3
    assert 0 < per_trial < 64_000  # the README's figure is ~45 KB per trial


def test_resume_runs_only_the_missing_trials(smoke_study: tuple[str, Path], capsys: pytest.CaptureFixture) -> None:
    storage, work = smoke_study
    assert (
        search.main(["--study", "smoke", "--trials", "3", "--storage", storage, "--run-dir", str(work / "runs")]) == 0
    )
    assert "ran 0 trial(s)" in capsys.readouterr().err


def test_list_export_and_fresh_process_rebuild(smoke_study: tuple[str, Path], capsys: pytest.CaptureFixture) -> None:
    storage, work = smoke_study
    assert export.main(["--study", "smoke", "--storage", storage, "--list"]) == 0
    listing = capsys.readouterr().out
    assert "mAP50-95" in listing and "GFLOPs" in listing
    assert "reference (stock model)" in listing  # the stock model is listed as the reference, on the front or not
    out = work / "best.yaml"
    assert export.main(["--study", "smoke", "--storage", storage, "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# exported by nas.export from study 'smoke', trial ")
    number = int(text.split("trial ", 1)[1].split()[0])
    trial = optuna.load_study(study_name="smoke", storage=storage).trials[number]
    assert record(trial, "model_yaml") in text
    script = (
        "import json, modules, nas\n"
        "from ultralytics import YOLO\n"
        "from nas.measure import model_cost\n"
        f"m = YOLO({str(out)!r}).model\n"
        "c = model_cost(m, 640)\n"
        "print(json.dumps({'params': c.params, 'gflops': c.gflops}))\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["params"] == trial.user_attrs["params"]
    assert got["gflops"] == pytest.approx(values_of(trial)[GFLOPS], rel=1e-9)


@pytest.mark.parametrize("rule", ["knee", "best-map", "fastest", "smallest"])
def test_each_pick_exports_the_trial_its_rule_chooses(smoke_study: tuple[str, Path], rule: str) -> None:
    storage, work = smoke_study
    out = work / f"{rule}.yaml"
    assert export.main(["--study", "smoke", "--storage", storage, "--pick", rule, "--out", str(out)]) == 0
    study = load_study(storage, "smoke")
    chosen = pick(pareto_front(study), rule)
    text = out.read_text()
    assert text.startswith(f"# exported by nas.export from study 'smoke', trial {chosen.number}\n")
    assert text.endswith(record(chosen, "model_yaml"))
    assert f"{values_of(chosen)[GFLOPS]:.4f} GFLOPs" in text
    assert "# this is the stock model (trial 0" in text or "# vs the stock model (trial 0): mAP" in text


def test_a_study_written_before_the_reorganisation_still_exports_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    db = tmp_path / "old.db"
    shutil.copy(OLD_STUDY, db)
    url = f"sqlite:///{db}"
    old = optuna.load_study(study_name="smoke", storage=url)
    assert len(old.trials) == 4 and all(t.state.name == "COMPLETE" for t in old.trials)
    assert export.main(["--study", "smoke", "--storage", url, "--list"]) == 0
    listing = capsys.readouterr().out
    front = pareto_front(old)
    assert front and all(f"{values_of(t)[GFLOPS]:.3f}" in listing for t in front)
    assert export.main(["--study", "smoke", "--storage", url, "--trial", "2", "--out", str(tmp_path / "t2.yaml")]) == 0
    assert (tmp_path / "t2.yaml").read_text().endswith(old.trials[2].user_attrs["model_yaml"])
    assert report.main(["--study", "smoke", "--storage", url, "--out", str(tmp_path / "rep")]) == 0
    assert 'id="nas-pareto-3d"' in (tmp_path / "rep" / "index.html").read_text()


def test_report_html_holds_the_figures(smoke_study: tuple[str, Path]) -> None:
    storage, work = smoke_study
    assert report.main(["--study", "smoke", "--storage", storage, "--out", str(work / "report")]) == 0
    page = (work / "report" / "index.html").read_text()
    figure_ids = ("nas-pareto-3d", "nas-pareto-map-gflops", "nas-pareto-map-latency", "nas-pareto-latency-gflops",
                  "nas-hypervolume", "nas-choice-frequency", "nas-parallel", "nas-pareto-table")  # fmt: skip
    for fid in figure_ids:
        assert f'id="{fid}"' in page or f"id='{fid}'" in page, fid
    assert "plotly" in page.lower() and "<script" in page
    assert '<script src="http' not in page and 'src="https://cdn' not in page  # plotly.js is inlined


def test_dashboard_serves_the_study_and_its_metric_names(smoke_study: tuple[str, Path]) -> None:
    storage, work = smoke_study
    report.main(["--study", "smoke", "--storage", storage, "--out", str(work / "report2")])
    with dashboard(storage, log=work / "dashboard.log") as base:
        studies = get_json(f"{base}/api/studies")["study_summaries"]
        smoke = next(s for s in studies if s["study_name"] == "smoke")
        detail = get_json(f"{base}/api/studies/{smoke['study_id']}")
    assert detail["name"] == "smoke"
    assert detail["objective_names"] == list(NAMES)
    ids = {g["id"] for g in detail.get("plotly_graph_objects", [])}
    assert {"nas-pareto-3d", "nas-hypervolume"} <= ids


def test_warm_start_trains_the_base_once_and_trials_inherit(tmp_path: Path) -> None:
    preset = fast_smoke_preset(tmp_path, "warm", init="warm")
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    argv = ["--study", str(preset), "--trials", "1", "--storage", storage, "--run-dir", str(tmp_path / "runs")]
    assert search.main(argv) == 0
    (base,) = (tmp_path / "runs" / "warm").glob("warm_base_e4.pt")  # warm_epochs: 4x the proxy's 1 epoch
    mtime = base.stat().st_mtime
    assert search.main([*argv[:3], "2", *argv[4:], "--seed", "5"]) == 0
    assert base.stat().st_mtime == mtime  # cached: trained once per study, whatever the later runs' seed
    trials = optuna.load_study(study_name="warm", storage=storage).trials
    assert [t.user_attrs.get("init_weights") for t in trials] == [str(base)] * 2, [t.user_attrs for t in trials]


def test_ctrl_c_stops_cleanly_with_status_130(tmp_path: Path) -> None:
    import signal

    storage = f"sqlite:///{tmp_path / 'i.db'}"
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT), "NAS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nas.search",
            "--study",
            str(fast_smoke_preset(tmp_path)),
            "--trials",
            "5",
            "--storage",
            storage,
            "--run-dir",
            str(tmp_path / "runs"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines = []
    for line in proc.stderr:  # wait for the first finished trial, then interrupt the next one
        lines.append(line)
        if "1/5" in line:
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted" in rest and "Traceback" not in rest
    states = [t.state.name for t in optuna.load_study(study_name="smoke", storage=storage).trials]
    assert "RUNNING" not in states and states.count("COMPLETE") >= 1
