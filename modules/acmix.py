"""ACmix (Pan et al., "On the Integration of Self-Attention and Convolution", CVPR 2022).

Three shared 1x1 projections q, k, v feed two paths:
- attention: 7x7 local-window self-attention per head, with a learned positional term
  (logit_j = q . (k_j + pe_center - pe_j));
- convolution: a light 1x1 "fully connected" layer turns the 3N head maps into 9 maps per head channel, and a
  grouped 3x3 conv initialised as shifts aggregates them (the shift-and-sum half of a 3x3 conv).
The output is rate1 * attention + rate2 * convolution, with learnable rates (initialised to 0.5).

Re-implemented from the paper's description and the reference notes; the original repository has no licence.
Shapes the original cannot handle are handled here: maps smaller than 4 pixels use replicate instead of
reflection padding, and odd sizes at stride 2 give ceil(H/2) x ceil(W/2) like a 3x3 stride-2 conv.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules.block import Bottleneck
from ultralytics.nn.modules.conv import Conv

from .layers import check_stride, static_shape

WINDOW = 7  # attention window (kernel_att)
SHIFT_KERNEL = 3  # conv-path kernel (kernel_conv); the shift init assumes 3


def _window_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad H and W by ``pad`` on each side: reflection as in the original, replicate where the map is too small."""
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad, pad, pad, pad), mode=mode)


