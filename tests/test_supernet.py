"""The weight-sharing supernet: building, path extraction, BatchNorm recalibration, training once per study."""

from __future__ import annotations

import dataclasses
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
    ElasticKernel,
    Supernet,
    build_supernet,
    calibration_images,
    centre_crop,
    fair_paths,
    inherit,
    path_of,
    random_path,
    recalibrate_bn,
    set_path,
    split_file,
    supernet_file,
    train_split,
    train_supernet,
)
from nas.measure.warm_start import made_once
from nas.space import Choice, load_space
from nas.study.records import record
from tests.yolo_yaml import space_from_dict

SPACE = {
    "base": "yolo11n.yaml",
    "points": [
        {"name": "down", "layers": [3], "choices": ["Conv", "GhostV2", "Conv2Former"], "kernels": [5, 7]},
        {"name": "block", "layers": [4], "choices": ["C3k2", "C3k2_ConvNeXt"]},
        {"name": "neck", "layers": [17, 20], "choices": ["Conv", "DynamicConv"]},  # tied layers
    ],
}
SHARED_SPACE = {  # Conv2Former in both slots, tied layers too; kernels up to the largest, 21
    "base": "yolo11n.yaml",
    "points": [
        {"name": "down", "layers": [3], "choices": ["Conv", "Conv2Former"], "kernels": [5, 9, 21]},
        {"name": "block", "layers": [4], "choices": ["C3k2", "C3k2_Conv2Former", "C3k2_ConvNeXt"], "kernels": [5, 21]},
        {"name": "neck", "layers": [17, 20], "choices": ["Conv", "Conv2Former"], "kernels": [7, 21]},
    ],
}


def _randomize(net: torch.nn.Module) -> torch.nn.Module:
    """Give every tensor distinct values, so a wrong copy cannot pass by coincidence; return ``net`` in eval mode."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> object:
    return space_from_dict(SPACE, tmp_path_factory.mktemp("space") / "tiny.yaml")


@pytest.fixture(scope="module")
def supernet(space: object) -> torch.nn.Module:
    return _randomize(build_supernet(space, nc=5))


@pytest.fixture(scope="module")
def shared_space(tmp_path_factory: pytest.TempPathFactory) -> object:
    return space_from_dict(SHARED_SPACE, tmp_path_factory.mktemp("space") / "shared.yaml")


@pytest.fixture(scope="module")
def shared(shared_space: object) -> torch.nn.Module:
    return _randomize(build_supernet(shared_space, nc=5, kernels="shared"))


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
    for mine, theirs in zip(_layer_outputs(candidate, x), _layer_outputs(supernet, x), strict=True):
        torch.testing.assert_close(mine, theirs)


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


def test_a_fixed_point_always_takes_its_operator_and_still_draws_its_kernels(space: object) -> None:
    rng = random.Random(0)
    draws = [random_path(space, rng, {"down": "Conv2Former"}) for _ in range(400)]
    assert {d[3] for d in draws} == {2, 3}  # Conv2Former with kernel 5 and 7, nothing else
    assert {d[4] for d in draws} == {0, 1} and {d[17] for d in draws} == {0, 1}  # the other points still vary
    with pytest.raises(ValueError):
        random_path(space, rng, {"down": "C3k2"})  # not an operator of that point


def test_fair_paths_give_every_point_each_operator_once(space: object) -> None:
    rng = random.Random(0)
    for _ in range(50):
        paths = fair_paths(space, rng)
        assert len(paths) == 3  # the most operators a point has
        for point in space.points:
            options = point.options()
            ops = [options[path[point.layers[0]]].op for path in paths]
            if len(point.choices) == 3:
                assert sorted(ops) == sorted(point.choices)  # each once
            else:
                assert set(ops) == set(point.choices)  # each at least once, the third drawn
            assert all(len({path[layer] for layer in point.layers}) == 1 for path in paths)  # tied layers
    pairs = {tuple(space.points[0].options()[p[3]].op for p in fair_paths(space, rng)) for _ in range(50)}
    assert len(pairs) > 1  # the order is drawn anew for every batch
    down = space.points[0].options()
    kernels = [down[path[3]].kernel for _ in range(400) for path in fair_paths(space, rng) if down[path[3]].kernel]
    assert len(kernels) == 400 and sum(k == 5 for k in kernels) == pytest.approx(200, abs=40)  # drawn uniformly


def _loss_batch(nc: int) -> dict[str, torch.Tensor]:
    """Return a detection training batch of two 64 px images with three boxes."""
    gen = torch.Generator().manual_seed(0)
    return {
        "img": torch.rand(2, 3, 64, 64, generator=gen),
        "cls": torch.tensor([[0.0], [1.0], [nc - 1.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4], [0.3, 0.6, 0.2, 0.2], [0.6, 0.4, 0.4, 0.3]]),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
    }


def _option_grads(net: torch.nn.Module, layer: int) -> list[bool]:
    """Return, per option of the supernet's ``layer``, whether every one of its parameters has a gradient."""
    return [all(p.grad is not None for p in option.parameters()) for option in net.model[layer].options]


