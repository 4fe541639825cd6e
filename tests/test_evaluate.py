"""Evaluating one architecture: cheap phases first, constraints before training, failures contained."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

import nas.measure.evaluation as evaluate_module
from nas.cli.search import main
from nas.config import StudyConfig, load_preset
from nas.data.datasets import local_dataset
from nas.measure import Runtime, evaluate
from nas.settings import DEFAULT_SCHEDULE, Constraints, LatencySettings

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "warmup_epochs": 0, "mosaic": 0.0}


def _cfg(data: Path | None = None, **kw: object) -> StudyConfig:
    """The smoke preset evaluated at 128 px with a tiny schedule (on ``data`` if given)."""
    cfg = load_preset("smoke")
    extra = {"dataset": local_dataset(data)} if data else {}
    fields = {"imgsz": 128, "schedule": TINY, "latency": LatencySettings(runs=20, warmup=1), **extra, **kw}
    return dataclasses.replace(cfg, **fields)


def test_feasible_candidate_is_trained_and_its_run_removed(tmp_path: Path, tiny_dataset: Path) -> None:
    cfg = _cfg(tiny_dataset)
    arch = cfg.space.architecture({"c3k2_p3": "C3k2_ConvNeXt"})
    ev = evaluate(arch, cfg, Runtime(run_root=tmp_path / "runs"), seed=0, run_name="t0")
    assert ev.error is None and ev.feasible and ev.proxy is not None
    assert set(ev.phases) == {"build_s", "cost_s", "export_s", "latency_s", "train_setup_s", "train_s", "val_s"}
    assert ev.phases["train_setup_s"] > 0 and ev.phases["train_s"] > 0
    assert ev.cost.imgsz == 128 and ev.latency.imgsz == 128
    assert ev.latency.warmup == 1 and ev.latency.runs == 20  # the preset's latency protocol reaches the measurement
    assert not any((tmp_path / "runs").iterdir())


def test_keep_runs_keeps_the_run_folder(tmp_path: Path, tiny_dataset: Path) -> None:
    cfg = _cfg(tiny_dataset)
    evaluate(cfg.space.stock(), cfg, Runtime(run_root=tmp_path / "runs", keep_runs=True), seed=0, run_name="kept")
    assert (tmp_path / "runs" / "kept").is_dir() and (tmp_path / "runs" / "kept.yaml").is_file()


def test_infeasible_candidate_is_never_trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate_module, "train_proxy", lambda *a, **k: pytest.fail("trained an infeasible model"))
    cfg = _cfg(constraints=Constraints(max_gflops=0.1))
    arch = cfg.space.architecture({"down_p2": "ACmix"})
    ev = evaluate(arch, cfg, Runtime(run_root=tmp_path / "runs"), 0, "x")
    assert not ev.feasible and ev.proxy is None and ev.error is None
    assert ev.violations["max_gflops"] == pytest.approx((ev.cost.gflops - 0.1) / 0.1)
    assert "train_s" not in ev.phases


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "train: out of memory (CUDA"),
        (RuntimeError("shape mismatch"), "train: RuntimeError: shape mismatch (at "),
        (FloatingPointError("NaN loss"), "train: FloatingPointError: NaN loss (at "),
        (ValueError("bad"), "train: ValueError: bad (at "),
    ],
    ids=["oom", "runtime", "nan", "value"],
)
def test_a_failing_candidate_fails_alone_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception, reason: str
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(evaluate_module, "train_proxy", boom)
    cfg = _cfg()
    ev = evaluate(cfg.space.stock(), cfg, Runtime(run_root=tmp_path / "runs"), 0, "f")
    assert ev.error.startswith(reason), ev.error
    assert ev.cost is not None and ev.latency is not None


def test_preset_schedule_defaults() -> None:
    cfg = load_preset("smoke")
    assert set(DEFAULT_SCHEDULE) <= set(cfg.schedule)
    assert cfg.schedule["epochs"] == 1 and cfg.schedule["imgsz"] == 64  # the preset's values win over the defaults


def test_the_preset_schedule_reaches_the_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    class StopError(Exception):
        pass

    class FakeTrainer:
        def __init__(self, overrides: dict) -> None:
            seen.update(overrides)
            raise StopError

    monkeypatch.setattr("nas.measure.proxy.ProxyTrainer", FakeTrainer)
    cfg = _cfg(schedule={**TINY, "lr0": 0.0123, "mosaic": 0.25})
    ev = evaluate(cfg.space.stock(), cfg, Runtime(run_root=tmp_path / "runs", device="cpu"), 7, "s")
    assert ev.error is not None and "StopError" in ev.error
    assert {k: seen[k] for k in ("epochs", "imgsz", "lr0", "mosaic", "seed", "device")} == {
        "epochs": 1, "imgsz": 64, "lr0": 0.0123, "mosaic": 0.25, "seed": 7, "device": "cpu"
    }  # fmt: skip


BAD_SECTIONS = [
    ({"train": {"epochs": 0}}, "train.epochs: must be at least 1 (0 validates inherited weights: init: supernet)"),
    ({"train": {"lr": 0.1}}, "train.lr: unknown key (allowed: epochs, imgsz"),
    ({"train": {"batch": "16"}}, "train.batch: expected int, got '16'"),
    ({"train": {"optimizer": "Lion"}}, "train.optimizer: must be one of SGD"),
    ({"train": {"fraction": 0}}, "train.fraction: must be greater than 0"),
    ({"init": "pretrained"}, "init: must be one of scratch, warm, supernet, got 'pretrained'"),
    ({"constraints": {"max_flops": 3}}, "constraints.max_flops: unknown key (allowed: max_gflops"),
    ({"constraints": {"max_gflops": -1}}, "constraints.max_gflops: must be greater than 0, got -1"),
    ({"latency": {"runs": 0}}, "latency.runs: must be at least 1, got 0"),
    ({"latency": [1, 2]}, "latency: must be a mapping (keys: runs, warmup, threads, half, backend, max_spread)"),
]


@pytest.mark.parametrize(("section", "message"), BAD_SECTIONS, ids=[m.split(":")[0] for _, m in BAD_SECTIONS])
def test_a_bad_preset_section_names_file_and_key(
    section: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump({"space": "yolo11_backbone", **section}))
    assert main(["--study", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {bad}: {message}" in err, err