def _position_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return the 1 x 2 x h x w grid of normalised coordinates: channel 0 along W, channel 1 along H.

    Built in float32 on the input's device (the original built float64 on CPU/CUDA only, which breaks ONNX
    Runtime and MPS), then cast to the projection's dtype so fp16 models work.
    """
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=torch.float32).view(1, w).expand(h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=torch.float32).view(h, 1).expand(h, w)
    return torch.stack((xs, ys)).unsqueeze(0).to(dtype)


class ACmixMixer(nn.Module):
    """The ACmix operator, c1 -> c2 at stride 1 or 2, no normalisation or activation inside.

    Output: B x c2 x ceil(H/s) x ceil(W/s). Requires c2 divisible by ``heads``.
    """

    def __init__(self, c1: int, c2: int, s: int = 1, heads: int = 4) -> None:
        super().__init__()
        if c2 % heads:
            raise ValueError(f"ACmix: {c2} output channels are not divisible by {heads} heads")
        self.c2, self.heads, self.s = c2, heads, check_stride("ACmix", s)
        self.head_dim = c2 // heads
        self.q = nn.Conv2d(c1, c2, 1)
        self.k = nn.Conv2d(c1, c2, 1)
        self.v = nn.Conv2d(c1, c2, 1)
        self.pe = nn.Conv2d(2, self.head_dim, 1)
        self.softmax = nn.Softmax(dim=1)
        taps = SHIFT_KERNEL * SHIFT_KERNEL
        self.fc = nn.Conv2d(3 * heads, taps, 1, bias=False)
        self.dep_conv = nn.Conv2d(
            taps * self.head_dim, c2, SHIFT_KERNEL, s, padding=SHIFT_KERNEL // 2, groups=self.head_dim, bias=False
        )
        self.rate1 = nn.Parameter(torch.tensor(0.5))
        self.rate2 = nn.Parameter(torch.tensor(0.5))
        self._shift_init()

    def _shift_init(self) -> None:
        """Make input slot i of every dep_conv filter a one-hot kernel at (i // 3, i % 3): a pure shift."""
        taps = SHIFT_KERNEL * SHIFT_KERNEL
        kernel = torch.zeros(taps, SHIFT_KERNEL, SHIFT_KERNEL)
        for i in range(taps):
            kernel[i, i // SHIFT_KERNEL, i % SHIFT_KERNEL] = 1.0
        with torch.no_grad():
            self.dep_conv.weight.copy_(kernel.unsqueeze(0).expand_as(self.dep_conv.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return rate1 * local attention + rate2 * shift conv."""
        b, _, h, w = static_shape(x)
        s, n, d = self.s, self.heads, self.head_dim
        ho, wo = math.ceil(h / s), math.ceil(w / s)
        q, k, v = self.q(x), self.k(x), self.v(x)  # B x C2 x H x W each

        # attention path: per head, softmax over the 49 window positions. The window is walked offset by
        # offset on strided views of the padded maps instead of unfolding them: q.k_j multiplies views (autograd
        # keeps no copy of k per offset), and the positional term pe_center - pe_j has no batch dimension.
        pe = self.pe(_position_grid(h, w, x.device, self.pe.weight.dtype))  # 1 x d x H x W
        qh, pe_q = q.reshape(b * n, d, h, w), pe
        if s > 1:
            qh, pe_q = qh[..., ::s, ::s], pe[..., ::s, ::s]
        qh = qh * (d**-0.5)
        pad = WINDOW // 2
        k_pad = _window_pad(k.reshape(b * n, d, h, w), pad)
        v_pad = _window_pad(v.reshape(b * n, d, h, w), pad)
        pe_pad = _window_pad(pe, pad)
        windows = [
            (slice(dy, dy + s * (ho - 1) + 1, s), slice(dx, dx + s * (wo - 1) + 1, s))
            for dy in range(WINDOW)
            for dx in range(WINDOW)
        ]
        # logit_j = q . (k_j + pe_center - pe_j): the positional term is relative to the window centre
        logits = torch.stack(
            [(qh * k_pad[..., ys, xs]).sum(1) + (qh * (pe_q - pe_pad[..., ys, xs])).sum(1) for ys, xs in windows], 1
        )
        attn = self.softmax(logits)  # BN x 49 x Ho x Wo
        out_att = sum(attn[:, j : j + 1] * v_pad[..., ys, xs] for j, (ys, xs) in enumerate(windows))
        out_att = out_att.reshape(b, self.c2, ho, wo)

        # convolution path: heads x {q,k,v} -> 9 maps per head channel -> shift-initialised grouped conv
        stacked = torch.cat([t.reshape(b, n, d, h * w) for t in (q, k, v)], 1)  # B x 3N x d x HW
        taps_c = SHIFT_KERNEL * SHIFT_KERNEL
        shifted = self.fc(stacked).permute(0, 2, 1, 3).reshape(b, d * taps_c, h, w)
        out_conv = self.dep_conv(shifted)
        return self.rate1 * out_att + self.rate2 * out_conv


class ACmix(nn.Module):
    """Conv-slot ACmix: ``ACmixMixer`` + BatchNorm + SiLU with Ultralytics ``Conv(c1, c2, k, s)``'s arguments.

    YAML: ``[-1, 1, ACmix, [c2, k, s]]``; k is accepted for the Conv convention and ignored (the window is 7,
    the conv path 3x3). c2 must be divisible by 4 (heads).
    """

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, heads: int = 4) -> None:
        super().__init__()
        self.mixer = ACmixMixer(c1, c2, s, heads)
        self.bn = nn.BatchNorm2d(c2)
        self.act = Conv.default_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return SiLU(BN(ACmix(x))), B x c2 x ceil(H/s) x ceil(W/s)."""
        return self.act(self.bn(self.mixer(x)))


class ACmixBottleneck(Bottleneck):
    """Block-slot ACmix: Ultralytics' ``Bottleneck`` with its second 3x3 conv replaced by ACmix + BN + SiLU.

    c -> int(c*e) (3x3 Conv) -> c (ACmix), residual when ``shortcut``; as in ACmix's ResNet, where it replaces
    the bottleneck's 3x3 conv. Requires c divisible by 4. The forward is Ultralytics' own.
    """

    def __init__(self, c: int, shortcut: bool = True, e: float = 0.5, heads: int = 4) -> None:
        nn.Module.__init__(self)
        c_ = int(c * e)
        self.cv1 = Conv(c, c_, 3, 1)
        self.cv2 = ACmix(c_, c, 3, 1, heads)
        self.add = shortcut