def test_a_fair_step_averages_every_paths_loss_and_reaches_each_operator(space: object) -> None:
    from ultralytics.cfg import get_cfg

    torch.manual_seed(0)
    net = build_supernet(space, nc=5)
    assert isinstance(net, Supernet)
    net.args = get_cfg()
    net.train()
    batch = _loss_batch(5)
    paths = [
        {3: 0, 4: 1, 17: 1, 20: 1},
        {3: 1, 4: 0, 17: 0, 20: 0},
        {3: 3, 4: 1, 17: 0, 20: 0},  # Conv2Former, kernel 7
    ]
    singles = []
    for path in paths:
        set_path(net, path)
        singles.append(net.loss(batch))
    net.paths = tuple(paths)
    loss, items = net.loss(batch)
    assert loss.sum().item() == pytest.approx(sum(s[0].sum().item() for s in singles) / 3, rel=1e-5)
    assert items.keys() == singles[0][1].keys()
    for name, value in items.items():  # the logged loss items are the paths' mean too
        assert value.item() == pytest.approx(sum(s[1][name].item() for s in singles) / 3, rel=1e-5)
    loss.sum().backward()
    assert _option_grads(net, 3) == [True, True, False, True]  # kernel 5 was not drawn
    assert _option_grads(net, 4) == [True, True]
    net.zero_grad(set_to_none=True)
    net.paths = ()
    set_path(net, paths[0])
    net.loss(batch)[0].sum().backward()  # uniform sampling: one path, one option per point
    assert _option_grads(net, 3) == [True, False, False, False]


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


def _layer_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Return the output of every layer of ``model`` whose output is a tensor (not only the final one: the detect
    head's decoded boxes shrink a wrong kernel's difference below ``assert_close``'s tolerance)."""
    outputs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in model.model]
    try:
        with torch.no_grad():
            final = model.eval()(x)[0]
    finally:
        for h in hooks:
            h.remove()
    return [o for o in outputs if isinstance(o, torch.Tensor)] + [final]


def _conv2formers(layer: ChoiceLayer) -> list[torch.nn.Module]:
    return [m for m in layer.options if type(m).__name__ in ("Conv2Former", "C3k2_Conv2Former")]


def test_a_shared_supernet_holds_one_conv2former_module_per_form_and_point_with_fewer_parameters(
    shared_space: object, shared: torch.nn.Module
) -> None:
    separate = build_supernet(shared_space, nc=5)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(shared) < count(separate)
    for point in shared_space.points:
        for layer in point.layers:
            assert len(_conv2formers(shared.model[layer])) == 1
            assert len(_conv2formers(separate.model[layer])) == len(point.kernels)
            assert len(shared.model[layer].slots) == len(point.options())  # one slot per option still
    elastic = [m for m in shared.model[4].modules() if isinstance(m, ElasticKernel)]
    assert elastic and all(m.weight.shape[-2:] == (21, 21) for m in elastic)  # built with the largest kernel
    assert shared.model[17].options[1] is not shared.model[20].options[1]  # tied layers keep their own weights
    state = shared.state_dict()  # every tensor once: an EMA over it must update each tensor once
    assert len({v.data_ptr() for v in state.values() if v.numel()}) == len([v for v in state.values() if v.numel()])


