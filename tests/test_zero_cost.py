"""Zero-cost scores (ZiCo, SynFlow): labelled batches, determinism per seed, and scores that tell models apart."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from modules.dynamic_conv import DynamicConv2d
from nas.measure.zero_cost import labelled_batches, layer_weights, synflow, zico
from nas.space import SearchSpace
from tests.yolo_yaml import space_from_dict

SPACE = {
    "base": "yolo11n.yaml",
    "points": [{"name": "down", "layers": [3], "choices": ["Conv", "GhostV2", "ConvNeXt", "DynamicConv"]}],
}


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> SearchSpace:
    return space_from_dict(SPACE, tmp_path_factory.mktemp("space") / "tiny.yaml")


@pytest.fixture(scope="module")
def batches(tiny_dataset: Path) -> list[dict]:
    return labelled_batches(tiny_dataset, 64, count=2, batch=4)


def test_labelled_batches_hold_letterboxed_images_and_their_boxes(batches: list[dict]) -> None:
    assert len(batches) == 2
    for b in batches:
        assert b["img"].shape == (4, 3, 64, 64) and b["img"].dtype == torch.float32
        assert float(b["img"].min()) >= 0.0 and float(b["img"].max()) <= 1.0
        assert b["bboxes"].shape[1] == 4 and len(b["cls"]) == len(b["bboxes"]) == len(b["batch_idx"])
        assert set(b["batch_idx"].long().tolist()) <= {0, 1, 2, 3}


def test_zico_is_finite_repeats_for_a_seed_and_tells_architectures_apart(
    space: SearchSpace, batches: list[dict]
) -> None:
    stock, ghost = space.stock(), space.architecture({"down": "GhostV2"})
    first = zico(stock, 5, batches, seed=0)
    assert math.isfinite(first)
    assert zico(stock, 5, batches, seed=0) == pytest.approx(first, rel=1e-6)
    assert zico(stock, 5, batches, seed=1) != pytest.approx(first, rel=1e-6)  # another initialisation
    assert zico(ghost, 5, batches, seed=0) != pytest.approx(first, rel=1e-6)


def test_zico_needs_two_batches(space: SearchSpace, batches: list[dict]) -> None:
    with pytest.raises(ValueError, match="at least 2 batches"):
        zico(space.stock(), 5, batches[:1])


def test_synflow_is_finite_repeats_for_a_seed_and_tells_architectures_apart(space: SearchSpace) -> None:
    stock, convnext = space.stock(), space.architecture({"down": "ConvNeXt"})
    first = synflow(stock, 5, 64, seed=0)
    assert math.isfinite(first)
    assert synflow(stock, 5, 64, seed=0) == pytest.approx(first, rel=1e-9)
    assert synflow(convnext, 5, 64, seed=0) != pytest.approx(first, rel=1e-6)


def test_dynamicconv_kernel_bank_counts_as_a_layer_weight_and_batchnorm_does_not(space: SearchSpace) -> None:
    from nas.measure.cost import build_model

    model = build_model(space.architecture({"down": "DynamicConv"}).model_dict(5))
    weights = {id(w) for w in layer_weights(model)}
    banks = [m.weight for m in model.modules() if isinstance(m, DynamicConv2d)]
    assert banks and all(id(b) in weights for b in banks)  # convolved through F.conv2d, not an nn.Conv2d
    norms = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(id(n) in weights for n in norms)


def test_scores_leave_torch_global_random_state_alone(space: SearchSpace, batches: list[dict]) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    zico(space.stock(), 5, batches, seed=0)
    synflow(space.stock(), 5, 64, seed=0)
    assert torch.equal(torch.rand(3), expected)
