"""``nas-yolo``: Ultralytics' yolo command with the operators registered trains an exported YAML; bad input ends in
one ``error:`` line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import yolo
from nas.config import load_preset

NAS_YOLO = shutil.which("nas-yolo") or str(Path(sys.executable).with_name("nas-yolo"))


def exported_yaml(tmp_path: Path) -> Path:
    """Write a smoke-study architecture with two operators, as nas.export writes its model YAML."""
    cfg = load_preset("smoke")
    first, second = cfg.space.points[0], cfg.space.points[1]
    ops = {first.name: "GhostV2" if first.kind == "conv" else "C3k2_GhostV2"}
    ops[second.name] = "DynamicConv" if second.kind == "conv" else "C3k2_DynamicConv"
    out = tmp_path / "best.yaml"
    out.write_text(cfg.space.architecture(ops).to_yaml(cfg.dataset.nc))
    return out


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cwd / "yolo_config")}
    return subprocess.run([NAS_YOLO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_nas_yolo_trains_an_exported_yaml_for_one_epoch(tmp_path: Path, tiny_dataset: Path) -> None:
    model = exported_yaml(tmp_path)
    args = ["train", f"model={model}", f"data={tiny_dataset}", "epochs=1", "imgsz=64", "batch=8", "workers=0"]
    done = run_cli([*args, "device=cpu", f"project={tmp_path / 'runs'}", "name=one", "plots=False"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "one" / "weights" / "last.pt").is_file()
    assert "Downloading" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "row,message",
    [
        ("FooConv", "unknown module 'FooConv' (neither an Ultralytics module nor one of this project's operators"),
        (None, "is not a local file: nas-yolo uses only local files"),
    ],
)
def test_nas_yolo_bad_model_is_one_error_line(
    tmp_path: Path, tiny_dataset: Path, row: str | None, message: str
) -> None:
    model = exported_yaml(tmp_path)
    if row:
        model.write_text(model.read_text().replace("GhostV2", row))
    else:
        model = tmp_path / "missing.yaml"
    done = run_cli(["train", f"model={model}", f"data={tiny_dataset}", "epochs=1"], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr


def test_nas_yolo_never_downloads_a_dataset_or_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = exported_yaml(tmp_path)
    assert yolo.run(["train", f"model={model}", "data=coco8.yaml"]) == 2
    assert "coco8.yaml does not exist: only local files" in capsys.readouterr().err
    assert yolo.run(["train", f"model={model}"]) == 2
    assert "data= is required to train" in capsys.readouterr().err
    assert yolo.run(["predict", "model=yolo11n.pt"]) == 2
    assert "model yolo11n.pt is not a local file" in capsys.readouterr().err
    assert yolo.run(["train", f"model={model}", "data", "=", "coco8.yaml"]) == 2  # spaced, as Ultralytics joins it
    assert "coco8.yaml does not exist: only local files" in capsys.readouterr().err


def test_nas_yolo_rejects_an_unknown_argument_in_one_line(
    tmp_path: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = exported_yaml(tmp_path)
    assert yolo.run(["train", f"model={model}", f"data={tiny_dataset}", "epochz=3"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: 'epochz' is not a valid YOLO argument")