SHARED_CANDIDATES = [
    {"down": ("Conv2Former", 5), "block": ("C3k2_Conv2Former", 5), "neck": ("Conv2Former", 7)},
    {"down": ("Conv2Former", 21), "block": ("C3k2_Conv2Former", 21), "neck": ("Conv2Former", 21)},
    {"down": ("Conv2Former", 9), "block": "C3k2_ConvNeXt"},
    {"down": ("Conv2Former", 5), "neck": ("Conv2Former", 21)},  # k5 right after k21 ran: the kernel follows the path
]


@pytest.mark.parametrize("choices", SHARED_CANDIDATES, ids=["k5", "k21", "k9-convnext", "k5-again"])
def test_a_candidate_of_a_shared_supernet_computes_what_the_supernet_does_on_its_path(
    shared_space: object, shared: torch.nn.Module, choices: dict
) -> None:
    arch = shared_space.architecture({k: Choice(*v) if isinstance(v, tuple) else v for k, v in choices.items()})
    candidate = build_model(arch.model_dict(5))
    path = path_of(shared_space, arch)
    assert inherit(candidate, shared.state_dict(), path) == len(candidate.state_dict())
    set_path(shared, path)
    x = torch.rand(1, 3, 64, 64)
    for mine, theirs in zip(_layer_outputs(candidate, x), _layer_outputs(shared, x), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_a_smaller_kernel_inherits_and_runs_the_centre_of_the_shared_kernel(
    shared_space: object, shared: torch.nn.Module
) -> None:
    big = torch.arange(2 * 21 * 21, dtype=torch.float32).view(2, 1, 21, 21)
    crop = centre_crop(big, 5)
    assert crop.shape == (2, 1, 5, 5) and crop[0, 0, 0, 0] == 8 * 21 + 8 and crop[1, 0, 2, 2] == 441 + 10 * 21 + 10
    arch = shared_space.architecture({"down": Choice("Conv2Former", 5)})
    candidate = build_model(arch.model_dict(5))
    inherit(candidate, shared.state_dict(), path_of(shared_space, arch))
    large = shared.model[3].options[1].block.attn.a[2]
    small = candidate.model[3].block.attn.a[2]
    assert isinstance(large, ElasticKernel) and small.kernel_size == (5, 5) and small.padding == (2, 2)
    assert torch.equal(small.weight, large.weight[:, :, 8:13, 8:13]) and torch.equal(small.bias, large.bias)
    conv = torch.nn.Conv2d(2, 2, 21, padding=10, groups=2)  # an impulse returns the kernel: the crop, centred
    with torch.no_grad():
        conv.weight.copy_(big)
        elastic = ElasticKernel(conv)
        elastic.kernel = 5
        impulse = torch.zeros(1, 2, 9, 9)
        impulse[..., 4, 4] = 1
        response = elastic(impulse) - conv.bias.view(1, 2, 1, 1)
    assert torch.equal(response[0, :, 2:7, 2:7], crop[:, 0].flip(-1, -2))
    assert torch.count_nonzero(response[0, :, :, :2]) == 0  # nothing beyond the 5x5


def test_a_shared_kernel_inherited_with_another_kernel_fails_loudly(
    shared_space: object, shared: torch.nn.Module
) -> None:
    arch = shared_space.architecture({"down": Choice("Conv2Former", 9)})
    wrong = path_of(shared_space, shared_space.architecture({"down": Choice("Conv2Former", 5)}))
    with pytest.raises(ValueError, match=r"block\.attn\.a\.2\.weight"):
        inherit(build_model(arch.model_dict(5)), shared.state_dict(), wrong)


def test_the_ema_of_a_shared_supernet_averages_each_tensor_once(shared: torch.nn.Module) -> None:
    from copy import deepcopy

    from ultralytics.utils.torch_utils import ModelEMA

    model = deepcopy(shared)
    ema = ModelEMA(model)
    before = ema.ema.model[3].options[1].block.attn.a[2].weight.clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    d = ema.decay(ema.updates)
    torch.testing.assert_close(ema.ema.model[3].options[1].block.attn.a[2].weight, d * before + (1 - d) * (before + 1))


def _one_epoch_supernet(space: object, data_yaml: Path, **choices: str) -> object:
    """Return the smoke preset as an ``init: supernet`` study of ``space`` on ``data_yaml`` whose supernet trains one
    epoch, with ``choices`` (supernet_kernels, supernet_sampling)."""
    from nas.data.datasets import local_dataset

    smoke = load_preset("smoke")
    return dataclasses.replace(
        smoke, space=space, dataset=local_dataset(data_yaml), init="supernet", supernet_epochs=1, **choices
    )


def test_a_shared_supernet_trains_through_ultralytics_and_its_weights_load_back(
    shared_space: object, tiny_dataset: Path, tmp_path: Path
) -> None:
    cfg = _one_epoch_supernet(shared_space, tiny_dataset, supernet_kernels="shared")
    weights = train_supernet(cfg, tmp_path, "cpu", seed=0)
    assert weights == supernet_file(tmp_path, 1, "shared") != supernet_file(tmp_path, 1)
    saved = torch.load(weights, weights_only=True)
    assert saved["kernels"] == "shared"
    fresh = build_supernet(shared_space, cfg.dataset.nc, "shared")
    fresh.load_state_dict(saved["state_dict"], strict=True)
    trained = fresh.model[3].options[1].block.attn.a[2].weight
    assert not torch.equal(
        trained, build_supernet(shared_space, cfg.dataset.nc, "shared").model[3].options[1].block.attn.a[2].weight
    )
    arch = shared_space.architecture({"down": Choice("Conv2Former", 5), "neck": Choice("Conv2Former", 7)})
    candidate = build_model(arch.model_dict(cfg.dataset.nc))
    path = path_of(shared_space, arch)
    assert inherit(candidate, saved["state_dict"], path) == len(candidate.state_dict())
    set_path(fresh, path)
    x = torch.rand(1, 3, 64, 64)
    for mine, theirs in zip(_layer_outputs(candidate, x), _layer_outputs(fresh, x), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_a_fair_supernet_updates_every_operator_of_a_point_in_one_step(
    space: object, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.measure.supernet as supernet_module

    built = []

    def build_and_keep(*args: object) -> torch.nn.Module:
        net = build_supernet(*args)
        built.append({k: v.detach().clone() for k, v in net.named_parameters()})  # not BatchNorm's statistics
        return net

    monkeypatch.setattr(supernet_module, "build_supernet", build_and_keep)
    # smoke's batch 16 and no warm-up: the 16 training images make one optimizer step
    cfg = _one_epoch_supernet(space, tiny_dataset, supernet_sampling="fair")
    weights = train_supernet(cfg, tmp_path, "cpu", seed=0)
    assert weights == supernet_file(tmp_path, 1, sampling="fair") == tmp_path / "supernet_e1_fair.pt"
    saved = torch.load(weights, weights_only=True)
    assert saved["sampling"] == "fair" and saved["kernels"] == "separate"

    def moved(layer: int, option: int) -> bool:
        prefix = f"model.{layer}.options.{option}."
        return any(not torch.equal(saved["state_dict"][k], v) for k, v in built[0].items() if k.startswith(prefix))

    down = [moved(3, j) for j in range(4)]  # Conv, GhostV2, Conv2Former k5, k7
    assert down[:2] == [True, True] and sum(down[2:]) == 1  # each operator once, one kernel of Conv2Former
    assert [moved(4, j) for j in range(2)] == [True, True]


def test_a_sub_supernet_starts_from_the_supernet_and_trains_only_its_operator_at_the_split_point(
    space: object, tiny_dataset: Path, tmp_path: Path
) -> None:
    cfg = _one_epoch_supernet(space, tiny_dataset)  # 16 images, batch 16: one step, one path per training
    base = train_supernet(cfg, tmp_path, "cpu", seed=0)
    before = torch.load(base, weights_only=True)["state_dict"]
    # the supernet's one step drew GhostV2 at "down" (what a split ignoring its fixed point would draw again)
    assert random_path(space, random.Random(0))[3] == 1
    split = train_split(cfg, base, "down", "Conv", 1, "cpu", seed=0)
    assert split == split_file(base, "down", "Conv", 1) == tmp_path / "supernet_e1_split-down-Conv_e1.pt"
    saved = torch.load(split, weights_only=True)
    assert saved["split"] == {"down": "Conv"} and saved["from"] == base.name and saved["epochs"] == 1
    after = saved["state_dict"]
    assert after.keys() == before.keys()

    def moved(prefix: str) -> bool:
        keys = [k for k in before if k.startswith(prefix)]
        return any(not torch.allclose(after[k], before[k], rtol=0, atol=1e-6) for k in keys)

    # down (layer 3): Conv, GhostV2, Conv2Former k5, k7. Only Conv ran; GhostV2 keeps the supernet's trained
    # weights, which a sub-supernet starting afresh would not have
    assert [moved(f"model.3.options.{j}.") for j in range(4)] == [True, False, False, False]
    assert moved("model.4.options.") and moved("model.0.")  # the other points and the fixed layers train on
    mtime = split.stat().st_mtime_ns
    assert train_split(cfg, base, "down", "Conv", 1, "cpu", seed=0).stat().st_mtime_ns == mtime  # made once
    assert train_split(cfg, base, "down", "Conv", 0, "cpu", seed=0) == base  # 0 epochs: the supernet itself
    with pytest.raises(ValueError, match="no operator 'ACmix' at insertion point 'down'"):
        train_split(cfg, base, "down", "ACmix", 1, "cpu", seed=0)


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
        assert a["inherited_tensors"] > 400 and {"inherit_s", "bn_recal_s"} <= set(record(t, "phases"))
    assert not list((tmp_path / "runs" / "sn").glob("trial_*"))


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ({"train": {"epochs": 0}}, "train.epochs: must be at least 1 (0 validates inherited weights"),
        ({"supernet_epochs": 4}, "supernet_epochs: only applies with init: supernet"),
        ({"init": "supernet", "supernet_epochs": 0}, "supernet_epochs: must be at least 1"),
        ({"supernet_kernels": "shared"}, "supernet_kernels: only applies with init: supernet"),
        ({"init": "supernet", "supernet_kernels": "both"}, "supernet_kernels: must be one of separate, shared"),
        ({"init": "supernet", "supernet_kernels": True}, "supernet_kernels: expected str"),
        ({"supernet_sampling": "fair"}, "supernet_sampling: only applies with init: supernet"),
        ({"init": "supernet", "supernet_sampling": "spos"}, "supernet_sampling: must be one of uniform, fair"),
    ],
    ids=[
        "zero-epochs-without-supernet",
        "supernet-epochs-without-supernet",
        "zero-supernet-epochs",
        "supernet-kernels-without-supernet",
        "unknown-supernet-kernels",
        "supernet-kernels-not-a-string",
        "supernet-sampling-without-supernet",
        "unknown-supernet-sampling",
    ],
)
def test_supernet_preset_keys_are_validated(preset: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"space": "yolo11_backbone", **preset}))
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_preset(str(path))


