"""Proxy training through Ultralytics' trainer, weight inheritance, and latency measurement."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas.errors import UserError
from nas.measure import measure_latency, remove_run, train_proxy, validate_weights
from nas.settings import LatencySettings
from nas.space import load_space
from tests.yolo_yaml import write_yaml, yolo11_dict

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "warmup_epochs": 0, "mosaic": 0.0}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    """Return the float state dict of an Ultralytics checkpoint (its EMA model, as training saves it)."""
    ckpt = torch.load(path, weights_only=False)
    return (ckpt.get("ema") or ckpt["model"]).float().state_dict()


def test_proxy_trains_validates_once_and_leaves_no_checkpoint(tmp_path: Path, tiny_dataset: Path) -> None:
    arch = load_space("yolo11_backbone").architecture({"down_p3": "GhostV2"})
    model_yaml = tmp_path / "trial.yaml"
    model_yaml.write_text(arch.to_yaml(nc=5))
    run = tmp_path / "runs" / "trial_0"
    result = train_proxy(model_yaml, tiny_dataset, TINY, run, seed=0)
    assert 0.0 <= result.map50_95 <= result.map50 <= 1.0
    assert result.epochs == 1 and result.train_s > 0 and result.val_s > 0
    assert not list(run.rglob("*.pt"))
    remove_run(run)
    assert not run.exists()


def test_weights_are_inherited_where_name_and_shape_match(tmp_path: Path, tiny_dataset: Path) -> None:
    base_yaml = write_yaml(yolo11_dict("n", nc=5), tmp_path / "base.yaml")
    base_run = tmp_path / "runs" / "base"
    train_proxy(base_yaml, tiny_dataset, TINY, base_run, save=True)
    ckpt = base_run / "weights" / "last.pt"
    base_sd = _weights(ckpt)

    ghost = write_yaml(yolo11_dict("n", {3: "GhostV2"}, nc=5), tmp_path / "ghost.yaml")
    frozen = {**TINY, "optimizer": "SGD", "lr0": 0.0}  # no update: what it holds is what it inherited
    run = tmp_path / "runs" / "inherit"
    train_proxy(ghost, tiny_dataset, frozen, run, weights=ckpt, save=True)
    sd = _weights(run / "weights" / "last.pt")
    torch.testing.assert_close(sd["model.0.conv.weight"], base_sd["model.0.conv.weight"])  # inherited, unchanged
    torch.testing.assert_close(sd["model.22.cv2.conv.weight"], base_sd["model.22.cv2.conv.weight"])
    assert "model.3.conv.weight" in base_sd and "model.3.conv.weight" not in sd  # the replaced layer starts fresh


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="never downloads weights"):
        validate_weights(str(tmp_path / "yolo11n.pt"))
    with pytest.raises(UserError, match=r"expected a \.pt checkpoint"):
        validate_weights("weights.onnx")


def test_cpu_latency_is_a_median_of_at_least_20_runs_with_conditions() -> None:
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(yolo11_dict("n", {1: "ACmix"}), verbose=False)
    torch.set_num_threads(2)  # not the measurement's count, so that restoring it shows
    lat = measure_latency(model, 64, "cpu", LatencySettings(runs=5, warmup=2, threads=1))
    assert lat.runs == 20 and lat.threads == 1 and lat.device == "cpu" and lat.dtype == "float32"
    assert lat.backend == "onnxruntime"  # the CPU default: the runtime Ultralytics' CPU ONNX column measures
    assert lat.median_ms > 0 and lat.iqr_ms >= 0 and lat.torch_version == torch.__version__
    assert torch.get_num_threads() == 2  # restored
    assert not model.is_fused()  # measured on a fused copy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cuda_latency_uses_events_and_fp16() -> None:
    from ultralytics.nn.tasks import DetectionModel

    lat = measure_latency(DetectionModel(yolo11_dict("n"), verbose=False), 640, "cuda", LatencySettings(half=True))
    assert lat.runs >= 50 and lat.dtype == "float16" and lat.iqr_ms / lat.median_ms < 0.5
