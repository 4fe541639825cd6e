"""Search spaces: shipped spaces, sampling, stable keys, YAML round trip, exact stock costs, validation errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops

from nas.cli.search import main
from nas.measure import architecture_cost, model_cost
from nas.space import SPACES_DIR, Choice, load_space

SHIPPED = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_ships_the_three_spaces() -> None:
    assert {"yolo11_backbone", "yolo11_full", "yolov8_downsample"} <= set(SHIPPED)
    full = load_space("yolo11_full")
    assert {layer for p in full.points for layer in p.layers} == {1, 2, 3, 4, 5, 6, 7, 8, 13, 16, 17, 19, 20, 22}
    assert next(p for p in full.points if 17 in p.layers).layers == (17, 20)


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("scale", ["n", "s", "m", "l", "x"])
def test_every_shipped_space_loads_and_samples_at_every_scale(name: str, scale: str) -> None:
    space = load_space(name, scale)
    assert space.scale == scale and space.size() > 1
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    arch = space.sample(trial)
    d = yaml.safe_load(arch.to_yaml(nc=3))
    assert d["nc"] == 3 and list(d["scales"]) == [scale]
    rows = d["backbone"] + d["head"]
    for point, choice in arch.choices:
        for layer in next(p for p in space.points if p.name == point).layers:
            assert rows[layer][2] == choice.op


@pytest.mark.parametrize("name", SHIPPED)
def test_sampled_architectures_build_at_n(name: str) -> None:
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(2):
        arch = space.sample(study.ask())
        assert architecture_cost(arch, 8, 256).params > 0


def test_kernel_is_suggested_only_where_conv2former_is_chosen() -> None:
    space = load_space("yolo11_backbone")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        arch = dict(space.sample(trial).choices)
        for p in space.points:
            has_kernel = f"{p.name}.kernel" in trial.params
            assert has_kernel == arch[p.name].op.endswith("Conv2Former")
            if has_kernel:
                assert arch[p.name].kernel == trial.params[f"{p.name}.kernel"]
        study.tell(trial, 0.0)


def test_keys_are_stable_and_order_independent() -> None:
    space = load_space("yolo11_backbone")
    a = space.architecture({"down_p2": "GhostV2", "c3k2_p3": Choice("C3k2_Conv2Former", 13)})
    b = space.architecture({"c3k2_p3": Choice("C3k2_Conv2Former", 13), "down_p2": Choice("GhostV2")})
    explicit = space.architecture(
        {
            **{p.name: ("Conv" if p.kind == "conv" else "C3k2") for p in space.points},
            "down_p2": "GhostV2",
            "c3k2_p3": Choice("C3k2_Conv2Former", 13),
        }
    )
    assert a.key == b.key == explicit.key and a == b
    assert len(a.key) == 12
    assert a.key != space.architecture({"down_p2": "GhostV2", "c3k2_p3": Choice("C3k2_Conv2Former", 15)}).key
    assert a.key != load_space("yolo11_backbone", "s").architecture(dict(a.choices)).key
    assert a.summary() == "down_p2=Ghost c3k2_p3=C2F13"  # layer order
    assert space.stock().summary() == "stock"


def test_to_yaml_round_trips_through_yolo_to_recorded_cost(tmp_path: Path) -> None:
    space = load_space("yolo11_backbone")
    arch = space.architecture(
        {
            "down_p2": "DynamicConv",
            "c3k2_p2": "C3k2_ACmix",
            "down_p4": Choice("Conv2Former", 9),
            "c3k2_p5": Choice("C3k2_Conv2Former", 17),
            "down_p5": "ConvNeXt",
            "c3k2_p3": "C3k2_GhostV2",
        }
    )
    recorded = architecture_cost(arch, nc=8, imgsz=640)
    path = tmp_path / "yolo11x-misleading-name.yaml"  # Ultralytics would guess scale x from this name
    path.write_text(arch.to_yaml(nc=8))
    model = YOLO(str(path)).model
    assert model_cost(model, 640) == recorded
    assert get_flops(model, 640) == pytest.approx(recorded.gflops, rel=1e-9)


@pytest.mark.parametrize(
    "base,params",
    [
        ("yolo11n.yaml", 2_624_080),
        ("yolo11s.yaml", 9_458_752),
        ("yolo11m.yaml", 20_114_688),
        ("yolov8n.yaml", 3_157_200),
        ("yolov8s.yaml", 11_166_560),
    ],
)
def test_stock_costs_equal_ultralytics(base: str, params: int, tmp_path: Path) -> None:
    family = "yolo11_backbone" if base.startswith("yolo11") else "yolov8_downsample"
    space_file = tmp_path / "s.yaml"
    points = load_space(family).points[:1]
    space_file.write_text(
        yaml.safe_dump(
            {
                "base": base,
                "points": [{"name": p.name, "layers": list(p.layers), "choices": list(p.choices)} for p in points],
            }
        )
    )
    cost = architecture_cost(load_space(str(space_file)).stock(), nc=80, imgsz=640)
    ultralytics_model = YOLO(base).model
    assert cost.params == params == sum(p.numel() for p in ultralytics_model.parameters())
    assert cost.gflops == pytest.approx(get_flops(ultralytics_model, 640), rel=1e-9)


BAD_SPACES = [
    ({"base": "yolo99z.yaml", "points": [{"layers": [1], "choices": ["Conv"]}]}, "base: unknown base model"),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [40], "choices": ["Conv"]}]},
        r"points\[L40\]: layer 40 is out of range",
    ),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [9], "choices": ["Conv"]}]},
        r"points\[L9\]: layer 9 is a SPPF; insertion points must be Conv or C3k2",
    ),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [1], "choices": ["C3k2_GhostV2"]}]},
        r"points\[L1\]: unknown choice 'C3k2_GhostV2' for a Conv layer",
    ),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [2], "choices": ["C3k2", "DeformConv"]}]},
        r"points\[L2\]: unknown choice 'DeformConv' for a C3k2 layer",
    ),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [1], "choices": ["Conv2Former"], "kernels": [7, 12]}]},
        r"points\[L1\]: kernel 12 is invalid: kernels must be odd integers from 5 to 21",
    ),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [1], "choices": ["Conv2Former"], "kernels": [23]}]},
        r"points\[L1\]: kernel 23 is invalid",
    ),
    (
        {
            "base": "yolo11n.yaml",
            "points": [
                {"name": "a", "layers": [1], "choices": ["Conv"]},
                {"name": "b", "layers": [3, 1], "choices": ["Conv"]},
            ],
        },
        r"points\[b\]: layer 1 is already set by point a",
    ),
    (
        {
            "base": "yolo11n.yaml",
            "points": [
                {"name": "a", "layers": [1], "choices": ["Conv"]},
                {"name": "a", "layers": [3], "choices": ["Conv"]},
            ],
        },
        r"points\[a\]: duplicate point name",
    ),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [1], "choices": []}]},
        r"points\[L1\]: choices must be a non-empty",
    ),
    ({"base": "yolo11n.yaml", "points": []}, "points: required"),
    (
        {"base": "yolo11n.yaml", "points": [{"layers": [1, 2], "choices": ["Conv"]}]},
        r"points\[L1\]: tied layers must all be Conv or all be C3k2",
    ),
    (
        {"base": "yolo11n.yaml", "scale": "q", "points": [{"layers": [1], "choices": ["Conv"]}]},
        "base: base model .* has no scale 'q'",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_SPACES, ids=[m[:30] for _, m in BAD_SPACES])
def test_space_validation_errors_name_file_and_point(
    content: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    space = tmp_path / "bad_space.yaml"
    space.write_text(yaml.safe_dump(content))
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"space": str(space)}))
    assert main(["--study", str(preset), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert str(space) in err
    assert re.search(message, err), err


def test_malformed_space_yaml(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text("base: [yolo11n.yaml\npoints: {")
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"space": str(space)}))
    assert main(["--study", str(preset), "--dry-run"]) == 2
    assert "malformed YAML" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ({"space": "yolo11_backbone", "imgsz": 100}, "{preset}: imgsz: must be a multiple of 32, got 100"),
        ({"space": "yolo11_backbone", "imgsz": 0}, "{preset}: imgsz: must be at least 32, got 0"),
        ({"space": "yolo11_backbone", "epochz": 3}, r"{preset}: epochz: unknown key \(allowed: constraints, data,"),
        ({"space": "no_such_space"}, "unknown search space 'no_such_space'"),
        ({"space": "yolo11_backbone", "scale": "z"}, "{preset}: scale: must be one of n, s, m, l, x, got 'z'"),
        ({"space": "yolo11_backbone", "data": "missing/data.yaml"}, "{preset}: data: dataset YAML .* does not exist"),
    ],
)
def test_preset_errors(preset: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump(preset))
    assert main(["--study", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert re.search(message.replace("{preset}", re.escape(str(path))), err), err


def test_unknown_preset_name(capsys: pytest.CaptureFixture) -> None:
    assert main(["--study", "nonexistent", "--dry-run"]) == 2
    assert "unknown study preset 'nonexistent'" in capsys.readouterr().err


def test_dry_run_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["--study", "smoke", "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"space_size", "base_model", "nc", "imgsz", "base"} <= set(d)
    assert d["base_model"] == "yolo11n" and d["nc"] == 5 and d["imgsz"] == 640
    assert d["space_size"] == load_space("yolo11_backbone").size() == (5 + 9) ** 8
    assert d["base"]["params"] > 2_500_000 and d["base"]["gflops"] > 6
    assert d["cheapest"]["gflops"] < d["base"]["gflops"] < d["dearest"]["gflops"]
    assert len(d["points"]) == 8


def test_dry_run_text_accepts_a_preset_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # a small space keeps it fast; the shipped smoke preset's dry run (every option at 640 px) is test_dry_run_json
    space = tmp_path / "small.yaml"
    points = [
        {"name": "down_p2", "layers": [1], "choices": ["Conv", "GhostV2"]},
        {"name": "c3k2_p5", "layers": [8], "choices": ["C3k2", "C3k2_Conv2Former"], "kernels": [5, 7]},
    ]
    space.write_text(yaml.safe_dump({"base": "yolo11n.yaml", "points": points}))
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"space": str(space), "imgsz": 160}))
    assert main(["--study", str(preset), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "distinct architectures: 6" in out
    for name in ("down_p2", "c3k2_p5", "cheapest", "dearest", "GhostV2", "C3k2_Conv2Former k="):
        assert name in out


def test_dry_run_cheapest_is_the_true_minimum_on_a_small_space(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = tmp_path / "small.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "base": "yolo11n.yaml",
                "points": [
                    {"name": "a", "layers": [7], "choices": ["Conv", "GhostV2", "Conv2Former"], "kernels": [5, 21]},
                    {"name": "b", "layers": [8], "choices": ["C3k2", "C3k2_ConvNeXt"]},
                ],
            }
        )
    )
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"space": str(space), "imgsz": 320}))
    assert main(["--study", str(preset), "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    costs = [architecture_cost(a, d["nc"], 320).gflops for a in load_space(str(space)).all_architectures()]
    assert d["space_size"] == len(costs) == 8
    assert d["cheapest"]["gflops"] == pytest.approx(min(costs), abs=1e-4)
    assert d["dearest"]["gflops"] == pytest.approx(max(costs), abs=1e-4)


def test_stock_yaml_builds_in_plain_detection_model() -> None:
    arch = load_space("yolov8_downsample").stock()
    assert isinstance(DetectionModel(arch.model_dict(8), verbose=False), DetectionModel)


@pytest.mark.parametrize("preset", ["smoke", "light", "standard", "full"])
def test_shipped_presets_load(preset: str) -> None:
    from nas.config import load_preset

    cfg = load_preset(preset)
    assert cfg.dataset.nc == 5 and cfg.imgsz == 640
    # a supernet study may validate inherited weights as they are (0 fine-tune epochs); the others must train
    assert cfg.schedule["epochs"] >= (0 if cfg.init == "supernet" else 1)
    if preset == "light":  # the default: the best measured proxy among the cheap ones (benchmarks/README.md)
        assert (cfg.init, cfg.supernet_epochs, cfg.supernet_kernels, cfg.supernet_sampling) == (
            "supernet",
            6,
            "separate",
            "fair",
        )
    assert cfg.space.scale == {"smoke": "n", "light": "n", "standard": "s", "full": "m"}[preset]