@pytest.mark.parametrize(
    ("key", "default", "other"),
    [("supernet_kernels", "separate", "shared"), ("supernet_sampling", "uniform", "fair")],
    ids=["kernels", "sampling"],
)
def test_a_supernet_choice_is_loaded_and_kept_apart_from_its_default(
    key: str, default: str, other: str, tmp_path: Path
) -> None:
    from nas.study.records import runtime_record

    configs = {}
    for value in (default, other, None):
        path = tmp_path / f"{value}.yaml"
        path.write_text(yaml.safe_dump({"space": "yolo11_backbone", "init": "supernet", key: value}))
        configs[value] = load_preset(str(path))
    assert [getattr(c, key) for c in configs.values()] == [default, other, default]
    assert getattr(load_preset("smoke"), key) == default
    records = {k: runtime_record(c, "cpu", None) for k, c in configs.items()}
    assert records[default] == records[None] != records[other]  # a study of one choice does not resume the other's
    assert records[other][key] == other
    assert key not in records[default]  # fingerprints of studies made before the key stay the same


def test_a_supernet_file_is_named_by_its_non_default_choices(tmp_path: Path) -> None:
    assert supernet_file(tmp_path, 4, "separate") == supernet_file(tmp_path, 4) == tmp_path / "supernet_e4.pt"
    assert supernet_file(tmp_path, 4, "separate", "uniform") == tmp_path / "supernet_e4.pt"
    assert supernet_file(tmp_path, 4, "shared").name == "supernet_e4_shared.pt"
    assert supernet_file(tmp_path, 3, sampling="fair").name == "supernet_e3_fair.pt"
    assert supernet_file(tmp_path, 3, "shared", "fair").name == "supernet_e3_shared_fair.pt"
