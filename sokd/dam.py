"""DAM, the distinctive-area detection module (SoKD Sec. 3.2, Eqs. 11-13).

A head shared by student and teacher maps, three branches of conv 3x3 (C -> C), ReLU, conv 1x1:
a heatmap (sigmoid), a box size (w, h) and an offset (dx, dy), CenterNet-style, in map pixels.

- Decoding (Eq. 11) runs on the STUDENT's outputs (`decode_boxes`): peaks are the positions
  equal to their 3x3 max-pool, the top N = 8 over channels x positions are kept, a box is
  (peak + offset) +- size / 2, truncated to integers, clamped to the map, inclusive; the mask
  is the union of the boxes (binary; the public code sums overlapping boxes). Not
  differentiable: boxes only select where L_DA looks.
- L_D (Eq. 12): the MSE between the head's outputs on the student's adapted map and on the
  augmented teacher map, the head's only signal (the teacher side is not detached, so the head
  learns from both sides). A head whose outputs do not depend on its input scores zero, and
  the size and offset branches' last biases cancel between the two sides (their gradient is
  exactly zero): L_D never asks for larger boxes (sokd/README.md, "DAM: what the paper
  specifies and what it leaves open").
- L_DA (Eq. 13): the mean over all B x C x H x W of (M Phi_s(F_s) - M s(F_t))^2, M the mask
  (not normalised by its area, as the public code).

Heatmap channels: the paper does not say; one by default (`heat_channels`); the public code's
CenterNet copy has 100. It ends each branch with a ReLU (heat in [0.5, 1), sizes >= 0); here
the heatmap has a sigmoid and the size and offset no activation (METHODS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _branch(channels: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, out, 1),
    )


class DAMHead(nn.Module):
    """The three-branch head on a (B, C, H, W) map: (heatmap, size, offset)."""

    def __init__(self, channels: int, heat_channels: int = 1) -> None:
        super().__init__()
        self.heat = _branch(channels, heat_channels)
        self.size = _branch(channels, 2)
        self.offset = _branch(channels, 2)
        # CenterNet's initialisation (the head the public code copies): small weights, and a
        # heatmap prior of 0.1 (bias -2.19), so the head starts near constant and L_D's
        # gradients small; the default init makes alpha = beta = 1000 diverge at once.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
                nn.init.zeros_(module.bias)
        nn.init.constant_(self.heat[-1].bias, -2.19)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return torch.sigmoid(self.heat(x)), self.size(x), self.offset(x)


@torch.no_grad()
def decode_boxes(
    heat: Tensor, size: Tensor, offset: Tensor, top_n: int = 8, min_box: float = 0.0
) -> Tensor:
    """(B, N, 4) boxes [y0, x0, y1, x1] in map pixels (inclusive, clamped; float tensor) of the
    top-N heatmap peaks; `size` is (w, h), `offset` (dx, dy) per position. `min_box` > 0 floors
    each box's width and height at that fraction of the map's (not in the paper: an option
    for what it leaves open, see sokd/README.md, "DAM")."""
    batch, channels, height, width = heat.shape
    peaks = heat * (heat == F.max_pool2d(heat, 3, stride=1, padding=1)).to(heat.dtype)
    n = min(top_n, channels * height * width)
    index = peaks.flatten(1).topk(n, dim=1).indices  # (B, N) over channels x positions
    position = index % (height * width)
    y, x = (position // width).to(heat.dtype), (position % width).to(heat.dtype)

    def at(maps: Tensor, channel: int) -> Tensor:
        return maps[:, channel].flatten(1).gather(1, position)

    cx, cy = x + at(offset, 0), y + at(offset, 1)
    half_w, half_h = at(size, 0) / 2, at(size, 1) / 2
    if min_box > 0:
        half_w = half_w.clamp_min(min_box * width / 2)
        half_h = half_h.clamp_min(min_box * height / 2)
    boxes = torch.stack([cy - half_h, cx - half_w, cy + half_h, cx + half_w], dim=2).trunc()
    limits = boxes.new_empty(4)  # (y, x, y, x) maxima, filled on the device (no host copy)
    limits[0::2].fill_(height - 1)
    limits[1::2].fill_(width - 1)
    return torch.minimum(boxes.clamp_min(0), limits)


@torch.no_grad()
def box_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """(B, 1, H, W) binary mask: the union of each sample's boxes (inclusive)."""
    rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype).view(1, 1, -1, 1)
    cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype).view(1, 1, 1, -1)
    y0, x0, y1, x1 = (boxes[..., k].unsqueeze(-1).unsqueeze(-1) for k in range(4))
    inside = (rows >= y0) & (rows <= y1) & (cols >= x0) & (cols <= x1)  # (B, N, H, W)
    return inside.any(dim=1, keepdim=True).to(boxes.dtype)


def head_loss(student: tuple[Tensor, ...], teacher: tuple[Tensor, ...]) -> Tensor:
    """Eq. 12: the summed MSE of the head's three outputs, student vs augmented teacher."""
    return sum(F.mse_loss(s, t) for s, t in zip(student, teacher))


def masked_loss(student_map: Tensor, teacher_map: Tensor, mask: Tensor) -> Tensor:
    """Eq. 13: mean over B x C x H x W of (M Phi_s(F_s) - M s(F_t))^2."""
    return ((student_map - teacher_map) * mask).pow(2).mean()
