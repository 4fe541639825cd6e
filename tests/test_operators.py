"""Each operator in both slot forms: shapes, errors, gradients, batch independence, behaviour against
independent references (DynamicConv gating, ACmix's unfold formulation), parameter and MAC counts."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules.block import C3k2
from ultralytics.nn.modules.conv import Conv

from modules import (
    ACmix,
    C3k2_ACmix,
    C3k2_Conv2Former,
    C3k2_ConvNeXt,
    C3k2_DynamicConv,
    C3k2_GhostV2,
    Conv2Former,
    ConvNeXt,
    DynamicConv,
    GhostV2,
)
from modules.acmix import ACmixMixer
from modules.conv2former import Conv2FormerBlock
from modules.convnext import ConvNeXtBlock
from modules.dynamic_conv import DynamicConv2d
from modules.flops import profile_macs
from modules.ghostv2 import GhostModuleV2
from tests import reference_formulas as formulas

CONV_SLOT = [DynamicConv, GhostV2, ACmix, Conv2Former, ConvNeXt]
BLOCK_SLOT = [C3k2_DynamicConv, C3k2_GhostV2, C3k2_ACmix, C3k2_Conv2Former, C3k2_ConvNeXt]


@pytest.mark.parametrize("cls", CONV_SLOT, ids=lambda c: c.__name__)
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("hw", [(16, 16), (15, 13), (7, 9)])
def test_conv_slot_output_shape_matches_conv(cls: type[nn.Module], s: int, hw: tuple[int, int]) -> None:
    x = torch.randn(2, 16, *hw)
    expected = Conv(16, 24, 3, s)(x).shape
    assert cls(16, 24, 3, s).eval()(x).shape == expected


@pytest.mark.parametrize("cls", CONV_SLOT, ids=lambda c: c.__name__)
def test_conv_slot_keeps_channels_at_stride_1(cls: type[nn.Module]) -> None:
    x = torch.randn(1, 32, 12, 12)
    assert cls(32, 32, 3, 1).eval()(x).shape == x.shape


@pytest.mark.parametrize("cls", BLOCK_SLOT, ids=lambda c: c.__name__)
@pytest.mark.parametrize("c3k", [False, True])
@pytest.mark.parametrize("hw", [(16, 16), (9, 11)])
def test_block_slot_output_shape_matches_c3k2(cls: type[nn.Module], c3k: bool, hw: tuple[int, int]) -> None:
    x = torch.randn(2, 32, *hw)
    expected = C3k2(32, 64, 2, c3k, 0.5)(x).shape
    assert cls(32, 64, 2, c3k, 0.5).eval()(x).shape == expected


@pytest.mark.parametrize("cls", CONV_SLOT + BLOCK_SLOT, ids=lambda c: c.__name__)
def test_gradients_reach_every_parameter(cls: type[nn.Module]) -> None:
    m = cls(16, 32, 3, 2) if cls in CONV_SLOT else cls(16, 32, 1, True, 0.5)
    m.train()
    m(torch.randn(2, 16, 16, 16)).square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    # layer scales start at 1e-6, so check the branch behind them receives a non-zero gradient too
    zero = [n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert not zero, zero


def _perturb(m: nn.Module, scale: float = 0.2) -> None:
    """Move every parameter off its initial value, so layer scales (1e-6), shifts and gates all matter."""
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn_like(p))


@pytest.mark.parametrize(
    "make",
    [pytest.param(lambda c=c, s=s: c(16, 32, 3, s), id=f"{c.__name__}-s{s}") for c in CONV_SLOT for s in (1, 2)]
    + [
        pytest.param(lambda c=c, k=k: c(16, 32, 1, k, 0.5), id=f"{c.__name__}-c3k{k}")
        for c in BLOCK_SLOT
        for k in (False, True)
    ],
)
def test_eval_output_of_a_sample_does_not_depend_on_the_rest_of_the_batch(make: Callable[[], nn.Module]) -> None:
    m = make()
    _perturb(m)
    with torch.no_grad():
        m.train()
        for _ in range(2):  # non-trivial BatchNorm running statistics
            m(torch.randn(4, 16, 12, 12) * 2 + 1)
        m.eval()
        x, others = torch.randn(3, 16, 12, 12), torch.randn(2, 16, 12, 12) * 3
        alone = m(x[:1])[0]
        batched = m(x)
        mixed = m(torch.cat((others[:1], x[:1], others[1:])))  # the sample at another position, other neighbours
    torch.testing.assert_close(batched[0], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mixed[1], alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(batched[1], batched[0], atol=1e-3)  # the output does depend on the sample


# DynamicConv gating. The routing Linear is driven directly (weights 0, chosen biases), so each expert's gate is a
# known constant; the expected output is then a plain conv with a kernel built from the expert bank.
EXPERTS = 4
OPEN, SHUT = 40.0, -40.0  # gate logits that saturate a sigmoid to 1 and 0 in float32
DYNAMIC_SHAPES = [
    pytest.param(8, 8, 3, 1, 1, id="8-8-k3"),
    pytest.param(8, 16, 3, 2, 1, id="8-16-k3-s2"),
    pytest.param(8, 8, 3, 1, 8, id="depthwise-8-k3"),
    pytest.param(6, 12, 1, 1, 3, id="6-12-k1-g3"),
]


def _gated(m: DynamicConv2d, logits: list[float]) -> DynamicConv2d:
    """Make the routing output the constant ``logits`` (one per expert) whatever the input."""
    with torch.no_grad():
        m.routing.weight.zero_()
        m.routing.bias.copy_(torch.tensor(logits))
    return m


def _expert_kernels(m: DynamicConv2d, c1: int, c2: int, k: int, g: int) -> torch.Tensor:
    """Return the expert bank as E conv kernels, E x C2 x C1/g x k x k."""
    return m.weight.detach().reshape(EXPERTS, c2, c1 // g, k, k)


def _conv(x: torch.Tensor, kernel: torch.Tensor, s: int, g: int) -> torch.Tensor:
    return F.conv2d(x, kernel, stride=s, padding=kernel.shape[-1] // 2, groups=g)


@pytest.mark.parametrize(("c1", "c2", "k", "s", "g"), DYNAMIC_SHAPES)
def test_dynamic_conv_open_gates_sum_the_experts_and_shut_gates_give_zero(
    c1: int, c2: int, k: int, s: int, g: int
) -> None:
    m = DynamicConv2d(c1, c2, k, s, g=g)
    x = torch.randn(3, c1, 9, 10)
    kernels = _expert_kernels(m, c1, c2, k, g)
    with torch.no_grad():
        all_open = _gated(m, [OPEN] * EXPERTS)(x)
        all_shut = _gated(m, [SHUT] * EXPERTS)(x)
    # sigmoid gates: every expert at full weight, the kernels add up (a softmax would average them)
    torch.testing.assert_close(all_open, _conv(x, kernels.sum(0), s, g), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(all_open, _conv(x, kernels.mean(0), s, g), atol=1e-2)
    torch.testing.assert_close(all_shut, torch.zeros_like(all_shut), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("c1", "c2", "k", "s", "g"), DYNAMIC_SHAPES)
def test_dynamic_conv_expert_gates_are_independent(c1: int, c2: int, k: int, s: int, g: int) -> None:
    m = DynamicConv2d(c1, c2, k, s, g=g)
    x = torch.randn(2, c1, 9, 10)
    kernels = _expert_kernels(m, c1, c2, k, g)
    with torch.no_grad():
        only = [_gated(m, [OPEN if j == e else SHUT for j in range(EXPERTS)])(x) for e in range(EXPERTS)]
        all_open = _gated(m, [OPEN] * EXPERTS)(x)
        all_but = [_gated(m, [SHUT if j == e else OPEN for j in range(EXPERTS)])(x) for e in range(EXPERTS)]
    for e in range(EXPERTS):
        # one open gate: exactly that expert's conv, whatever the other gates' logits
        torch.testing.assert_close(only[e], _conv(x, kernels[e], s, g), atol=1e-5, rtol=1e-4)
        # shutting one gate removes that expert's contribution and leaves the others' unchanged
        torch.testing.assert_close(all_but[e], all_open - only[e], atol=1e-5, rtol=1e-4)


def test_dynamic_conv_gates_are_sigmoids_of_the_logits() -> None:
    m = _gated(DynamicConv2d(8, 8, 3), [-1.5, 0.0, 0.7, 2.5])
    x = torch.randn(2, 8, 7, 7)
    kernels = _expert_kernels(m, 8, 8, 3, 1)
    gates = [1 / (1 + math.exp(-logit)) for logit in (-1.5, 0.0, 0.7, 2.5)]  # not normalised: sum ~2.27
    mixed = sum(gate * kernel for gate, kernel in zip(gates, kernels, strict=True))
    with torch.no_grad():
        torch.testing.assert_close(m(x), _conv(x, mixed, 1, 1), atol=1e-5, rtol=1e-4)


def test_dynamic_conv_routes_each_sample_by_its_own_global_average() -> None:
    m = DynamicConv2d(8, 8, 3)
    with torch.no_grad():
        m.routing.weight.zero_()
        m.routing.weight[:, 0] = 50.0  # every gate follows the mean of input channel 0
        m.routing.bias.zero_()
    x = torch.randn(3, 8, 6, 6)
    x[0, 0] += 3.0  # mean ~ +3: gates open
    x[1, 0] -= 3.0  # mean ~ -3: gates shut
    x[2, 0] = torch.tensor([1.0, -1.0]).repeat(18).view(6, 6)  # mean exactly 0 (max 1): gates at one half
    kernels = _expert_kernels(m, 8, 8, 3, 1).sum(0)
    with torch.no_grad():
        y = m(x)
    torch.testing.assert_close(y[0], _conv(x[:1], kernels, 1, 1)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(y[1], torch.zeros_like(y[1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(y[2], _conv(x[2:], 0.5 * kernels, 1, 1)[0], atol=1e-5, rtol=1e-4)


# Parameter counts. Each implementation is checked against two independent references: the closed-form formula
# (tests/reference_formulas.py) and the original block rebuilt from plain torch layers as the authors' code lays it
# out (reference notes sections 2-6). Built on the meta device: only shapes are needed.
META = torch.device("meta")


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv2d(c1: int, c2: int, k: int | tuple[int, int], g: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c1, c2, k, groups=g, bias=bias, device=META)


def _original_dynamic_conv(c1: int, c2: int, k: int, g: int) -> nn.Module:
    """ParameterNet DynamicConv: timm CondConv2d's expert bank (E x C2*C1/g*k*k, no bias) + routing Linear(C1, E)."""
    m = nn.Module()
    m.routing = nn.Linear(c1, EXPERTS, device=META)
    m.weight = nn.Parameter(torch.empty(EXPERTS, c2 * (c1 // g) * k * k, device=META))
    return m


def _original_ghost_module_v2(c1: int, c2: int, k: int, attn: bool) -> nn.Module:
    """GhostNetV2 GhostModuleV2 (ratio 2, dw 3): primary conv+BN, cheap depthwise conv+BN, DFC branch if 'attn'."""
    init = -(-c2 // 2)
    new = init  # init * (ratio - 1)
    layers = [
        _conv2d(c1, init, k, bias=False),
        nn.BatchNorm2d(init, device=META),
        _conv2d(init, new, 3, g=init, bias=False),
        nn.BatchNorm2d(new, device=META),
    ]
    if attn:
        layers += [
            _conv2d(c1, c2, k, bias=False),
            nn.BatchNorm2d(c2, device=META),
            _conv2d(c2, c2, (1, 5), g=c2, bias=False),
            nn.BatchNorm2d(c2, device=META),
            _conv2d(c2, c2, (5, 1), g=c2, bias=False),
            nn.BatchNorm2d(c2, device=META),
        ]
    return nn.Sequential(*layers)


def _original_acmix(c1: int, c2: int, heads: int = 4) -> nn.Module:
    """ACmix (ResNet code): q/k/v 1x1 with bias, conv_p 2->d, fc 3N->9 without bias, dep_conv without bias, 2 rates."""
    d = c2 // heads
    m = nn.ModuleList(
        [
            *(_conv2d(c1, c2, 1) for _ in range(3)),
            _conv2d(2, d, 1),
            _conv2d(3 * heads, 9, 1, bias=False),
            _conv2d(9 * d, c2, 3, g=d, bias=False),
        ]
    )
    m.rates = nn.Parameter(torch.empty(2, device=META))
    return m


def _original_conv2former_block(c: int, k: int, r: int = 4) -> nn.Module:
    """Conv2Former Block: LN, ConvMod (a: 1x1 + dw k x k; v: 1x1; proj: 1x1), LN, MLP (1x1, dw 3x3, 1x1), 2 scales."""
    m = nn.ModuleList(
        [
            nn.LayerNorm(c, device=META),
            _conv2d(c, c, 1),
            _conv2d(c, c, k, g=c),
            _conv2d(c, c, 1),
            _conv2d(c, c, 1),
            nn.LayerNorm(c, device=META),
            _conv2d(c, r * c, 1),
            _conv2d(r * c, r * c, 3, g=r * c),
            _conv2d(r * c, c, 1),
        ]
    )
    m.scales = nn.Parameter(torch.empty(2, c, device=META))
    return m


def _original_convnext_block(c: int, k: int = 7) -> nn.Module:
    """ConvNeXt Block: depthwise k x k, LayerNorm, Linear C->4C, Linear 4C->C, layer scale gamma."""
    m = nn.ModuleList(
        [
            _conv2d(c, c, k, g=c),
            nn.LayerNorm(c, device=META),
            nn.Linear(c, 4 * c, device=META),
            nn.Linear(4 * c, c, device=META),
        ]
    )
    m.gamma = nn.Parameter(torch.empty(c, device=META))
    return m


def _params_case(name: str, make: Callable[[], nn.Module], original: Callable[[], nn.Module], formula: int) -> object:
    return pytest.param(make, original, formula, id=name)


PARAM_CASES = [
    *(
        _params_case(
            f"DynamicConv-{c1}-{c2}-k{k}-g{g}",
            lambda c1=c1, c2=c2, k=k, g=g: DynamicConv2d(c1, c2, k, g=g),
            lambda c1=c1, c2=c2, k=k, g=g: _original_dynamic_conv(c1, c2, k, g),
            formulas.dynamic_conv_params(c1, c2, k, g),
        )
        for c1, c2, k, g in [(64, 128, 3, 1), (64, 64, 3, 64), (64, 128, 1, 1), (16, 32, 3, 1), (24, 48, 3, 3)]
    ),
    *(
        _params_case(
            f"GhostModuleV2-{c1}-{c2}-k{k}-{'attn' if attn else 'original'}",
            lambda c1=c1, c2=c2, k=k, attn=attn: GhostModuleV2(c1, c2, k, attn=attn),
            lambda c1=c1, c2=c2, k=k, attn=attn: _original_ghost_module_v2(c1, c2, k, attn),
            formulas.ghost_module_v2_params(c1, c2, k, attn),
        )
        for c1, c2, k, attn in [
            (64, 128, 1, False),
            (64, 128, 1, True),
            (64, 127, 1, True),
            (16, 32, 3, True),
            (32, 33, 3, False),
        ]
    ),
    *(
        _params_case(
            f"ACmix-{c1}-{c2}-s{s}",
            lambda c1=c1, c2=c2, s=s: ACmixMixer(c1, c2, s),
            lambda c1=c1, c2=c2: _original_acmix(c1, c2),
            formulas.acmix_params(c1, c2),
        )
        for c1, c2, s in [(64, 64, 1), (64, 128, 1), (16, 32, 2), (64, 8, 1)]
    ),
    *(
        _params_case(
            f"Conv2Former-{c}-k{k}",
            lambda c=c, k=k: Conv2FormerBlock(c, k),
            lambda c=c, k=k: _original_conv2former_block(c, k),
            formulas.conv2former_block_params(c, k),
        )
        for c, k in [(64, 11), (128, 7), (16, 5), (96, 21)]
    ),
    *(
        _params_case(
            f"ConvNeXt-{c}",
            lambda c=c: ConvNeXtBlock(c),
            lambda c=c: _original_convnext_block(c),
            formulas.convnext_block_params(c),
        )
        for c in (16, 64, 96)
    ),
]


@pytest.mark.parametrize(("make", "original", "formula"), PARAM_CASES)
def test_parameter_count_matches_the_original_block_and_the_formula(
    make: Callable[[], nn.Module], original: Callable[[], nn.Module], formula: int
) -> None:
    reference = _count(original())
    assert reference == formula  # the two references agree with each other
    assert _count(make()) == reference


@pytest.mark.parametrize(
    ("formula", "measured"),
    [
        pytest.param(lambda: formulas.dynamic_conv_params(64, 128, 3), 295_172, id="DynamicConv-64-128-k3"),
        pytest.param(lambda: formulas.dynamic_conv_params(64, 64, 3, 64), 2_564, id="DynamicConv-dw64-k3"),
        pytest.param(lambda: formulas.dynamic_conv_params(64, 128, 1), 33_028, id="DynamicConv-64-128-k1"),
        pytest.param(lambda: formulas.ghost_module_v2_params(64, 128, 1, False), 4_928, id="Ghost-64-128-original"),
        pytest.param(lambda: formulas.ghost_module_v2_params(64, 128, 1, True), 15_168, id="Ghost-64-128-attn"),
        pytest.param(lambda: formulas.ghost_module_v2_params(64, 127, 1, True), 15_088, id="Ghost-64-127-attn"),
        pytest.param(lambda: formulas.acmix_params(64, 64), 17_822, id="ACmix-64-64"),
        pytest.param(lambda: formulas.acmix_params(64, 128), 35_534, id="ACmix-64-128"),
        pytest.param(lambda: formulas.conv2former_block_params(64, 11), 56_320, id="Conv2Former-64-k11"),
        pytest.param(lambda: formulas.conv2former_block_params(128, 7), 193_536, id="Conv2Former-128-k7"),
        pytest.param(lambda: formulas.convnext_block_params(64), 36_480, id="ConvNeXt-64"),
        pytest.param(lambda: formulas.convnext_block_params(128), 138_496, id="ConvNeXt-128"),
    ],
)
def test_reference_formulas_reproduce_counts_measured_on_the_authors_modules(
    formula: Callable[[], int], measured: int
) -> None:
    """Grounds the oracle itself: these counts were measured on the original modules (reference notes 2-6)."""
    assert formula() == measured


# (module, input shape, reference MACs) at YOLO11n-like sizes (640 input): conv-slot layers 3/5/7 and block widths
MAC_CASES = [
    (
        "DynamicConv L5",
        lambda: DynamicConv2d(64, 128, 3, 2),
        (64, 80, 80),
        formulas.dynamic_conv_macs(64, 128, 3, 2, 80, 80),
    ),
    (
        "DynamicConv L7",
        lambda: DynamicConv2d(128, 256, 3, 2),
        (128, 40, 40),
        formulas.dynamic_conv_macs(128, 256, 3, 2, 40, 40),
    ),
    (
        "GhostV2 L5",
        lambda: GhostModuleV2(64, 128, 3, 2),
        (64, 80, 80),
        formulas.ghost_module_v2_macs(64, 128, 3, 2, 80, 80, True),
    ),
    (
        "GhostV2 L3",
        lambda: GhostModuleV2(32, 64, 3, 2),
        (32, 160, 160),
        formulas.ghost_module_v2_macs(32, 64, 3, 2, 160, 160, True),
    ),
    (
        "GhostV2 odd",
        lambda: GhostModuleV2(32, 63, 3, 1),
        (32, 41, 39),
        formulas.ghost_module_v2_macs(32, 63, 3, 1, 41, 39, True),
    ),
    ("ACmix L5", lambda: ACmixMixer(64, 128, 2), (64, 80, 80), formulas.acmix_macs(64, 128, 2, 80, 80)),
    ("ACmix c64", lambda: ACmixMixer(64, 64, 1), (64, 40, 40), formulas.acmix_macs(64, 64, 1, 40, 40)),
    ("ACmix odd s2", lambda: ACmixMixer(16, 32, 2), (16, 21, 19), formulas.acmix_macs(16, 32, 2, 21, 19)),
    (
        "Conv2Former c32 k11",
        lambda: Conv2FormerBlock(32, 11),
        (32, 80, 80),
        formulas.conv2former_block_macs(32, 11, 80, 80),
    ),
    (
        "Conv2Former c128 k21",
        lambda: Conv2FormerBlock(128, 21),
        (128, 20, 20),
        formulas.conv2former_block_macs(128, 21, 20, 20),
    ),
    ("ConvNeXt c32", lambda: ConvNeXtBlock(32), (32, 80, 80), formulas.convnext_block_macs(32, 80, 80)),
    ("ConvNeXt c128", lambda: ConvNeXtBlock(128), (128, 20, 20), formulas.convnext_block_macs(128, 20, 20)),
]
MAC_TOLERANCE = 0.05


@pytest.mark.parametrize(("name", "module", "shape", "reference"), MAC_CASES, ids=[c[0] for c in MAC_CASES])
def test_counted_macs_are_the_reference_plus_at_most_5_percent(
    name: str, module: Callable[[], nn.Module], shape: tuple[int, int, int], reference: int
) -> None:
    """Two-sided: every multiply-accumulate of the formula is counted (no under-count), and the only surplus is
    what the formulas leave out (BatchNorm, LayerNorm, softmax, pooling, elementwise gates and scales), which
    stays under 5% at these widths (no over-count)."""
    counted = profile_macs(module(), torch.zeros(1, *shape))
    assert reference <= counted <= reference * (1 + MAC_TOLERANCE)


def test_dynamic_conv_at_yolo11n_layer5_has_4x_params_same_flops() -> None:
    conv, dyn = Conv(64, 128, 3, 2), DynamicConv(64, 128, 3, 2)
    x = torch.zeros(1, 64, 80, 80)
    p_conv = sum(p.numel() for p in conv.parameters())
    p_dyn = sum(p.numel() for p in dyn.parameters())
    assert 3.9 < p_dyn / p_conv < 4.1
    assert p_dyn == formulas.dynamic_conv_params(64, 128, 3) + 2 * 128  # + the BatchNorm's affine parameters
    assert profile_macs(dyn, x) / profile_macs(conv, x) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("kernel", [4, 3, 23, 11.0, "11", True])
def test_conv2former_rejects_bad_kernels(kernel: object) -> None:
    with pytest.raises(ValueError, match="kernel must be an odd integer from 5 to 21"):
        Conv2Former(16, 32, 3, 2, kernel)
    with pytest.raises(ValueError, match="kernel must be an odd integer from 5 to 21"):
        C3k2_Conv2Former(16, 32, 1, False, 0.5, False, 1, True, kernel)


@pytest.mark.parametrize("kernel", [5, 7, 13, 21])
def test_conv2former_accepts_kernels_5_to_21(kernel: int) -> None:
    m = Conv2Former(8, 8, 3, 1, kernel)
    assert m.block.attn.a[2].kernel_size == (kernel, kernel)


def test_acmix_rejects_channels_not_divisible_by_heads() -> None:
    with pytest.raises(ValueError, match="66 output channels are not divisible by 4 heads"):
        ACmix(16, 66, 3, 2)


@pytest.mark.parametrize("hw", [(3, 3), (2, 5), (1, 1)])
def test_acmix_handles_maps_smaller_than_its_padding(hw: tuple[int, int]) -> None:
    x = torch.randn(1, 8, *hw)
    for s in (1, 2):
        assert ACmix(8, 8, 3, s).eval()(x).shape == Conv(8, 8, 3, s).eval()(x).shape


def test_acmix_conv_path_starts_as_a_shift() -> None:
    w = ACmixMixer(8, 8).dep_conv.weight  # C2 x 9 x 3 x 3
    assert torch.equal(w.sum((2, 3)), torch.ones(8, 9))
    assert w[0, 0, 0, 0] == 1 and w[0, 4, 1, 1] == 1 and w[0, 8, 2, 2] == 1


@pytest.mark.parametrize("cls", CONV_SLOT, ids=lambda c: c.__name__)
def test_conv_slot_rejects_stride_3(cls: type[nn.Module]) -> None:
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        cls(8, 8, 3, 3)


def test_block_slot_rejects_psa_attention_flag() -> None:
    with pytest.raises(ValueError, match="attn=True"):
        C3k2_GhostV2(16, 16, 1, False, 0.5, True)


ATT_WINDOW = 7  # kernel_att of the original ACmix
CONV_KERNEL = 3  # kernel_conv of the original ACmix


def _acmix_by_unfold(
    m: ACmixMixer, x: torch.Tensor, s: int, heads: int, positional: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (attention path, convolution path) of ACmix as the authors' ResNet code computes them.

    Written from the reference notes (section 4a) with torch only; reads nothing from ``m`` but its parameters
    (q, k, v, pe, fc, dep_conv). Attention: 7x7 windows of k, v and the positional map are unfolded, and
    logit_j = q . (k_j + pe_q - pe_j). The one departure from the original is the documented replicate padding
    of maps smaller than 4 px, where the original's reflection padding fails.
    """
    b, _, h, w = x.shape
    q, k, v = (F.conv2d(x, conv.weight, conv.bias) for conv in (m.q, m.k, m.v))
    c2 = q.shape[1]
    d = c2 // heads
    loc_w = torch.linspace(-1.0, 1.0, w).unsqueeze(0).repeat(h, 1)
    loc_h = torch.linspace(-1.0, 1.0, h).unsqueeze(1).repeat(1, w)
    position = torch.cat([loc_w.unsqueeze(0), loc_h.unsqueeze(0)], 0).unsqueeze(0)  # 1 x 2 x H x W
    pe = F.conv2d(position, m.pe.weight, m.pe.bias)  # 1 x d x H x W
    if not positional:
        pe = torch.zeros_like(pe)

    q_att = q.view(b * heads, d, h, w) * d**-0.5
    k_att, v_att = k.view(b * heads, d, h, w), v.view(b * heads, d, h, w)
    q_pe = pe
    if s > 1:
        q_att, q_pe = q_att[..., ::s, ::s], pe[..., ::s, ::s]
    ho, wo = q_att.shape[-2:]
    pad = ATT_WINDOW // 2  # the original's (dilation * (kernel_att - 1) + 1) // 2 at dilation 1
    mode = "reflect" if min(h, w) > pad else "replicate"

    def unfold(t: torch.Tensor) -> torch.Tensor:
        t = F.unfold(F.pad(t, (pad, pad, pad, pad), mode=mode), ATT_WINDOW, stride=s)
        return t.view(t.shape[0], d, ATT_WINDOW * ATT_WINDOW, ho, wo)

    att = (q_att.unsqueeze(2) * (unfold(k_att) + q_pe.unsqueeze(2) - unfold(pe))).sum(1)
    att = att.softmax(1)  # over the 49 window positions
    out_att = (att.unsqueeze(1) * unfold(v_att)).sum(2).view(b, c2, ho, wo)

    f_all = F.conv2d(torch.cat([t.view(b, heads, d, h * w) for t in (q, k, v)], 1), m.fc.weight, m.fc.bias)
    f_conv = f_all.permute(0, 2, 1, 3).reshape(b, -1, h, w)
    out_conv = F.conv2d(f_conv, m.dep_conv.weight, m.dep_conv.bias, stride=s, padding=CONV_KERNEL // 2, groups=d)
    return out_att, out_conv


@pytest.mark.parametrize(
    ("c1", "c2", "heads", "s", "hw"),
    [
        pytest.param(8, 16, 4, 1, (9, 9), id="s1-9x9"),
        pytest.param(8, 16, 4, 2, (12, 10), id="s2-12x10"),
        pytest.param(8, 16, 4, 2, (11, 13), id="s2-odd-11x13"),
        pytest.param(8, 16, 4, 1, (4, 6), id="s1-4x6-smallest-reflect"),
        pytest.param(8, 16, 4, 1, (3, 5), id="s1-3x5-replicate"),
        pytest.param(8, 16, 4, 2, (2, 5), id="s2-2x5-replicate"),
        pytest.param(12, 8, 2, 1, (8, 7), id="s1-2heads-12to8"),
    ],
)
def test_acmix_equals_the_authors_unfold_formulation(c1: int, c2: int, heads: int, s: int, hw: tuple[int, int]) -> None:
    m = ACmixMixer(c1, c2, s, heads).eval()
    x = torch.randn(2, c1, *hw)
    with torch.no_grad():
        m.dep_conv.weight.normal_(0.0, 0.3)  # any learned kernel, not only the shift init
        m.pe.weight.mul_(3.0)  # a positional term that visibly moves the attention
        att, conv = _acmix_by_unfold(m, x, s, heads)
        for r1, r2 in [(1.0, 0.0), (0.0, 1.0), (0.7, -1.3)]:  # each path alone, then the mix
            m.rate1.fill_(r1)
            m.rate2.fill_(r2)
            torch.testing.assert_close(m(x), r1 * att + r2 * conv, atol=1e-5, rtol=1e-4)
        # the comparison can fail: dropping the positional term changes the attention path
        att_without_pe, _ = _acmix_by_unfold(m, x, s, heads, positional=False)
    assert not torch.allclose(att_without_pe, att, atol=1e-3)
