"""Each operator in both slot forms: shapes, errors, gradients, determinism, batch independence, counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from ultralytics.nn.modules.block import C3k2
from ultralytics.nn.modules.conv import Conv

from modules import (
    ACmix,
    ACmixMixer,
    C3k2_ACmix,
    C3k2_Conv2Former,
    C3k2_ConvNeXt,
    C3k2_DynamicConv,
    C3k2_GhostV2,
    Conv2Former,
    Conv2FormerBlock,
    ConvNeXt,
    ConvNeXtBlock,
    DynamicConv,
    DynamicConv2d,
    GhostModuleV2,
    GhostV2,
    formulas,
)
from modules.flops import profile_macs

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


@pytest.mark.parametrize("cls", CONV_SLOT + BLOCK_SLOT, ids=lambda c: c.__name__)
def test_eval_output_is_deterministic(cls: type[nn.Module]) -> None:
    m = (cls(16, 32, 3, 1) if cls in CONV_SLOT else cls(16, 32, 1, False, 0.5)).eval()
    x = torch.randn(2, 16, 12, 12)
    with torch.no_grad():
        assert torch.equal(m(x), m(x))


def test_dynamic_conv_sample_depends_only_on_itself() -> None:
    m = DynamicConv(8, 16, 3, 2).eval()
    x = torch.randn(4, 8, 10, 10)
    with torch.no_grad():
        batched = m(x)
        alone = torch.cat([m(x[i : i + 1]) for i in range(4)])
        x2 = x.clone()
        x2[1:] = torch.randn(3, 8, 10, 10)
        changed = m(x2)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(changed[0], batched[0], atol=1e-5, rtol=1e-5)


def test_dynamic_conv_routing_is_sigmoid_gates_not_softmax() -> None:
    m = DynamicConv2d(8, 8, 3)
    x = torch.randn(3, 8, 6, 6)
    alpha = torch.sigmoid(m.routing(x.mean((2, 3))))
    manual = torch.stack(
        [
            torch.nn.functional.conv2d(
                x[b : b + 1], (alpha[b].view(4, 1, 1, 1, 1) * m.weight.view(4, 8, 8, 3, 3)).sum(0), padding=1
            )[0]
            for b in range(3)
        ]
    )
    torch.testing.assert_close(m(x), manual, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(alpha.sum(1), torch.ones(3))


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (lambda: DynamicConv2d(64, 128, 3), 295_172),
        (lambda: DynamicConv2d(64, 64, 3, g=64), 2_564),
        (lambda: DynamicConv2d(64, 128, 1), 33_028),
        (lambda: GhostModuleV2(64, 128, 1, attn=False), 4_928),
        (lambda: GhostModuleV2(64, 128, 1, attn=True), 15_168),
        (lambda: GhostModuleV2(64, 127, 1, attn=True), 15_088),
        (lambda: ACmixMixer(64, 64), 17_822),
        (lambda: ACmixMixer(64, 128), 35_534),
        (lambda: Conv2FormerBlock(64, 11), 56_320),
        (lambda: Conv2FormerBlock(128, 7), 193_536),
        (lambda: ConvNeXtBlock(64), 36_480),
        (lambda: ConvNeXtBlock(128), 138_496),
    ],
)
def test_original_form_parameter_counts(module: object, expected: int) -> None:
    assert sum(p.numel() for p in module().parameters()) == expected


@pytest.mark.parametrize("c1,c2,k,g", [(16, 32, 3, 1), (128, 256, 3, 1), (64, 64, 3, 64), (32, 48, 1, 1)])
def test_parameter_formulas_dynamic_conv(c1: int, c2: int, k: int, g: int) -> None:
    n = sum(p.numel() for p in DynamicConv2d(c1, c2, k, g=g).parameters())
    assert n == formulas.dynamic_conv_params(c1, c2, k, g)


@pytest.mark.parametrize("c1,c2,k,attn", [(16, 32, 3, True), (128, 256, 3, True), (32, 33, 1, False)])
def test_parameter_formulas_ghost(c1: int, c2: int, k: int, attn: bool) -> None:
    n = sum(p.numel() for p in GhostModuleV2(c1, c2, k, attn=attn).parameters())
    assert n == formulas.ghost_module_v2_params(c1, c2, k, attn)


@pytest.mark.parametrize("c1,c2", [(16, 32), (128, 256), (64, 8)])
def test_parameter_formulas_acmix(c1: int, c2: int) -> None:
    assert sum(p.numel() for p in ACmixMixer(c1, c2).parameters()) == formulas.acmix_params(c1, c2)


@pytest.mark.parametrize("c,k", [(16, 5), (64, 21), (96, 13)])
def test_parameter_formulas_blocks(c: int, k: int) -> None:
    assert sum(p.numel() for p in Conv2FormerBlock(c, k).parameters()) == formulas.conv2former_block_params(c, k)
    assert sum(p.numel() for p in ConvNeXtBlock(c).parameters()) == formulas.convnext_block_params(c)


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
    ("ACmix L5", lambda: ACmixMixer(64, 128, 2), (64, 80, 80), formulas.acmix_macs(64, 128, 2, 80, 80)),
    ("ACmix c64", lambda: ACmixMixer(64, 64, 1), (64, 40, 40), formulas.acmix_macs(64, 64, 1, 40, 40)),
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


@pytest.mark.parametrize(("name", "module", "shape", "reference"), MAC_CASES, ids=[c[0] for c in MAC_CASES])
def test_counted_macs_within_5_percent_of_reference(name: str, module: object, shape: tuple, reference: int) -> None:
    counted = profile_macs(module(), torch.zeros(1, *shape))
    assert counted == pytest.approx(reference, rel=0.05)


def test_dynamic_conv_at_yolo11n_layer5_has_4x_params_same_flops() -> None:
    conv, dyn = Conv(64, 128, 3, 2), DynamicConv(64, 128, 3, 2)
    x = torch.zeros(1, 64, 80, 80)
    p_conv = sum(p.numel() for p in conv.parameters())
    p_dyn = sum(p.numel() for p in dyn.parameters())
    assert 3.9 < p_dyn / p_conv < 4.1
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


def _acmix_attention_by_unfold(m: ACmixMixer, x: torch.Tensor) -> torch.Tensor:
    """The attention path as the original code computes it: unfold 7x7 windows of k, v and the positional map."""
    import math

    import torch.nn.functional as F

    from modules.acmix import _position_grid, _window_pad

    b, _, h, w = x.shape
    s, n, d = m.s, m.heads, m.head_dim
    ho, wo = math.ceil(h / s), math.ceil(w / s)
    q, k, v = m.q(x), m.k(x), m.v(x)
    pe = m.pe(_position_grid(h, w, x.device, x.dtype))
    qh, pe_q = q.reshape(b * n, d, h, w)[..., ::s, ::s] * d**-0.5, pe[..., ::s, ::s]
    unfold = lambda t: F.unfold(_window_pad(t, 3), 7, stride=s).view(t.shape[0], d, 49, ho * wo)  # noqa: E731
    k_win, v_win, pe_win = unfold(k.reshape(b * n, d, h, w)), unfold(v.reshape(b * n, d, h, w)), unfold(pe)
    logits = (qh.reshape(b * n, d, 1, -1) * (k_win + pe_q.reshape(1, d, 1, -1) - pe_win)).sum(1)
    return (logits.softmax(1).unsqueeze(1) * v_win).sum(2).reshape(b, n * d, ho, wo)


@pytest.mark.parametrize("s,hw", [(1, (9, 9)), (2, (12, 10)), (2, (11, 13)), (1, (3, 5))])
def test_acmix_window_attention_equals_the_unfold_formulation(s: int, hw: tuple[int, int]) -> None:
    m = ACmixMixer(8, 16, s).eval()
    with torch.no_grad():
        m.rate2.zero_()
        m.rate1.fill_(1.0)
        x = torch.randn(2, 8, *hw)
        torch.testing.assert_close(m(x), _acmix_attention_by_unfold(m, x), atol=1e-5, rtol=1e-4)
