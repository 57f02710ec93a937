"""FitNet's regressor (Romero et al. 2015, Sec. 2.2, Eq. 3): maps the student's hint-layer map
onto the teacher's guided-layer shape, built as mdistiller's `ConvReg`.

The paper's convolutional regressor r(v_g; W_r) has a kernel chosen so that the student's map
lands on the teacher's spatial size; mdistiller (and RepDistiller) pick it by the heights:

- s_H == 2 t_H: Conv2d 3x3, stride 2, padding 1;
- 2 s_H == t_H: ConvTranspose2d 4x4, stride 2, padding 1;
- s_H >= t_H:  unpadded Conv2d of kernel (1 + s_H - t_H) x (1 + s_W - t_W);

then BatchNorm and (by default) ReLU. Any other pair cannot be matched and raises ConfigError.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from common.errors import ConfigError


class ConvReg(nn.Module):
    """Student (C_s, H_s, W_s) -> teacher (C_t, H_t, W_t). Shapes may carry a leading batch
    dimension (as `feature_shapes` does not, and mdistiller's shapes do); only the last three
    entries are used."""

    def __init__(
        self, s_shape: Sequence[int], t_shape: Sequence[int], use_relu: bool = True
    ) -> None:
        super().__init__()
        if len(s_shape) < 3 or len(t_shape) < 3:
            raise ValueError(f"ConvReg needs (C, H, W) shapes, got {s_shape} and {t_shape}")
        s_c, s_h, s_w = (int(v) for v in s_shape[-3:])
        t_c, t_h, t_w = (int(v) for v in t_shape[-3:])
        self.conv: nn.Module
        if s_h == 2 * t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
        elif 2 * s_h == t_h:
            self.conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
        elif s_h >= t_h and s_w >= t_w:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
        else:
            raise ConfigError(
                f"FitNet cannot map the student's hint map {(s_c, s_h, s_w)} onto the teacher's "
                f"{(t_c, t_h, t_w)}: the student's map must be at least the teacher's size, or "
                "exactly half of it; choose another method.hint_layer"
            )
        self.bn = nn.BatchNorm2d(t_c)
        self.relu = nn.ReLU() if use_relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))
