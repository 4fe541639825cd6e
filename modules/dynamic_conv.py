"""DynamicConv from ParameterNet (Han et al., "ParameterNet: Parameters Are All You Need for Large-scale
Visual Pretraining of Mobile Networks", CVPR 2024).

A CondConv-style mixture of experts, not a deformable convolution: E static kernels are mixed per sample
by input-dependent gates (global average pool -> Linear -> sigmoid), and the mixed kernel convolves that
sample. The extra parameters cost almost no FLOPs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules.block import Bottleneck
from ultralytics.nn.modules.conv import Conv, autopad

from .layers import check_stride, static_shape


class DynamicConv2d(nn.Module):
    """Per-sample mixture of ``num_experts`` convolution kernels.

    Forward on x (B x C1 x H x W): alpha = sigmoid(Linear(avgpool(x))) (B x E, independent gates, not a
    softmax), W_b = sum_e alpha[b, e] W_e, y_b = conv2d(x_b, W_b). The batch is folded into the groups of a
    single grouped convolution, so sample b's output depends only on sample b.

    The expert bank is stored 3-D (E, C2, C1/g*k*k): Ultralytics' MuSGD would orthogonalise a 2-D or 4-D
    parameter as a matrix, and ``model.to(memory_format=torch.channels_last)`` (Ultralytics' CPU inference
    default) rejects 5-D parameters.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 3,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        num_experts: int = 4,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if c1 % g or c2 % g:
            raise ValueError(f"DynamicConv: channels {c1}->{c2} not divisible by groups {g}")
        self.c1, self.c2, self.k, self.s, self.g, self.d = c1, c2, k, s, g, d
        self.p = autopad(k, p, d)
        self.num_experts = num_experts
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.routing = nn.Linear(c1, num_experts)
        self.weight = nn.Parameter(torch.empty(num_experts, c2, (c1 // g) * k * k))
        self.bias = nn.Parameter(torch.empty(num_experts, c2)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise each expert as PyTorch initialises one Conv2d (kaiming-uniform, a=sqrt(5))."""
        per_expert = self.weight.view(self.num_experts, self.c2, self.c1 // self.g, self.k, self.k)
        for e in range(self.num_experts):
            nn.init.kaiming_uniform_(per_expert[e], a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt((self.c1 // self.g) * self.k * self.k)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the per-sample dynamic convolution, B x C2 x Ho x Wo."""
        b, c, h, w = static_shape(x)  # ints: the kernel's shape stays static when the model is traced for export
        alpha = torch.sigmoid(self.routing(self.pool(x).flatten(1)))  # B x E
        bank = self.weight.reshape(self.num_experts, -1).to(x.dtype)  # E x (C2*C1/g*k*k)
        kernels = torch.matmul(alpha, bank).reshape(b * self.c2, c // self.g, self.k, self.k)
        bias = torch.matmul(alpha, self.bias.to(x.dtype)).reshape(-1) if self.bias is not None else None
        y = F.conv2d(
            x.reshape(1, b * c, h, w), kernels, bias, stride=self.s, padding=self.p, dilation=self.d, groups=self.g * b
        )
        return y.reshape(b, self.c2, y.shape[-2], y.shape[-1])


class DynamicConv(nn.Module):
    """Conv-slot DynamicConv: ``DynamicConv2d`` + BatchNorm + SiLU with Ultralytics ``Conv(c1, c2, k, s)``'s arguments.

    YAML: ``[-1, 1, DynamicConv, [c2, k, s]]`` (optionally ``[c2, k, s, p, g, d, act, num_experts]``).
    Deliberately not a ``Conv`` subclass: the kernel depends on the input, so Ultralytics' ``fuse()`` must
    not try to fold the BatchNorm into it.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 1,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        act: bool | nn.Module = True,
        num_experts: int = 4,
    ) -> None:
        super().__init__()
        self.conv = DynamicConv2d(c1, c2, k, check_stride("DynamicConv", s), p, g, d, num_experts)
        self.bn = nn.BatchNorm2d(c2)
        self.act = Conv.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return SiLU(BN(dynamic conv(x))), B x c2 x ceil(H/s) x ceil(W/s) for k=3."""
        return self.act(self.bn(self.conv(x)))


class DynamicBottleneck(Bottleneck):
    """Block-slot DynamicConv: Ultralytics' ``Bottleneck`` with both 3x3 convs replaced by ``DynamicConv``.

    c -> int(c*e) -> c, residual when ``shortcut``; the forward is Ultralytics' own.
    """

    def __init__(self, c: int, shortcut: bool = True, e: float = 0.5, num_experts: int = 4) -> None:
        nn.Module.__init__(self)
        c_ = int(c * e)
        self.cv1 = DynamicConv(c, c_, 3, 1, num_experts=num_experts)
        self.cv2 = DynamicConv(c_, c, 3, 1, num_experts=num_experts)
        self.add = shortcut
