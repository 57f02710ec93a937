"""MobileNetV2 for CIFAR (width 0.5, expansion 6): RepDistiller's ``mobile_half``.

Reproduces Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (CVPR 2018)
in the CIFAR form of RepDistiller (``models/mobilenetv2.py``, from "Knowledge Distillation via
Route Constrained Optimization") and mdistiller (``mdistiller/models/cifar/mobilenetv2.py``):
stride-2 stem ``conv1``, seven stages in ``blocks`` (a ModuleList of Sequentials of inverted
residuals, each holding its layers in ``conv``), ``conv2`` to 1280 channels and
``classifier.0``. Names and shapes match the reference, so its checkpoints load unchanged.
Pooling is adaptive instead of a window sized from a fixed input size.

The stage outputs are linear bottlenecks (no final ReLU), so ``preact_feats`` equals ``feats``
(mdistiller's MobileNetV2 returns no ``preact_feats``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from common.models.features import ModelOutput, make_features

# (expansion t, output channels c, repeats n, first stride s) at width 1; t=None means "T".
_STAGE_SETTINGS: list[tuple[int | None, int, int, int]] = [
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
]
# Stages whose outputs are reported as features (after the stem): 24, 32, 96 and 320 channels.
_FEATURE_STAGES = (1, 2, 4, 6)


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Pointwise expand, depthwise 3x3, linear pointwise project; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class CifarMobileNetV2(nn.Module):
    """MobileNetV2 with expansion ``expansion`` and width multiplier ``width_mult``."""

    def __init__(self, expansion: int, width_mult: float, num_classes: int) -> None:
        super().__init__()
        in_channels = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(3, in_channels, kernel_size=3, stride=2)
        self.blocks = nn.ModuleList()
        for t, c, n, s in _STAGE_SETTINGS:
            out_channels = int(c * width_mult)
            layers = []
            for index in range(n):
                stride = s if index == 0 else 1
                layers.append(InvertedResidual(in_channels, out_channels, stride, t or expansion))
                in_channels = out_channels
            self.blocks.append(nn.Sequential(*layers))
        last_channels = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(in_channels, last_channels, kernel_size=1, stride=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last_channels, num_classes))
        self.stage_channels = [int(32 * width_mult)] + [
            int(_STAGE_SETTINGS[i][1] * width_mult) for i in _FEATURE_STAGES
        ]
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> ModelOutput:
        out = self.conv1(x)
        feats = [out]
        for index, stage in enumerate(self.blocks):
            out = stage(out)
            if index in _FEATURE_STAGES:
                feats.append(out)
        pooled = torch.flatten(self.avgpool(self.conv2(out)), 1)
        logits = self.classifier(pooled)
        return logits, make_features(feats, list(feats), pooled)


def MobileNetV2(num_classes: int) -> CifarMobileNetV2:  # noqa: N802 (reference name)
    """RepDistiller's ``mobile_half``: expansion 6, width 0.5."""
    return CifarMobileNetV2(expansion=6, width_mult=0.5, num_classes=num_classes)
