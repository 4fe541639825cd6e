"""The optimizer step a training takes on a CPU: torch's fused Adam/AdamW, the same update as the for-loop one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from modules.ultralytics_adapter import ProxyTrainer, fused_on_cpu
from nas.measure import threads, train_proxy
from tests.yolo_yaml import write_yaml, yolo11_dict

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "warmup_epochs": 0, "mosaic": 0.0, "optimizer": "AdamW"}


def _groups(model: nn.Module) -> list[dict]:
    """Parameter groups the way Ultralytics builds them: decayed weights, BatchNorm weights, biases, each named."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    bn = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    biases = [m.bias for m in model.modules() if getattr(m, "bias", None) is not None]
    common = {"lr": 0.01, "betas": (0.9, 0.999)}
    return [
        {"params": biases, **common, "weight_decay": 0.0, "param_group": "bias"},
        {"params": weights, **common, "weight_decay": 0.05, "param_group": "weight"},
        {"params": bn, **common, "weight_decay": 0.0, "param_group": "bn"},
    ]


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 5) -> None:
    torch.manual_seed(1)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(2, 3, 8, 8)).square().mean().backward()
        optimizer.step()


def test_adamw_is_rebuilt_fused_with_its_groups_and_computes_the_for_loop_update() -> None:
    loop_model, fused_model = _model(), _model()
    loop = torch.optim.AdamW(_groups(loop_model), foreach=False)
    fused = fused_on_cpu(torch.optim.AdamW(_groups(fused_model)))
    assert type(fused) is torch.optim.AdamW and all(g["fused"] for g in fused.param_groups)
    keys = ("lr", "betas", "weight_decay", "param_group")
    assert [[g[k] for k in keys] for g in fused.param_groups] == [[g[k] for k in keys] for g in loop.param_groups]
    assert [len(g["params"]) for g in fused.param_groups] == [len(g["params"]) for g in loop.param_groups]
    _train(loop_model, loop)
    _train(fused_model, fused)
    for a, b in zip(loop_model.parameters(), fused_model.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, p) for a, p in zip(_model().parameters(), fused_model.parameters(), strict=True))


def test_the_fused_step_is_deterministic() -> None:
    models = [_model(), _model()]
    for m in models:
        _train(m, fused_on_cpu(torch.optim.AdamW(_groups(m))))
    assert all(torch.equal(a, b) for a, b in zip(*(m.parameters() for m in models), strict=True))


def test_what_it_cannot_fuse_is_returned_as_it_is() -> None:
    model = _model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    assert fused_on_cpu(sgd) is sgd
    stepped = torch.optim.Adam(model.parameters())
    _train(model, stepped, steps=1)
    assert fused_on_cpu(stepped) is stepped  # its moments would be lost
    already = torch.optim.Adam(model.parameters(), fused=True)
    assert fused_on_cpu(already) is already


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's parameters (what the optimizer steps; BatchNorm's running statistics left out)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_a_cpu_training_steps_fused_unless_told_not_to_and_repeats_itself(
    tmp_path: Path, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a result repeats for a seed and a thread count; the count a training takes follows the load (another test
    # running beside this one), so it is pinned
    monkeypatch.setenv(threads.ENV, "1")
    model_yaml = write_yaml(yolo11_dict("n", nc=5), tmp_path / "stock.yaml")
    trainers: list[ProxyTrainer] = []
    weights: list[dict[str, torch.Tensor]] = []
    start: list[dict[str, torch.Tensor]] = []

    def run(name: str, fused: bool) -> None:
        def customize(trainer: ProxyTrainer) -> None:
            trainer.fused_adam = fused
            trainer.add_callback("on_train_start", lambda t: start.append(_weights(t.model)))
            trainer.add_callback("on_train_end", lambda t: weights.append(_weights(t.model)))
            trainers.append(trainer)

        train_proxy(model_yaml, tiny_dataset, TINY, tmp_path / name, "cpu", 0, customize=customize)

    for name, fused in (("a", True), ("b", True), ("c", False)):
        run(name, fused)
    assert [bool(t.optimizer.defaults["fused"]) for t in trainers] == [True, True, False]
    first, again, loop = weights
    assert all(torch.equal(first[k], again[k]) for k in first)  # deterministic for a seed
    assert any(not torch.equal(first[k], start[0][k]) for k in first)  # it trained
    # the update itself is checked against the for-loop step above: over a training, Adam's normalised steps turn
    # last-bit differences of tiny gradients into moves of up to the learning rate, so no closeness bound holds here
    assert loop.keys() == first.keys()
