"""Complete FLOP counting for the operators, by Ultralytics' convention (GFLOPs = 2 x multiply-accumulates / 1e9).

thop counts ``nn`` layers (convs, linears, norms, softmax, pools) by module hooks, and functional matmuls only
outside modules that have a rule of their own. It misses ``F.conv2d`` (DynamicConv's whole convolution), the
window products of ACmix (elementwise products of strided views), and elementwise products (gates, modulation,
layer scale). Each rule
below counts exactly the multiply-accumulates a module performs in its *own* forward outside its child layers;
thop adds the children. Additions (residuals, positional offsets) are not counted, as for stock layers.

These rules are the one place the operators' cost is defined; ``ultralytics_adapter.get_flops`` uses them for
Ultralytics' ``model.info()``, the search's cost model uses ``count_macs``.
"""

from __future__ import annotations

from collections.abc import Callable

import thop
import torch
from torch import nn

from .acmix import WINDOW, ACmixMixer
from .conv2former import ConvMod
from .convnext import ConvNeXtBlock
from .dynamic_conv import DynamicConv2d
from .ghostv2 import GhostModuleV2
from .layers import LayerScale2d

Rule = Callable[[nn.Module, tuple, torch.Tensor], None]


def _dynamic_conv(m: DynamicConv2d, x: tuple, y: torch.Tensor) -> None:
    """Per-sample convolution (B*C2*Ho*Wo*C1/g*k^2) plus the kernel mixing (B*E*C2*C1/g*k^2)."""
    per_out_pixel = (m.c1 // m.g) * m.k * m.k
    batch = y.shape[0]
    m.total_ops += y.numel() * per_out_pixel + batch * m.num_experts * m.c2 * per_out_pixel


def _acmix(m: ACmixMixer, x: tuple, y: torch.Tensor) -> None:
    """Window products q.(k+pe) and attn.v (49 each per output element), q scaling and the two mixing rates."""
    m.total_ops += y.numel() * (2 * WINDOW * WINDOW + 3)


def _elementwise_output(m: nn.Module, x: tuple, y: torch.Tensor) -> None:
    """One multiply per output element: DFC gating, convolutional modulation's A (.) V, layer scale."""
    if not isinstance(m, GhostModuleV2) or m.dfc is not None:
        m.total_ops += y.numel()


def _convnext_block(m: ConvNeXtBlock, x: tuple, y: torch.Tensor) -> None:
    """The layer-scale multiply (one per element)."""
    m.total_ops += y.numel()


RULES: dict[type[nn.Module], Rule] = {
    DynamicConv2d: _dynamic_conv,
    ACmixMixer: _acmix,
    GhostModuleV2: _elementwise_output,
    ConvMod: _elementwise_output,
    LayerScale2d: _elementwise_output,
    ConvNeXtBlock: _convnext_block,
}


def profile_macs(module: nn.Module, x: torch.Tensor) -> float:
    """Return the multiply-accumulates of ``module(x)``, counted by thop plus this module's rules.

    The module's train/eval modes are restored afterwards.
    """
    return float(thop.profile(module, inputs=[x], custom_ops=RULES, verbose=False)[0])


def count_macs(model: nn.Module, imgsz: int | tuple[int, int] = 640) -> float:
    """Return the multiply-accumulates of one forward of a YOLO ``model`` on a 1 x 3 x H x W image (full resolution)."""
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    p = next(model.parameters())
    return profile_macs(model, torch.zeros((1, p.shape[1], h, w), device=p.device, dtype=p.dtype))
