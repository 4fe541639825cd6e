"""Evaluating one architecture: cheap phases first, constraints before training, failures contained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import nas.evaluate as evaluate_module
from nas.config import DEFAULT_SCHEDULE, load_preset
from nas.evaluate import Constraints, EvalSettings, evaluate
from nas.search import main
from nas.space import load_space

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "warmup_epochs": 0, "mosaic": 0.0}


def _settings(tmp_path: Path, **kw: object) -> EvalSettings:
    return EvalSettings(imgsz=128, schedule=TINY, run_root=tmp_path / "runs", latency_runs=20, latency_warmup=1, **kw)


def test_feasible_candidate_is_trained_and_its_run_removed(tmp_path: Path, tiny_dataset: Path) -> None:
    arch = load_space("yolo11_backbone").architecture({"c3k2_p3": "C3k2_ConvNeXt"})
    ev = evaluate(arch, 5, tiny_dataset, _settings(tmp_path), seed=0, run_name="t0")
    assert ev.error is None and ev.feasible and ev.proxy is not None
    assert set(ev.phases) == {"build_s", "cost_s", "latency_s", "train_setup_s", "train_s", "val_s"}
    assert ev.phases["train_setup_s"] > 0 and ev.phases["train_s"] > 0
    assert ev.cost.imgsz == 128 and ev.latency.imgsz == 128
    assert not any((tmp_path / "runs").iterdir())


def test_keep_runs_keeps_the_run_folder(tmp_path: Path, tiny_dataset: Path) -> None:
    arch = load_space("yolo11_backbone").stock()
    evaluate(arch, 5, tiny_dataset, _settings(tmp_path, keep_runs=True), seed=0, run_name="kept")
    assert (tmp_path / "runs" / "kept").is_dir() and (tmp_path / "runs" / "kept.yaml").is_file()


def test_infeasible_candidate_is_never_trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate_module, "train_proxy", lambda *a, **k: pytest.fail("trained an infeasible model"))
    arch = load_space("yolo11_backbone").architecture({"down_p2": "ACmix"})
    ev = evaluate(arch, 5, Path("unused.yaml"), _settings(tmp_path, constraints=Constraints(max_gflops=0.1)), 0, "x")
    assert not ev.feasible and ev.proxy is None and ev.error is None
    assert ev.violations["max_gflops"] == pytest.approx((ev.cost.gflops - 0.1) / 0.1)
    assert "train_s" not in ev.phases


@pytest.mark.parametrize(
    "exc", [RuntimeError("CUDA out of memory. Tried to allocate"), FloatingPointError("NaN loss"), ValueError("bad")]
)
def test_a_failing_candidate_fails_alone_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(evaluate_module, "train_proxy", boom)
    arch = load_space("yolo11_backbone").stock()
    ev = evaluate(arch, 5, Path("data.yaml"), _settings(tmp_path), 0, "f")
    assert ev.error.startswith(f"train: {type(exc).__name__}: {exc}")
    assert ev.cost is not None and ev.latency is not None


def test_preset_schedule_defaults_and_validation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = load_preset("smoke")
    assert set(DEFAULT_SCHEDULE) <= set(cfg.schedule)
    bad = tmp_path / "p.yaml"
    for section, message in [
        ({"train": {"epochs": 0}}, "train.epochs: must be at least 1"),
        ({"train": {"lr": 0.1}}, "train.lr: not a proxy-schedule argument"),
        ({"train": {"batch": "16"}}, "train.batch: expected int"),
        ({"train": {"optimizer": "Lion"}}, "train.optimizer: must be one of"),
        ({"init": "pretrained"}, "init: must be 'scratch' or 'warm'"),
        ({"constraints": {"max_flops": 3}}, "constraints.max_flops: unknown constraint"),
        ({"constraints": {"max_gflops": -1}}, "constraints.max_gflops: expected a positive number"),
        ({"latency": {"runs": 0}}, "latency.runs: expected a positive int"),
    ]:
        bad.write_text(yaml.safe_dump({"space": "yolo11_backbone", **section}))
        assert main(["--study", str(bad), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert message in err and str(bad) in err, err
