"""The weight-sharing supernet: building, path extraction, BatchNorm recalibration, training once per study."""

from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from nas.config import load_preset
from nas.errors import UserError
from nas.measure.cost import build_model
from nas.measure.supernet import (
    ChoiceLayer,
    build_supernet,
    calibration_images,
    inherit,
    path_of,
    random_path,
    recalibrate_bn,
    set_path,
    supernet_file,
)
from nas.measure.warm_start import made_once
from nas.space import load_space

SPACE = {
    "base": "yolo11n.yaml",
    "points": [
        {"name": "down", "layers": [3], "choices": ["Conv", "GhostV2", "Conv2Former"], "kernels": [5, 7]},
        {"name": "block", "layers": [4], "choices": ["C3k2", "C3k2_ConvNeXt"]},
        {"name": "neck", "layers": [17, 20], "choices": ["Conv", "DynamicConv"]},  # tied layers
    ],
}


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> object:
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return load_space(str(path))


@pytest.fixture(scope="module")
def supernet(space: object) -> torch.nn.Module:
    net = build_supernet(space, nc=5)
    with torch.no_grad():  # distinct values everywhere, so a wrong copy cannot pass by coincidence
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    return net.eval()


def test_each_point_layer_holds_every_option_in_order(space: object, supernet: torch.nn.Module) -> None:
    for point in space.points:
        for layer in point.layers:
            choice_layer = supernet.model[layer]
            assert isinstance(choice_layer, ChoiceLayer)
            assert len(choice_layer.options) == len(point.options())  # Conv2Former: one option per kernel
    assert [type(m).__name__ for m in supernet.model[3].options] == ["Conv", "GhostV2", "Conv2Former", "Conv2Former"]
    kernels = [m.block.attn.a[2].kernel_size for m in list(supernet.model[3].options)[2:]]
    assert kernels == [(5, 5), (7, 7)]  # separate weights per kernel


