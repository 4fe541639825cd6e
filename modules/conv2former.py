"""Conv2Former's convolutional modulation block (Hou et al., "Conv2Former: A Simple Transformer-Style ConvNet
for Visual Recognition", TPAMI 2024).

ConvMod: LN -> (1x1 -> GELU -> depthwise k x k) (.) (1x1) -> 1x1, i.e. Z = A (.) V with A a large-kernel
depthwise response. Block: x + g1 * ConvMod(x); x + g2 * MLP(x), the MLP being LN -> 1x1 (4C) -> GELU ->
(+ GELU(depthwise 3x3)) -> 1x1, layer scales g initialised to 1e-6. Kernel k odd, 5..21 (default 11).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import DownsampleThenBlock, LayerNorm2d, LayerScale2d, trunc_normal_init

KERNELS = tuple(range(5, 22, 2))  # odd kernels the paper studies, 5x5 .. 21x21
DEFAULT_KERNEL = 11


def check_kernel(k: object, where: str = "Conv2Former") -> int:
    """Return ``k`` as an int if it is an odd kernel in 5..21; raise ValueError naming ``where`` otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or k not in KERNELS:
        raise ValueError(f"{where}: kernel must be an odd integer from 5 to 21, got {k!r}")
    return k


class ConvMod(nn.Module):
    """Convolutional modulation (the original's ``SpatialAttention``): C -> C, same size."""

    def __init__(self, c: int, k: int = DEFAULT_KERNEL) -> None:
        super().__init__()
        self.norm = LayerNorm2d(c)
        self.a = nn.Sequential(nn.Conv2d(c, c, 1), nn.GELU(), nn.Conv2d(c, c, k, padding=k // 2, groups=c))
        self.v = nn.Conv2d(c, c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return proj(A (.) V) of the normalised input."""
        u = self.norm(x)
        return self.proj(self.a(u) * self.v(u))


class ConvModMLP(nn.Module):
    """Conv2Former's MLP: LN -> 1x1 (r*C) -> GELU -> h + GELU(depthwise 3x3 h) -> 1x1 (C)."""

    def __init__(self, c: int, ratio: int = 4) -> None:
        super().__init__()
        hidden = int(c * ratio)  # the original crashes on a float ratio; an int width is required
        self.norm = LayerNorm2d(c)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.pos = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, c, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the MLP branch, same shape as ``x``."""
        h = self.act(self.fc1(self.norm(x)))
        h = h + self.act(self.pos(h))
        return self.fc2(h)


class Conv2FormerBlock(nn.Module):
    """The original Conv2Former block, C -> C at stride 1: two residual branches with layer scale.

    Also the block-slot inner block of ``C3k2_Conv2Former``.
    """

    def __init__(self, c: int, k: int = DEFAULT_KERNEL, mlp_ratio: int = 4, ls_init: float = 1e-6) -> None:
        super().__init__()
        self.attn = ConvMod(c, check_kernel(k))
        self.scale1 = LayerScale2d(c, ls_init)
        self.mlp = ConvModMLP(c, mlp_ratio)
        self.scale2 = LayerScale2d(c, ls_init)
        trunc_normal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block output, same shape as ``x``."""
        x = x + self.scale1(self.attn(x))
        return x + self.scale2(self.mlp(x))


class Conv2Former(DownsampleThenBlock):
    """Conv-slot Conv2Former with Ultralytics ``Conv(c1, c2, k, s)``'s arguments plus the block's kernel.

    YAML: ``[-1, 1, Conv2Former, [c2, k, s, kernel]]``, e.g. ``[256, 3, 2, 13]``. The block is stride-1 and
    channel-preserving, so when s == 2 or c1 != c2 it is preceded by the original's downsampling layer
    (channels-first LayerNorm + s x s stride-s conv; 1x1 when only the width changes). The row's k is
    accepted for the Conv convention; the downsampling kernel is the stride, as in the original.
    """

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, kernel: int = DEFAULT_KERNEL) -> None:
        kernel = check_kernel(kernel)
        super().__init__("Conv2Former", c1, c2, s, lambda c: Conv2FormerBlock(c, kernel))
