"""ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

Depthwise 7x7 -> LayerNorm -> Linear 4C -> GELU -> Linear C -> layer scale (1e-6) -> residual.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import DownsampleThenBlock, trunc_normal_init


class ConvNeXtBlock(nn.Module):
    """The original ConvNeXt block, C -> C at stride 1 (also ``C3k2_ConvNeXt``'s inner block)."""

    def __init__(self, c: int, k: int = 7, ls_init: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, k, padding=k // 2, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), float(ls_init)))
        trunc_normal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x + gamma * MLP(LN(dwconv(x))), same shape as ``x``."""
        y = self.dwconv(x).permute(0, 2, 3, 1)  # B x H x W x C: the Linear layers act on channels
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma.to(y.dtype)
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(DownsampleThenBlock):
    """Conv-slot ConvNeXt with Ultralytics ``Conv(c1, c2, k, s)``'s arguments.

    YAML: ``[-1, 1, ConvNeXt, [c2, k, s]]``. When s == 2 or c1 != c2 the block is preceded by ConvNeXt's own
    downsampling layer (channels-first LayerNorm + s x s stride-s conv; 1x1 when only the width changes).
    The row's k is accepted for the Conv convention; the block's depthwise kernel is 7 as in the original.
    """

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__("ConvNeXt", c1, c2, s, ConvNeXtBlock)
