"""Closed-form parameter and MAC counts of the original-form blocks, from the papers and authors' code.

A test and benchmark oracle, not part of the operators: the measured counts (``modules.flops``) are checked
against these in ``tests/test_operators.py`` and ``benchmarks/cost_accuracy.py``; nothing counts FLOPs with
them. The formulas restate the project's reference notes (``../shared/reference/modules.md``, sections 2-6),
where they were verified against the authors' modules. MACs are multiply-accumulates for one image; H x W is
the input size, Ho x Wo the output size.
"""

from __future__ import annotations

import math


def _out(size: int, s: int) -> int:
    """Output size of a stride-s layer that keeps ceil(size / s), as a padded 3x3 stride-s conv does."""
    return math.ceil(size / s)


def dynamic_conv_params(c1: int, c2: int, k: int, g: int = 1, experts: int = 4) -> int:
    """ParameterNet DynamicConv: E expert kernels + the routing Linear (C1 -> E, bias)."""
    return experts * c2 * (c1 // g) * k * k + experts * c1 + experts


def dynamic_conv_macs(c1: int, c2: int, k: int, s: int, h: int, w: int, g: int = 1, experts: int = 4) -> int:
    """Static-conv work + kernel mixing (E*C2*C1/g*k^2) + routing (E*C1)."""
    per_pixel = c2 * (c1 // g) * k * k
    return _out(h, s) * _out(w, s) * per_pixel + experts * per_pixel + experts * c1


def ghost_module_v2_params(c1: int, c2: int, k: int, attn: bool) -> int:
    """GhostModuleV2 (ratio 2, dw 3): init*(C1*k^2 + 13), plus C2*(C1*k^2 + 16) for the DFC branch."""
    init = math.ceil(c2 / 2)
    return init * (c1 * k * k + 13) + (c2 * (c1 * k * k + 16) if attn else 0)


def ghost_module_v2_macs(c1: int, c2: int, k: int, s: int, h: int, w: int, attn: bool) -> int:
    """Ho*Wo*init*(C1*k^2 + 9), plus the DFC branch at the pooled, strided size: Hd*Wd*C2*(C1*k^2 + 10)."""
    init = math.ceil(c2 / 2)
    macs = _out(h, s) * _out(w, s) * init * (c1 * k * k + 9)
    if attn:
        hd, wd = _out(h // 2, s), _out(w // 2, s)
        macs += hd * wd * c2 * (c1 * k * k + 10)
    return macs


def acmix_params(c1: int, c2: int, heads: int = 4) -> int:
    """ACmix: 3(C1*C2 + C2) + 3d + 3N*9 + 81*C2 + 2 (d = C2/N, no dep_conv bias)."""
    d = c2 // heads
    return 3 * (c1 * c2 + c2) + 3 * d + 3 * heads * 9 + 81 * c2 + 2


def acmix_macs(c1: int, c2: int, s: int, h: int, w: int, heads: int = 4) -> int:
    """q/k/v projections + positional conv + fc at H x W; q.k and attn.v (49 each) and dep_conv (81) at Ho x Wo."""
    d = c2 // heads
    hw, lo = h * w, _out(h, s) * _out(w, s)
    return hw * (3 * c1 * c2 + 2 * d + 27 * c2) + lo * (98 * c2 + 81 * c2)


def conv2former_block_params(c: int, k: int, ratio: int = 4) -> int:
    """Conv2Former block: (3 + 2r)C^2 + C*k^2 + 11rC + 11C."""
    return (3 + 2 * ratio) * c * c + c * k * k + 11 * ratio * c + 11 * c


def conv2former_block_macs(c: int, k: int, h: int, w: int, ratio: int = 4) -> int:
    """Conv2Former block: H*W*[(3 + 2r)C^2 + C*k^2 + 9rC]."""
    return h * w * ((3 + 2 * ratio) * c * c + c * k * k + 9 * ratio * c)


def convnext_block_params(c: int, k: int = 7) -> int:
    """ConvNeXt block: 8C^2 + C*k^2 + 9C."""
    return 8 * c * c + c * k * k + 9 * c


def convnext_block_macs(c: int, h: int, w: int, k: int = 7) -> int:
    """ConvNeXt block: H*W*(8C^2 + C*k^2)."""
    return h * w * (8 * c * c + c * k * k)


def conv_macs(c1: int, c2: int, k: int, s: int, h: int, w: int) -> int:
    """A plain (Ultralytics) k x k stride-s conv, BN excluded: Ho*Wo*C1*C2*k^2."""
    return _out(h, s) * _out(w, s) * c1 * c2 * k * k
