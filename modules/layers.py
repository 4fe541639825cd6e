"""Small layers shared by the operators: channels-first LayerNorm, layer scale, patch merging and the
downsample-then-block wrapper of the stride-1 blocks."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor (ConvNeXt's ``channels_first`` LayerNorm).

    A subclass of ``nn.LayerNorm`` on purpose: thop counts it, and Ultralytics' optimizer puts its
    affine parameters in the no-weight-decay group like every other ``torch.nn`` norm.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` normalised over channels, same shape."""
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale2d(nn.Module):
    """Multiply an NCHW tensor by a learnable per-channel scale ``gamma`` (initialised small)."""

    def __init__(self, channels: int, init: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``gamma[c] * x[:, c]``."""
        return x * self.gamma.view(1, -1, 1, 1).to(x.dtype)


def static_shape(x: torch.Tensor) -> tuple[int, ...]:
    """Return ``x.shape`` as plain ints.

    In eager mode this is ``tuple(x.shape)``. While a model is traced for export, sizes read from ``x.shape`` are
    tensors, and every shape computed from them is unknown to the exported graph (ONNX then refuses, e.g., a
    convolution whose kernel shape depends on them); as ints they become the constants a static export needs.
    """
    return tuple(int(s) for s in x.shape)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Return ``x`` zero-padded on the bottom/right so that H and W are multiples of ``multiple``.

    Used before a stride-s patch-merging conv so its output is ceil(H/s) x ceil(W/s), the size an
    Ultralytics ``Conv(k=3, s=2)`` produces, also for odd inputs.
    """
    h, w = static_shape(x)[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if ph or pw else x


class PatchMerge(nn.Module):
    """Downsampling of ConvNeXt and Conv2Former: channels-first LayerNorm, then an s x s stride-s conv.

    With ``s == 1`` it is LayerNorm + 1x1 projection (used when only the width changes).
    Output: B x c2 x ceil(H/s) x ceil(W/s).
    """

    def __init__(self, c1: int, c2: int, s: int) -> None:
        super().__init__()
        self.s = s
        self.norm = LayerNorm2d(c1)
        self.reduction = nn.Conv2d(c1, c2, kernel_size=s, stride=s, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the merged map, B x c2 x ceil(H/s) x ceil(W/s)."""
        return self.reduction(pad_to_multiple(self.norm(x), self.s))


def trunc_normal_init(module: nn.Module, std: float = 0.02) -> None:
    """Initialise every Conv2d/Linear under ``module`` like ConvNeXt and Conv2Former: truncated N(0, std), zero bias."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_stride(name: str, s: int) -> int:
    """Return ``s`` if it is 1 or 2; raise ValueError naming the operator otherwise."""
    if s not in (1, 2):
        raise ValueError(f"{name}: stride must be 1 or 2, got {s!r}")
    return int(s)


class DownsampleThenBlock(nn.Module):
    """Conv-slot form of a stride-1, channel-preserving block (ConvNeXt, Conv2Former), as their papers downsample.

    When ``s == 2`` or ``c1 != c2`` the block is preceded by ``PatchMerge`` (channels-first LayerNorm + s x s
    stride-s conv; a 1x1 projection when only the width changes), initialised like the block.
    Output: B x c2 x ceil(H/s) x ceil(W/s).
    """

    def __init__(self, name: str, c1: int, c2: int, s: int, make_block: Callable[[int], nn.Module]) -> None:
        super().__init__()
        s = check_stride(name, s)
        self.down = PatchMerge(c1, c2, s) if (s > 1 or c1 != c2) else nn.Identity()
        trunc_normal_init(self.down)
        self.block = make_block(c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``block(down(x))``, B x c2 x ceil(H/s) x ceil(W/s)."""
        return self.block(self.down(x))
