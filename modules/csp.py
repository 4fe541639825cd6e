"""Block-slot operators: Ultralytics' C3k2 with its inner bottleneck replaced by one of the searched blocks.

``C3k2_X(c1, c2, n, c3k, e, attn, g, shortcut)`` takes C3k2's own arguments (Ultralytics 8.4 order) and
keeps its structure: a 1x1 conv to 2c (c = int(c2*e)), split, n inner blocks applied in chain, concat of all,
1x1 conv to c2. With ``c3k`` each inner block is a C3k-shaped CSP (two X blocks at width c/2), as C3k2 does;
Ultralytics forces ``c3k`` at the m/l/x scales for these classes too (see ``registry``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn
from ultralytics.nn.modules.block import C3, C2f
from ultralytics.nn.modules.conv import Conv

from .acmix import ACmixBottleneck
from .conv2former import DEFAULT_KERNEL, Conv2FormerBlock, check_kernel
from .convnext import ConvNeXtBlock
from .dynamic_conv import DynamicBottleneck
from .ghostv2 import GhostBottleneckV2

InnerFactory = Callable[[int, bool, float], nn.Module]


class C3kOf(C3):
    """C3k's CSP (1x1 convs to c_ = c2*e, n inner blocks, concat, 1x1) with any c_ -> c_ inner block.

    A ``C3`` subclass for Ultralytics' type checks; it builds its own layers instead of C3's bottlenecks.
    """

    def __init__(self, c1: int, c2: int, n: int, shortcut: bool, make_inner: InnerFactory, e: float = 0.5) -> None:
        nn.Module.__init__(self)
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(make_inner(c_, shortcut, 1.0) for _ in range(n)))


class C3k2Of(C2f):
    """Base of the ``C3k2_*`` classes; subclasses set ``op_name`` and implement ``inner``."""

    op_name: ClassVar[str] = ""

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        g: int = 1,
        shortcut: bool = True,
    ) -> None:
        nn.Module.__init__(self)
        name = type(self).__name__
        if attn:
            raise ValueError(f"{name}: attn=True (C3k2's PSA variant) cannot be combined with {self.op_name}")
        if g != 1:
            raise ValueError(f"{name}: grouped inner blocks (g={g}) are not supported")
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(
            C3kOf(self.c, self.c, 2, shortcut, self.inner) if c3k else self.inner(self.c, shortcut, 0.5)
            for _ in range(n)
        )

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return one c -> c inner block (``e`` is the bottleneck expansion C3k2 would use there)."""
        raise TypeError(f"{type(self).__name__} does not define its inner block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return C3k2's output, B x c2 x H x W."""
        return C2f.forward(self, x)


class C3k2_DynamicConv(C3k2Of):  # noqa: N801 - public YAML name
    """C3k2 whose bottlenecks use DynamicConv for both 3x3 convs."""

    op_name = "DynamicConv"

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return a ``DynamicBottleneck``."""
        return DynamicBottleneck(c, shortcut, e)


class C3k2_GhostV2(C3k2Of):  # noqa: N801
    """C3k2 whose bottlenecks are GhostNetV2 bottlenecks (DFC-gated first Ghost module)."""

    op_name = "GhostV2"

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return a ``GhostBottleneckV2``."""
        return GhostBottleneckV2(c, shortcut)


class C3k2_ACmix(C3k2Of):  # noqa: N801
    """C3k2 whose bottlenecks use ACmix for the second 3x3 conv."""

    op_name = "ACmix"

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return an ``ACmixBottleneck``."""
        return ACmixBottleneck(c, shortcut, e)


class C3k2_ConvNeXt(C3k2Of):  # noqa: N801
    """C3k2 whose bottlenecks are ConvNeXt blocks (always residual, as in the original)."""

    op_name = "ConvNeXt"

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return a ``ConvNeXtBlock``."""
        return ConvNeXtBlock(c)


class C3k2_Conv2Former(C3k2Of):  # noqa: N801
    """C3k2 whose bottlenecks are Conv2Former blocks; one extra argument, the kernel (odd, 5..21, default 11).

    YAML: ``[-1, 2, C3k2_Conv2Former, [c2, c3k, e, attn, g, shortcut, kernel]]``, e.g.
    ``[256, False, 0.25, False, 1, True, 13]``.
    """

    op_name = "Conv2Former"

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        g: int = 1,
        shortcut: bool = True,
        kernel: int = DEFAULT_KERNEL,
    ) -> None:
        self.kernel = check_kernel(kernel, "C3k2_Conv2Former")
        super().__init__(c1, c2, n, c3k, e, attn, g, shortcut)

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return a ``Conv2FormerBlock`` with this layer's kernel (always residual, as in the original)."""
        return Conv2FormerBlock(c, self.kernel)
