"""CIFAR ResNets (resnet8 ... resnet110, resnet8x4, resnet32x4).

Reproduces the 3-stage CIFAR ResNet of He et al., "Deep Residual Learning for Image Recognition"
(CVPR 2016, section 4.2) as defined in RepDistiller (``models/resnet.py``) and mdistiller
(``mdistiller/models/cifar/resnet.py``). Module names and shapes match theirs, so the teacher
checkpoints they released (``ckpt_epoch_240.pth``) load unchanged. The only departure is the
final pooling: adaptive average pooling instead of a fixed 8x8 window, so inputs other than
32x32 also run (identical result at 32x32).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.models.features import ModelOutput, make_features, run_stage_with_preact


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        preact = self.bn2(self.conv2(out)) + shortcut
        return F.relu(preact), preact

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


class CifarResNet(nn.Module):
    """Stem (3x3 conv) + three stages of BasicBlocks + global pooling + linear classifier.

    ``depth`` = 6n + 2 gives n blocks per stage; ``widths`` = [stem, stage1, stage2, stage3].
    """

    def __init__(self, depth: int, widths: list[int], num_classes: int) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (8, 14, 20, ...), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.stage_channels = list(widths)
        self.in_planes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_stage(widths[1], blocks_per_stage, stride=1)
        self.layer2 = self._make_stage(widths[2], blocks_per_stage, stride=2)
        self.layer3 = self._make_stage(widths[3], blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        self._init_weights()

    def _make_stage(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        blocks = [BasicBlock(self.in_planes, planes, stride, downsample)]
        blocks += [BasicBlock(planes, planes) for _ in range(1, num_blocks)]
        self.in_planes = planes
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> ModelOutput:
        stem = self.relu(self.bn1(self.conv1(x)))
        f1, f1_pre = run_stage_with_preact(self.layer1, stem)
        f2, f2_pre = run_stage_with_preact(self.layer2, f1)
        f3, f3_pre = run_stage_with_preact(self.layer3, f2)
        pooled = torch.flatten(self.avgpool(f3), 1)
        logits = self.fc(pooled)
        return logits, make_features([stem, f1, f2, f3], [stem, f1_pre, f2_pre, f3_pre], pooled)


_BASE_WIDTHS = [16, 16, 32, 64]
_X4_WIDTHS = [32, 64, 128, 256]


def resnet8(num_classes: int) -> CifarResNet:
    return CifarResNet(8, _BASE_WIDTHS, num_classes)


def resnet14(num_classes: int) -> CifarResNet:
    return CifarResNet(14, _BASE_WIDTHS, num_classes)


def resnet20(num_classes: int) -> CifarResNet:
    return CifarResNet(20, _BASE_WIDTHS, num_classes)


def resnet32(num_classes: int) -> CifarResNet:
    return CifarResNet(32, _BASE_WIDTHS, num_classes)


def resnet44(num_classes: int) -> CifarResNet:
    return CifarResNet(44, _BASE_WIDTHS, num_classes)


def resnet56(num_classes: int) -> CifarResNet:
    return CifarResNet(56, _BASE_WIDTHS, num_classes)


def resnet110(num_classes: int) -> CifarResNet:
    return CifarResNet(110, _BASE_WIDTHS, num_classes)


def resnet8x4(num_classes: int) -> CifarResNet:
    return CifarResNet(8, _X4_WIDTHS, num_classes)


def resnet32x4(num_classes: int) -> CifarResNet:
    return CifarResNet(32, _X4_WIDTHS, num_classes)
