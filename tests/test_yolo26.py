"""YOLO26 search spaces: they load at every scale, keep the end-to-end head, every operator builds at every point,
``--space`` overrides a preset (and is refused on a study made with another space), a smoke study runs and its
export trains and reloads in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops

from modules.table import FAMILIES, KERNEL, OPERATORS
from nas.cli import export, search
from nas.config import load_preset
from nas.measure import architecture_cost
from nas.measure.cost import build_model
from nas.space import Choice, load_space
from nas.space.base_models import MODELS_DIR
from nas.space.space import takes_kernel
from nas.study.records import record
from tests.study_once import session_search, study_copy
from tests.yolo_yaml import train_one_epoch

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
YOLO26_YAML = MODELS_DIR / "26" / "yolo26.yaml"
SPACES = ("yolo26_backbone", "yolo26_full")


def _one_error_line(err: str) -> str:
    """Return the only stderr line, after checking it is one ``error: `` line and there is no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _head_params(model: DetectionModel) -> int:
    return sum(p.numel() for p in model.model[-1].parameters())


def _family_choices(space_name: str, family: str) -> dict[str, Choice]:
    """Every point of the space set to ``family``: its conv form at conv points, its C3k2 form at block points."""
    space = load_space(space_name)
    out = {}
    for p in space.points:
        op = family if p.kind == "conv" else f"C3k2_{family}"
        out[p.name] = Choice(op, KERNEL.default) if takes_kernel(op) else Choice(op)
    return out


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("scale", ["n", "s", "m", "l", "x"])
def test_spaces_load_over_yolo26_at_every_scale_and_keep_every_top_level_key(name: str, scale: str) -> None:
    space = load_space(name, scale)
    assert space.identity == f"yolo26{scale}"
    base = yaml.safe_load(YOLO26_YAML.read_text())
    exported = yaml.safe_load(space.architecture(_family_choices(name, "GhostV2")).to_yaml(nc=3))
    for key, value in base.items():
        assert key in exported, key
        if key not in ("nc", "scales", "backbone", "head"):
            assert exported[key] == value, key
    assert exported["end2end"] is True and exported["reg_max"] == 1
    assert exported["scales"] == {scale: base["scales"][scale]} and exported["nc"] == 3


def test_the_full_space_covers_backbone_and_neck_but_not_the_attention_c3k2() -> None:
    full = load_space("yolo26_full")
    assert {layer for p in full.points for layer in p.layers} == {1, 2, 3, 4, 5, 6, 7, 8, 13, 16, 17, 19, 20}
    assert next(p for p in full.points if 17 in p.layers).layers == (17, 20)
    assert "C3k2_GhostV2" in next(p for p in full.points if 13 in p.layers).choices
    assert "layer 22" in full.path.read_text().lower()  # the file says why the PSA block is not a point
    backbone = load_space("yolo26_backbone")
    assert [p.layers for p in backbone.points] == [(i,) for i in range(1, 9)]
    assert [p.choices for p in backbone.points] == [p.choices for p in load_space("yolo11_backbone").points]


@pytest.mark.parametrize("name", SPACES)
def test_a_candidate_keeps_yolo26s_end_to_end_head(name: str, tmp_path: Path) -> None:
    stock = YOLO("yolo26n.yaml").model  # Ultralytics' own build of YOLO26n
    arch = load_space(name, "n").architecture(_family_choices(name, "DynamicConv"))
    path = tmp_path / "candidate.yaml"
    path.write_text(arch.to_yaml(nc=80))
    for model in (build_model(arch.model_dict(80)), YOLO(str(path)).model):
        head = model.model[-1]
        assert type(head) is type(stock.model[-1]) is Detect
        assert head.reg_max == 1 and head.one2one_cv2 is not None
        assert _head_params(model) == _head_params(stock)
    # the check can fail: the same rows without the YAML's end2end / reg_max build another head
    bare = {k: v for k, v in arch.model_dict(80).items() if k not in ("end2end", "reg_max")}
    other = build_model(bare)
    assert getattr(other.model[-1], "one2one_cv2", None) is None
    assert _head_params(other) != _head_params(stock)


