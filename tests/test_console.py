"""What the console shows: trial lines within 120 characters, the legend, layer order, the caveats after a search,
the one-off trainings' progress bar, export's header and its bounds message, the local-data hint."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import create_trial

from nas.cli import export, search
from nas.cli.progress import WIDTH, PhaseBar, Progress, eta, legend, point_labels, trial_line
from nas.config import load_preset
from nas.data.datasets import local_dataset
from nas.measure.phase_progress import report_epochs
from nas.measure.warm_start import warm_start_weights
from nas.objectives import DIRECTIONS, GFLOPS, LATENCY, MAP, NAMES
from nas.space import load_space
from nas.space.architecture import Choice
from nas.study import TrialReport
from nas.study.run import StudyOutcome

WIDEST_VALUES = {MAP: 0.123, GFLOPS: 194.9, LATENCY: 1234.5}
WIDEST_DELTA = {MAP: -12.34, GFLOPS: 123.4, LATENCY: -99.9}


def longest_full_architecture():
    """The yolo11_full architecture with the longest summary: every point replaced by a Conv2Former k=13."""
    space = load_space("yolo11_full")
    choice = {"conv": Choice("Conv2Former", 13), "block": Choice("C3k2_Conv2Former", 13)}
    return space, space.architecture({p.name: choice[p.kind] for p in space.points})


@pytest.mark.parametrize(
    "status,summary_suffix,values,delta,noisy",
    [
        ("ok", "", WIDEST_VALUES, WIDEST_DELTA, True),
        ("reference (stock)", "", WIDEST_VALUES, None, True),
        ("infeasible (not trained)", "", WIDEST_VALUES, WIDEST_DELTA, True),
        ("dedup", " (= #1233)", WIDEST_VALUES, WIDEST_DELTA, True),
        ("failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)", "", None,
         None, False),
    ],
)  # fmt: skip
def test_a_trial_line_fits_120_characters_with_the_widest_values(
    status: str, summary_suffix: str, values: dict | None, delta: dict | None, noisy: bool
) -> None:
    space, arch = longest_full_architecture()
    report = TrialReport(1234, arch.summary() + summary_suffix, values, 3600.0, 123, status, delta, noisy)
    line = trial_line(report, 1999, 2000, eta(36_000.0, 1), point_labels(space))
    assert len(line) <= WIDTH, line
    assert line.startswith("#1234 1999/2000 10:00:00 ")
    assert re.search(r"\| L1=C2F13 (L2=C2F13 )*…\+\d+$", line), line  # cut, saying how many points are left out
    assert ("latency noisy" in line) == noisy
    if summary_suffix:
        assert "dedup #1233" in line


def test_a_trial_line_shows_values_change_front_and_status() -> None:
    space = load_space("yolo11_backbone")
    arch = space.architecture({"c3k2_p3": Choice("C3k2_Conv2Former", 13), "down_p2": "GhostV2"})
    delta = {MAP: 0.5, GFLOPS: -3.1, LATENCY: 4.0}
    report = TrialReport(7, arch.summary(), {MAP: 0.1234, GFLOPS: 6.5, LATENCY: 12.0}, 2.0, 3, "ok", delta)
    line = trial_line(report, 8, 200, "0:01:23", point_labels(space))
    assert re.search(r"0\.123\s+\+0\.50\s+6\.50\s+-3\.1%\s+12\.0\s+\+4\.0%\s+3\s+ok\s+\| L1=Ghost L4=C2F13$", line)


def test_the_legend_spells_out_every_label_once() -> None:
    space = load_space("yolo11_full")
    lines = legend(space)
    text = " ".join(lines)
    assert all(len(line) <= WIDTH for line in lines)
    for expected in ("Dyn=DynamicConv", "Ghost=GhostV2", "ACmix=ACmix", "C2F<k>=Conv2Former kernel k", "CNX=ConvNeXt"):
        assert expected in text
    assert "L1=down_p2" in text and "L17=pan_down(layers 17,20)" in text and "L22=neck_p5_out" in text
    assert "stock model (the study's reference trial)" in text


def test_summary_and_architecture_dict_follow_the_layer_order_and_the_key_is_unchanged() -> None:
    space = load_space("yolo11_full")
    arch = space.architecture(
        {"neck_p5_out": "C3k2_GhostV2", "pan_down": "ConvNeXt", "c3k2_p2": "C3k2_ACmix", "down_p2": "DynamicConv"}
    )
    assert arch.summary() == "down_p2=Dyn c3k2_p2=ACmix pan_down=CNX neck_p5_out=Ghost"
    order = [p.name for p in sorted(space.points, key=lambda p: min(p.layers))]
    assert list(arch.as_dict()) == order
    assert [p for p, _ in arch.choices] == sorted(order)  # the canonical form behind equality stays by name
    assert arch.key == "3adbe649524e"  # computed before the layer order: stored studies keep their keys
    assert "down_p2=Dyn c3k2_p2=ACmix pan_down=CNX" in arch.to_yaml(8).splitlines()[0]


def zero_map_study(storage: str | None = None, name: str = "zeros") -> optuna.Study:
    """A stored study of 5 trained trials whose mAP50-95 are all ≈ 0, trial 0 the stock reference."""
    space = load_space("yolo11_backbone")
    dist = CategoricalDistribution([c for c in space.points[0].choices if c != "Conv2Former"])  # no kernel to pick
    study = optuna.create_study(storage=storage, study_name=name, directions=list(DIRECTIONS))
    study.set_metric_names(list(NAMES))
    study.set_user_attr("schedule", {"epochs": 1, "imgsz": 64})
    for n in range(len(dist.choices)):
        arch = space.architecture({"down_p2": dist.choices[n]})
        attrs = {
            "trained": True,
            "key": arch.key,
            "summary": arch.summary(),
            "model_yaml": arch.to_yaml(8),
            "operators": arch.operators(),
            **({"reference": True} if n == 0 else {}),
        }
        study.add_trial(
            create_trial(
                values=[0.0001 * n, 8.0 - n, 10.0 + 3 * n],
                params={"down_p2": dist.choices[n]},
                distributions={"down_p2": dist},
                user_attrs=attrs,
            )
        )
    return study


def test_a_search_ends_with_its_caveats_as_warning_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = zero_map_study()
    seen: dict[str, Any] = {}

    def fake_run_study(cfg: Any, storage: Any, run: Any, on_trial: Any, log: Any, on_phase: Any) -> StudyOutcome:
        seen["on_phase"] = on_phase
        on_trial(TrialReport(0, "stock", {MAP: 0.0, GFLOPS: 6.5, LATENCY: 12.0}, 1.0, 1, "reference (stock)"), 1, 2)
        return StudyOutcome(study, 1, [])

    monkeypatch.setattr(search, "run_study", fake_run_study)
    argv = ["--study", "smoke", "--trials", "2", "--storage", f"sqlite:///{tmp_path / 'nas.db'}"]
    assert search.main([*argv, "--run-dir", str(tmp_path / "runs")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("legend: points L1=down_p2")
    trial_at = next(i for i, line in enumerate(err) if line.startswith("#0 "))
    assert err[trial_at - 1].startswith("trial") and "architecture (layer order)" in err[trial_at - 1]
    warnings = [line for line in err if line.startswith("warning: ")]
    assert any("≈0" in w and "1 epochs at 64 px" in w for w in warnings) and err[-1] in warnings
    assert isinstance(seen["on_phase"], PhaseBar)


class FakeTrainer:
    """What ``report_epochs`` reads of an Ultralytics trainer, firing the callbacks as ``_do_train`` does."""

    def __init__(self, epochs: int, batches: int, stop_after: int | None = None) -> None:
        self.epochs, self.epoch, self.train_loader = epochs, 0, [None] * batches
        self.stop_after = stop_after or epochs  # Ultralytics' patience or time limit ends the loop early
        self.callbacks: dict[str, list] = {}

    def add_callback(self, event: str, fn: Any) -> None:
        self.callbacks.setdefault(event, []).append(fn)

    def fire(self, event: str) -> None:
        for fn in self.callbacks.get(event, []):
            fn(self)

    def train(self) -> None:
        self.fire("on_train_start")
        for epoch in range(self.stop_after):
            self.epoch = epoch
            self.fire("on_train_epoch_start")
            for _ in self.train_loader:
                self.fire("on_train_batch_end")
            self.fire("on_train_epoch_end")
        self.fire("on_train_end")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_phase_bar_prints_one_line_per_epoch_in_a_log() -> None:
    out = io.StringIO()
    trainer = FakeTrainer(epochs=4, batches=3)
    report_epochs(trainer, "supernet", PhaseBar(out, width=8))
    trainer.train()
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1].split(",")[0] for line in lines] == [f"supernet epoch {n}/4" for n in range(1, 5)]
    assert lines[0].startswith("[##......] ") and re.search(r"ETA \d+:\d\d:\d\d$", lines[0])
    assert lines[-1].startswith("[########] ") and "done in" in lines[-1]


def test_the_phase_bar_redraws_one_line_on_a_terminal() -> None:
    out = Terminal()
    trainer = FakeTrainer(epochs=2, batches=5)
    report_epochs(trainer, "warm base", PhaseBar(out, redraw_s=0.0))
    trainer.train()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, redrawn in place, ended when done
    assert text.count("\r") >= 2 * 5 and "warm base epoch 2/2, done in" in text.splitlines()[-1].split("\r")[-1]


def test_a_phase_that_stops_early_still_ends_its_line_on_a_terminal() -> None:
    out = Terminal()
    trainer = FakeTrainer(epochs=16, batches=2, stop_after=5)
    report_epochs(trainer, "supernet", PhaseBar(out, redraw_s=0.0))
    trainer.train()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and "supernet epoch 5/5, done in" in text.split("\r")[-1]


def test_the_warm_base_training_reports_its_epochs(tmp_path: Path, tiny_dataset: Path) -> None:
    cfg = load_preset("smoke")
    schedule = {**cfg.schedule, "epochs": 1, "imgsz": 64, "batch": 8}
    cfg = dataclasses.replace(cfg, dataset=local_dataset(tiny_dataset), schedule=schedule, warm_epochs=1)
    calls: list[tuple[str, float, int]] = []
    warm_start_weights(cfg, tmp_path, "cpu", 0, progress=lambda *a: calls.append(a))
    assert calls[0] == ("warm base", 0.0, 1) and calls[-1] == ("warm base", 1.0, 1)
    assert all(0.0 < done < 1.0 for _, done, _ in calls[1:-1])  # batches in between


def test_export_header_shows_caveats_and_the_nas_yolo_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    zero_map_study(storage)
    out = tmp_path / "best.yaml"
    assert export.main(["--study", "zeros", "--storage", storage, "--out", str(out)]) == 0
    head = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert any(line.startswith("# warning: mAP50-95 is ≈0") for line in head)
    assert "#   nas-yolo train model=best.yaml data=data.yaml epochs=300" in head
    assert not any("python -c" in line for line in head)
    capsys.readouterr()
    assert export.main(["--study", "zeros", "--storage", storage, "--list"]) == 0
    listed = capsys.readouterr()
    assert "warning: mAP50-95 is ≈0" in listed.err and "warning" not in listed.out


def test_export_bounds_without_a_match_say_what_the_front_covers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    zero_map_study(storage)
    argv = ["--study", "zeros", "--storage", storage, "--out", str(tmp_path / "x.yaml"), "--max-gflops", "1"]
    assert export.main([*argv, "--max-latency-ms", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(
        r"error: no Pareto trial within --max-gflops 1 and --max-latency-ms 5: the front spans "
        r"\d+\.\d\d–\d+\.\d\d GFLOPs and \d+\.\d–\d+\.\d ms",
        err,
    ), err


def test_an_ultralytics_dataset_name_says_how_to_get_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert search.main(["--study", "smoke", "--data", "coco8.yaml", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: dataset YAML coco8.yaml does not exist: only local files")
    assert "machine with internet" in err[0]


def test_progress_without_a_space_still_prints_trial_lines(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress()
    assert progress.intro() == []
    progress(TrialReport(3, "stock", {MAP: 0.1, GFLOPS: 6.5, LATENCY: 12.0}, 1.0, 1, "ok", latency_noisy=True), 1, 3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("trial") and "ok latency noisy | stock" in lines[1]