@pytest.mark.parametrize(
    "choices",
    [
        {},
        {"down": "GhostV2", "block": "C3k2_ConvNeXt", "neck": "DynamicConv"},
        {"down": ("Conv2Former", 7), "neck": "DynamicConv"},
    ],
    ids=["stock", "ghost-convnext-dynamic", "conv2former-k7"],
)
def test_a_candidate_inherits_every_tensor_of_its_path_and_computes_what_the_supernet_does(
    space: object, supernet: torch.nn.Module, choices: dict
) -> None:
    from nas.space import Choice

    arch = space.architecture({k: Choice(*v) if isinstance(v, tuple) else v for k, v in choices.items()})
    candidate = build_model(arch.model_dict(5))
    path = path_of(space, arch)
    count = inherit(candidate, supernet.state_dict(), path)
    assert count == len(candidate.state_dict())  # nothing starts fresh
    state = supernet.state_dict()
    for key, value in candidate.state_dict().items():
        parts = key.split(".")
        layer = int(parts[1])
        source = f"model.{layer}.options.{path[layer]}.{'.'.join(parts[2:])}" if layer in path else key
        assert torch.equal(value, state[source]), key
    set_path(supernet, path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(candidate.eval()(x)[0], supernet(x)[0])


def test_inheriting_from_another_space_fails_loudly(space: object, supernet: torch.nn.Module) -> None:
    other = load_space("yolo11_backbone").architecture({"down_p2": "ACmix"})
    with pytest.raises(KeyError):
        inherit(build_model(other.model_dict(5)), supernet.state_dict(), path_of(load_space("yolo11_backbone"), other))


def test_random_paths_draw_operators_uniformly_not_kernels(space: object) -> None:
    rng = random.Random(0)
    draws = [random_path(space, rng) for _ in range(3000)]
    conv2former = sum(d[3] in (2, 3) for d in draws) / len(draws)
    assert conv2former == pytest.approx(1 / 3, abs=0.04)  # 1 of 3 operators, though 2 of 4 options
    assert all(d[17] == d[20] for d in draws)  # tied layers take one option


def test_bn_recalibration_sets_exact_batch_statistics_and_changes_nothing_else() -> None:
    model = build_model(load_space("yolo11_backbone").stock().model_dict(5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    momenta = [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    batches = [torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64) * 0.5]
    count = recalibrate_bn(model.eval(), iter(batches))
    after = model.state_dict()
    assert count == len(momenta) > 50
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    assert [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)] == momenta
    assert not model.training  # its mode is restored
    with torch.no_grad():  # the first BatchNorm now holds the plain average of its inputs' batch means
        conv = model.model[0].conv
        expected = torch.stack([conv(x).mean((0, 2, 3)) for x in batches]).mean(0)
    torch.testing.assert_close(model.model[0].bn.running_mean, expected, rtol=1e-4, atol=1e-5)


def test_calibration_images_are_the_first_training_images_letterboxed(tiny_dataset: Path) -> None:
    batches = list(calibration_images(tiny_dataset, 64, count=10))
    assert [b.shape for b in batches] == [(10, 3, 64, 64)]
    assert float(batches[0].min()) >= 0.0 and float(batches[0].max()) <= 1.0
    again = next(calibration_images(tiny_dataset, 64, count=10))
    assert torch.equal(batches[0], again)


def _make_slowly(out: str, log: str) -> None:
    def make(partial: Path) -> None:
        with open(log, "a") as f:
            f.write("made\n")
        time.sleep(1.0)
        partial.write_text("weights")

    made_once(Path(out), make)


def test_one_worker_makes_the_file_and_a_second_waits_and_reuses_it(tmp_path: Path) -> None:
    out, log = tmp_path / "supernet_e1.pt", tmp_path / "log"
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_make_slowly, args=(str(out), str(log))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert log.read_text() == "made\n" and out.read_text() == "weights"


def test_a_killed_training_leaves_no_half_written_file(tmp_path: Path) -> None:
    out = tmp_path / "supernet_e1.pt"

    def killed(partial: Path) -> None:
        partial.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        made_once(out, killed)
    assert not out.exists() and not out.with_suffix(".part").exists()
    made_once(out, lambda partial: partial.write_text("whole"))
    assert out.read_text() == "whole"


def test_a_supernet_study_trains_it_once_and_every_trial_inherits(tmp_path: Path) -> None:
    from nas.study import open_storage
    from nas.study.run import StudyRun, run_study

    preset = tmp_path / "sn.yaml"
    raw = yaml.safe_load((Path(load_preset("smoke").path)).read_text())
    raw.update(init="supernet", supernet_epochs=1, train={**raw["train"], "epochs": 0})
    raw["latency"] = {"runs": 1, "warmup": 1}
    raw["imgsz"] = 64
    preset.write_text(yaml.safe_dump(raw))
    cfg = load_preset(str(preset))
    url = f"sqlite:///{tmp_path / 'sn.db'}"
    for total in (2, 3):
        storage = open_storage(url, worker=True)
        try:
            run_study(cfg, storage, StudyRun(trials=total, run_dir=tmp_path / "runs"))
        finally:
            storage.close()
        if total == 2:
            weights = supernet_file(tmp_path / "runs" / "sn", 1)
            made = weights.stat().st_mtime_ns
    assert weights.stat().st_mtime_ns == made  # the second run reused it
    trials = optuna.load_study(study_name="sn", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for t in trials:
        a = t.user_attrs
        assert a["init"] == "supernet" and a["init_weights"] == str(weights) and a["epochs"] == 0
        assert a["inherited_tensors"] > 400 and {"inherit_s", "bn_recal_s"} <= set(a["phases"])
    assert not list((tmp_path / "runs" / "sn").glob("trial_*"))


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ({"train": {"epochs": 0}}, "train.epochs: must be at least 1 (0 validates inherited weights"),
        ({"supernet_epochs": 4}, "supernet_epochs: only applies with init: supernet"),
        ({"init": "supernet", "supernet_epochs": 0}, "supernet_epochs: must be at least 1"),
    ],
    ids=["zero-epochs-without-supernet", "supernet-epochs-without-supernet", "zero-supernet-epochs"],
)
def test_supernet_preset_keys_are_validated(preset: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"space": "yolo11_backbone", **preset}))
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_preset(str(path))
