"""Wide residual networks for CIFAR (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2).

Reproduces WRN-d-k of Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016), as defined
in RepDistiller (``models/wrn.py``) and mdistiller (``mdistiller/models/cifar/wrn.py``):
pre-activation blocks, ``blockN.layer.M`` / ``convShortcut`` module names, the final ``bn1`` after
the last stage. Module names and shapes match, so the released checkpoints load unchanged.
Dropout (0 in every reference model) is left out; pooling is adaptive instead of 8x8.

Features follow mdistiller: ``feats`` are the raw (pre-activation) stage outputs; the
``preact_feats`` of stage i are those outputs after the BN that opens the next stage (for the
last stage, the final ``bn1``). Here they are taken from the forward pass itself rather than by
running the BN a second time, so BN running statistics are updated once per batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.models.features import ModelOutput, make_features


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with an identity or 1x1 ``convShortcut``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.convShortcut: nn.Conv2d | None = None
        if in_planes != out_planes:
            self.convShortcut = nn.Conv2d(
                in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False
            )

    def forward_with_entry_bn(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return the block output and ``bn1(x)``, the BN that opens the block."""
        entry_bn = self.bn1(x)
        activated = F.relu(entry_bn)
        out = self.conv2(F.relu(self.bn2(self.conv1(activated))))
        shortcut = x if self.convShortcut is None else self.convShortcut(activated)
        return shortcut + out, entry_bn

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_entry_bn(x)[0]


class NetworkBlock(nn.Module):
    """One stage: ``num_layers`` wide blocks, the first one strided (kept as ``self.layer``)."""

    def __init__(self, num_layers: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        blocks = [WideBasicBlock(in_planes, out_planes, stride)]
        blocks += [WideBasicBlock(out_planes, out_planes, 1) for _ in range(1, num_layers)]
        self.layer = nn.Sequential(*blocks)

    def forward_with_entry_bn(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return the stage output and the first block's ``bn1`` applied to the stage input."""
        first, *rest = list(self.layer)
        out, entry_bn = first.forward_with_entry_bn(x)
        for block in rest:
            out = block(out)
        return out, entry_bn

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """3x3 stem + three wide stages (16k, 32k, 64k channels) + BN-ReLU + linear head."""

    def __init__(self, depth: int, widen_factor: int, num_classes: int) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4 (16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stage_channels = channels
        self.conv1 = nn.Conv2d(3, channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], stride=1)
        self.block2 = NetworkBlock(n, channels[1], channels[2], stride=2)
        self.block3 = NetworkBlock(n, channels[2], channels[3], stride=2)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[3], num_classes)
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
                nn.init.zeros_(module.bias)

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> ModelOutput:
        f0 = self.conv1(x)
        f1 = self.block1(f0)
        f2, f1_pre = self.block2.forward_with_entry_bn(f1)
        f3, f2_pre = self.block3.forward_with_entry_bn(f2)
        f3_pre = self.bn1(f3)
        pooled = torch.flatten(self.avgpool(F.relu(f3_pre)), 1)
        logits = self.fc(pooled)
        return logits, make_features([f0, f1, f2, f3], [f0, f1_pre, f2_pre, f3_pre], pooled)


def wrn_16_1(num_classes: int) -> WideResNet:
    return WideResNet(16, 1, num_classes)


def wrn_16_2(num_classes: int) -> WideResNet:
    return WideResNet(16, 2, num_classes)


def wrn_40_1(num_classes: int) -> WideResNet:
    return WideResNet(40, 1, num_classes)


def wrn_40_2(num_classes: int) -> WideResNet:
    return WideResNet(40, 2, num_classes)
