"""GhostV2: the Ghost module gated by DFC attention, from GhostNetV2 (Tang et al., "GhostNetV2: Enhance Cheap
Operation with Long-Range Attention", NeurIPS 2022).

Ghost module: a primary k x k conv makes ceil(C2/2) intrinsic maps, a cheap depthwise 3x3 conv makes as many
"ghost" maps, and the two are concatenated. DFC attention, computed in parallel from the module input:
2x2 average pool -> k x k conv (stride s) + BN -> depthwise 1x5 + BN -> depthwise 5x1 + BN -> sigmoid ->
nearest upsample to the output size -> multiply all C2 output channels.

Activations are SiLU (Ultralytics' default) instead of the original ReLU; conv+BN pairs are Ultralytics
``Conv`` units so ``fuse()`` folds them for deployment.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules.block import Bottleneck
from ultralytics.nn.modules.conv import Conv

from .layers import check_stride, static_shape


class DFCAttention(nn.Module):
    """Decoupled fully-connected attention gate: sigmoid(DFC(avgpool(x))), B x C2 x ceil(H/2/s) x ceil(W/2/s)."""

    def __init__(self, c1: int, c2: int, k: int, s: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.conv = Conv(c1, c2, k, s, act=False)
        self.horizontal = Conv(c2, c2, (1, 5), 1, p=(0, 2), g=c2, act=False)
        self.vertical = Conv(c2, c2, (5, 1), 1, p=(2, 0), g=c2, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the gate before upsampling, values in (0, 1)."""
        if min(x.shape[-2:]) >= 2:  # a 1-pixel map has nothing to pool
            x = self.pool(x)
        return torch.sigmoid(self.vertical(self.horizontal(self.conv(x))))


class GhostModuleV2(nn.Module):
    """Ghost module (c1 -> c2, kernel k, stride s), optionally gated by DFC attention (``attn=True``).

    Output: B x c2 x ceil(H/s) x ceil(W/s) for odd k. Works for any H, W (odd sizes included).
    """

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, act: bool = True, attn: bool = True) -> None:
        super().__init__()
        self.c2 = c2
        init = math.ceil(c2 / 2)
        self.primary = Conv(c1, init, k, s, act=act)
        self.cheap = Conv(init, init, 3, 1, g=init, act=act)
        self.dfc = DFCAttention(c1, c2, k, s) if attn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (gated) Ghost features."""
        intrinsic = self.primary(x)
        out = torch.cat((intrinsic, self.cheap(intrinsic)), 1)[:, : self.c2]
        if self.dfc is None:
            return out
        gate = F.interpolate(self.dfc(x), size=static_shape(out)[-2:], mode="nearest")
        return out * gate


class GhostV2(nn.Module):
    """Conv-slot GhostV2: a DFC-gated Ghost module with Ultralytics ``Conv(c1, c2, k, s)``'s arguments.

    YAML: ``[-1, 1, GhostV2, [c2, k, s]]``, any c1 -> c2, stride 1 or 2. Like Ultralytics' ``GhostConv``
    (``yolov8-ghost.yaml``) it uses the row's k for the primary conv, so ``[c2, 3, 2]`` replaces a 3x3 s2 Conv.
    """

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.ghost = GhostModuleV2(c1, c2, k, check_stride("GhostV2", s), act=True, attn=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return B x c2 x ceil(H/s) x ceil(W/s)."""
        return self.ghost(x)


class GhostBottleneckV2(Bottleneck):
    """Block-slot GhostV2: GhostNetV2's stride-1 bottleneck c -> mid -> c, with Ultralytics' ``Bottleneck`` forward.

    First Ghost module (``cv1``) DFC-gated with activation, second (``cv2``) plain without activation (as in the
    original, whose first two network blocks skip the gate; every inner block here is a later block). Residual
    when ``shortcut``.
    """

    # submodule names before 2026-11, renamed when such a checkpoint is unpickled
    LEGACY_NAMES: ClassVar[dict[str, str]] = {"ghost1": "cv1", "ghost2": "cv2"}

    def __init__(self, c: int, shortcut: bool = True, mid: int | None = None) -> None:
        nn.Module.__init__(self)
        mid = mid or c
        self.cv1 = GhostModuleV2(c, mid, 1, 1, act=True, attn=True)
        self.cv2 = GhostModuleV2(mid, c, 1, 1, act=False, attn=False)
        self.add = shortcut

    def __setstate__(self, state: dict) -> None:
        """Unpickle, renaming the submodules of checkpoints written with the legacy names."""
        modules = state.get("_modules", {})
        state["_modules"] = type(modules)((self.LEGACY_NAMES.get(k, k), v) for k, v in modules.items())
        super().__setstate__(state)