def test_stock_yolo26n_costs_what_ultralytics_reports() -> None:
    ours = architecture_cost(load_space("yolo26_backbone").stock(), 80, 640)
    model = YOLO("yolo26n.yaml").model  # model.info() prints these two figures: the model as built, both heads
    assert ours.params == sum(p.numel() for p in model.parameters()) == 2_572_280
    assert ours.gflops == pytest.approx(get_flops(model, 640), rel=0.005)
    assert ours.gflops > 6.0  # not the fused one-head figure (about 5.5) that Ultralytics' docs tables quote


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_every_operator_builds_at_every_backbone_point_and_runs_at_64_px(family: str) -> None:
    space = load_space("yolo26_backbone", "n")
    arch = space.architecture(_family_choices("yolo26_backbone", family))
    model = build_model(arch.model_dict(5)).eval()
    for p in space.points:
        (op,) = {str(c.op) for name, c in arch.choices if name == p.name}
        assert isinstance(model.model[p.layers[0]], OPERATORS[op].cls), (p.name, op)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 64, 64))[0]
    anchors = (64 // 8) ** 2 + (64 // 16) ** 2 + (64 // 32) ** 2
    assert y.shape == (1, 4 + 5, anchors) and torch.isfinite(y).all()


def test_space_option_overrides_the_preset_space_at_its_scale() -> None:
    light = load_preset("light")
    cfg = load_preset("light", space="yolo26_backbone")
    assert cfg.space.name == "yolo26_backbone" and cfg.space.identity == "yolo26n"
    assert cfg.schedule == light.schedule and cfg.dataset == light.dataset and cfg.init == light.init
    assert cfg.raw["space"] == "yolo26_backbone"  # what a study stores as its preset


def test_unknown_space_option_is_one_error_line(capsys: pytest.CaptureFixture) -> None:
    assert search.main(["--study", "light", "--space", "yolo99_nothing", "--dry-run"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: --space: unknown search space 'yolo99_nothing'"), line
    assert "yolo26_backbone" in line  # the shipped names are listed


@pytest.fixture(scope="session")
def _yolo26_study_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run a 2-trial smoke study over yolo26_backbone once per test session (all xdist workers together); return its
    work dir, never handed to a test."""
    argv = ["--study", "smoke", "--space", "yolo26_backbone", "--trials", "2"]
    return session_search(tmp_path_factory, "smoke26-once", argv)


@pytest.fixture(scope="module")
def yolo26_study(
    _yolo26_study_once: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Path]]:
    """A finished 2-trial smoke study over yolo26_backbone (``--study smoke --space yolo26_backbone``) in a work dir
    of its own; yields (storage URL, work dir, the smoke data YAML)."""
    with study_copy(_yolo26_study_once, tmp_path_factory, "smoke26") as (storage, work):
        yield storage, work, load_preset("smoke").dataset.data_yaml()


def test_smoke_study_over_yolo26_records_its_space(yolo26_study: tuple[str, Path, Path]) -> None:
    storage, _, _ = yolo26_study
    study = optuna.load_study(study_name="smoke", storage=storage)
    trials = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(trials) == 2
    attrs = study.user_attrs
    assert attrs["space_name"] == "yolo26_backbone" and attrs["base_model"] == "yolo26n"
    assert attrs["space"] == load_space("yolo26_backbone").path.read_text()
    assert yaml.safe_load(attrs["preset"])["space"] == "yolo26_backbone"
    assert trials[0].user_attrs["reference"] and trials[0].user_attrs["summary"] == "stock"
    for t in trials:
        model = yaml.safe_load(record(t, "model_yaml"))
        assert model["end2end"] is True and model["reg_max"] == 1


def test_resuming_with_another_space_is_refused(
    yolo26_study: tuple[str, Path, Path], capsys: pytest.CaptureFixture
) -> None:
    storage, work, _ = yolo26_study
    before = len(optuna.load_study(study_name="smoke", storage=storage).trials)
    assert search.main(["--study", "smoke", "--trials", "3", "--storage", storage]) == 2  # the preset's yolo11 space
    line = _one_error_line(capsys.readouterr().err)
    assert "was created with a different space (yolo26_backbone over yolo26n)" in line, line
    assert "(yolo11_backbone over yolo11n)" in line and "--space yolo26_backbone" in line, line
    assert len(optuna.load_study(study_name="smoke", storage=storage).trials) == before
    argv = ["--study", "smoke", "--space", "yolo26_backbone", "--trials", "2", "--storage", storage]
    assert search.main([*argv, "--run-dir", str(work / "runs")]) == 0  # the same space resumes
    assert "ran 0 trial(s)" in capsys.readouterr().err


def test_an_export_trains_one_epoch_and_reloads_in_a_fresh_process(
    yolo26_study: tuple[str, Path, Path], tmp_path: Path
) -> None:
    storage, _, data = yolo26_study
    study = optuna.load_study(study_name="smoke", storage=storage)
    candidate = next(t for t in study.trials if t.state.name == "COMPLETE" and not t.user_attrs.get("reference"))
    out = tmp_path / "y26.yaml"
    argv = ["--study", "smoke", "--storage", storage, "--trial", str(candidate.number), "--out", str(out)]
    assert export.main(argv) == 0
    assert out.is_file() and "end2end: true" in out.read_text()
    best = train_one_epoch(out, data, tmp_path / "runs")
    assert best.exists()
    trained = YOLO(str(best)).model.float().eval()
    x = torch.rand(1, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(trained(x)[0], tmp_path / "want.pt")
    script = (
        "import json, sys, torch, modules\n"
        "from ultralytics import YOLO\n"
        f"m = YOLO({str(best)!r}).model.float().eval()\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        "with torch.no_grad(): y = m(x)[0]\n"
        f"want = torch.load({str(tmp_path / 'want.pt')!r})\n"
        "head = m.model[-1]\n"
        "print(json.dumps({'diff': (y - want).abs().max().item(), 'types': sorted({type(l).__name__ for l in m.model}),"
        " 'reg_max': head.reg_max, 'one2one': head.one2one_cv2 is not None}))\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["diff"] < 1e-4
    assert got["reg_max"] == 1 and got["one2one"]
    stored = yaml.safe_load(record(candidate, "model_yaml"))
    used = {row[2] for row in stored["backbone"] + stored["head"] if row[2] in OPERATORS}
    assert used, "the exported candidate uses no operator"
    assert {OPERATORS[op].cls.__name__ for op in used} <= set(got["types"])
