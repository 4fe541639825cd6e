"""Latency on the deployment runtime: backend choice, the ONNX export of every operator, the conditions recorded,
repeats of a spread measurement and how a noisy one shows in the trial and on the console."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from nas.cli.progress import Progress
from nas.config import load_preset
from nas.errors import ConfigError, UserError
from nas.measure import Evaluation, Latency, Runtime, measure_latency
from nas.measure import backends as backends_module
from nas.measure import latency as latency_module
from nas.measure.backends import Runner, choose_backend, use_half
from nas.measure.deploy_export import deployable, onnx_file
from nas.settings import LatencySettings
from nas.study import StudyRun, TrialReport, open_storage, run_study
from nas.study import run as run_module
from nas.study.records import runtime_record, trial_attrs
from tests.yolo_yaml import MIXED_LAYOUT, yolo11_dict

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's latency lock lives in its own cache folder."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends_module, "_said", set())


def test_default_backend_is_onnxruntime_on_cpu_and_tensorrt_or_torch_on_cuda(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert choose_backend(None, CPU) == "onnxruntime"
    monkeypatch.setattr(backends_module, "available", lambda name: name == "tensorrt")
    assert choose_backend(None, CUDA) == "tensorrt"
    monkeypatch.setattr(backends_module, "available", lambda name: name != "tensorrt")
    with caplog.at_level(logging.WARNING):
        assert choose_backend(None, CUDA) == "torch"
        assert choose_backend(None, CUDA) == "torch"
    said = [r.getMessage() for r in caplog.records if "tensorrt" in r.getMessage()]
    assert len(said) == 1 and "fp16" in said[0] and "pip install tensorrt" in said[0]  # said once
    assert use_half(LatencySettings(), "torch", CUDA) and use_half(LatencySettings(), "tensorrt", CUDA)
    assert not use_half(LatencySettings(half=False), "torch", CUDA)
    assert not use_half(LatencySettings(half=True), "torch", CPU)


def test_an_unavailable_backend_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends_module, "available", lambda name: name not in ("openvino", "tensorrt"))
    model = DetectionModel(yolo11_dict("n"), verbose=False)
    with pytest.raises(UserError, match="latency backend openvino needs the openvino package: pip install openvino"):
        measure_latency(model, 64, "cpu", LatencySettings(backend="openvino"))
    with pytest.raises(UserError, match="pip install tensorrt"):
        choose_backend("tensorrt", CUDA)
    monkeypatch.setattr(backends_module, "available", lambda name: True)
    with pytest.raises(UserError, match="tensorrt needs a CUDA device"):
        choose_backend("tensorrt", CPU)


def test_a_study_names_its_backend_in_the_fingerprint_and_refuses_a_missing_one_before_any_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = load_preset("smoke")
    assert runtime_record(cfg, "cpu", None)["latency_backend"] == "onnxruntime"
    monkeypatch.setattr(backends_module, "available", lambda name: name != "openvino")
    openvino = dataclasses.replace(cfg, latency=LatencySettings(backend="openvino"))
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", worker=True)
    trained: list[object] = []
    monkeypatch.setattr(run_module, "train_supernet", lambda *a, **k: trained.append(a))
    monkeypatch.setattr(run_module, "warm_start_weights", lambda *a, **k: trained.append(a))
    try:
        with pytest.raises(UserError, match="pip install openvino"):
            run_study(openvino, storage, StudyRun(trials=1, run_dir=tmp_path / "runs"))
    finally:
        storage.close()
    assert trained == []


@pytest.mark.parametrize(
    ("latency", "message"),
    [
        ("{backend: tflite}", "latency.backend: must be one of onnxruntime, torch, tensorrt, openvino, got 'tflite'"),
        ("{max_spread: 0}", "latency.max_spread: must be greater than 0, got 0"),
    ],
)
def test_a_bad_latency_key_names_file_and_key(tmp_path: Path, latency: str, message: str) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(f"space: yolo11_backbone\nlatency: {latency}\n")
    with pytest.raises(ConfigError, match=rf"p\.yaml: {message}"):
        load_preset(str(preset))


def test_preset_latency_keys_reach_the_settings(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text("space: yolo11_backbone\nlatency: {backend: torch, max_spread: 0.2, threads: 1}\n")
    assert load_preset(str(preset)).latency == LatencySettings(threads=1, backend="torch", max_spread=0.2)
    assert load_preset("light").latency.backend is None  # the device's default


def test_every_operator_exports_as_deployed_and_runs_in_onnxruntime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    model = DetectionModel(yolo11_dict("n", MIXED_LAYOUT, nc=5), verbose=False)
    x = torch.rand(1, 3, 128, 128)
    with onnx_file(model, 128) as (path, seconds):
        assert seconds > 0 and path.is_file()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = deployable(model)(x)
    assert len(got) == 1 and got[0].shape == (1, 4 + 5, 336)  # one boxes-and-scores output, 16^2 + 8^2 + 4^2 anchors
    assert np.abs(got[0] - want.numpy()).max() <= 1e-3
    assert not list((tmp_path / "tmp").iterdir())  # the export is removed
    assert not model.is_fused()


def test_cpu_default_measures_onnxruntime_and_records_its_conditions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    model = DetectionModel(yolo11_dict("n", {1: "ACmix", 3: "DynamicConv"}), verbose=False)
    lat = measure_latency(model, 64, "cpu", LatencySettings(runs=5, warmup=1, threads=1, max_spread=10.0))
    assert (lat.backend, lat.backend_version, lat.provider) == (
        "onnxruntime",
        onnxruntime.__version__,
        "CPUExecutionProvider",
    )
    assert lat.runs == 20 and lat.threads == 1 and lat.dtype == "float32" and lat.imgsz == 64
    assert lat.export_s is not None and lat.export_s > 0 and lat.median_ms > 0
    assert (lat.attempts, lat.noisy) == (1, False)
    assert not list((tmp_path / "tmp").iterdir())  # the export is removed
    eager = measure_latency(model, 64, "cpu", LatencySettings(runs=5, warmup=1, threads=1, backend="torch"))
    assert (eager.backend, eager.provider, eager.export_s) == ("torch", "cpu", None)


def _fake_backend(monkeypatch: pytest.MonkeyPatch, attempts: list[list[float]]) -> None:
    """Make every measurement run on a fake backend whose successive attempts take ``attempts`` milliseconds."""
    times = iter([t for attempt in attempts for t in (1.0, *attempt)])  # one warm-up run per attempt

    @contextlib.contextmanager
    def prepared(*_: object) -> Iterator[Runner]:
        yield Runner(lambda: next(times), "torch", "0", "cpu", "float32", 1, None)

    monkeypatch.setattr(latency_module, "prepared", prepared)


def test_a_spread_measurement_is_repeated_and_the_steadiest_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = LatencySettings(runs=20, warmup=1, backend="torch", max_spread=0.1)
    spread, steady = [10.0, 20.0] * 10, [10.0] * 19 + [11.0]
    _fake_backend(monkeypatch, [spread, steady])
    lat = measure_latency(torch.nn.Identity(), 64, "cpu", settings)
    assert (lat.attempts, lat.noisy, lat.median_ms, lat.iqr_ms) == (2, False, 10.0, 0.0)
    _fake_backend(monkeypatch, [spread, spread, [10.0, 14.0] * 10, spread])
    lat = measure_latency(torch.nn.Identity(), 64, "cpu", settings)
    assert (lat.attempts, lat.noisy) == (4, True) and lat.median_ms == 12.0  # 1 + 3 repeats, the steadiest kept


def test_a_noisy_latency_marks_the_trial_and_its_console_line(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_preset("smoke")
    arch = cfg.space.stock()
    noisy = Latency(12.0, 6.0, 20, 1, "cpu", "CPU", "float32", 1, 640, torch.__version__, noisy=True, attempts=4)
    attrs = trial_attrs(arch, cfg, Runtime(), Evaluation(latency=noisy))
    assert attrs["latency_noisy"] is True and attrs["latency"]["noisy"] and attrs["latency"]["attempts"] == 4
    steady = Latency(12.0, 0.5, 20, 1, "cpu", "CPU", "float32", 1, 640, torch.__version__)
    assert "latency_noisy" not in trial_attrs(arch, cfg, Runtime(), Evaluation(latency=steady))
    values = {"mAP50-95": 0.1, "GFLOPs": 6.5, "latency_ms": 12.0}
    progress = Progress()
    progress(TrialReport(3, "stock", values, 1.0, 1, "ok", latency_noisy=True), 1, 3)
    progress(TrialReport(4, "stock", values, 1.0, 1, "ok"), 2, 3)
    lines = capsys.readouterr().err.splitlines()
    assert "ok latency noisy | stock" in lines[1] and "noisy" not in lines[2]  # lines[0]: the column header


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cuda_default_measures_tensorrt_or_torch_fp16_with_at_least_50_runs() -> None:
    lat = measure_latency(DetectionModel(yolo11_dict("n"), verbose=False), 640, "cuda", LatencySettings())
    assert lat.backend == ("tensorrt" if backends_module.available("tensorrt") else "torch")
    assert lat.runs >= 50 and lat.dtype == "float16" and lat.provider == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cuda_onnxruntime_records_the_provider_that_ran() -> None:
    pytest.importorskip("onnxruntime")
    model = DetectionModel(yolo11_dict("n"), verbose=False)
    try:
        lat = measure_latency(model, 320, "cuda", LatencySettings(backend="onnxruntime"))
    except UserError as e:  # a CPU-only onnxruntime build: refused, never silently measured on the CPU
        assert "onnxruntime-gpu" in str(e)
    else:
        assert lat.provider == "CUDAExecutionProvider" and lat.runs >= 50
