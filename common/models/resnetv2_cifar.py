"""CIFAR variants of ResNet18/34/50 (four stages, 3x3 stem, no max-pool).

Reproduces ``ResNet18``/``ResNet34``/``ResNet50`` of RepDistiller (``models/resnetv2.py``) and
mdistiller (``mdistiller/models/cifar/resnetv2.py``), i.e. the ImageNet ResNets of He et al.
(CVPR 2016) adapted to 32x32 inputs as in kuangliu/pytorch-cifar. Module names (``shortcut``,
``linear``) and shapes match the reference so its released checkpoints load unchanged.

``get_stage_channels()`` lists the channels of every ``feats`` entry (stem included), e.g.
``[64, 256, 512, 1024, 2048]`` for ResNet50; mdistiller returns the four stage widths only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.models.features import ModelOutput, make_features, run_stage_with_preact


def _projection(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """1x1 conv + BN shortcut when the shape changes, else an empty (identity) Sequential."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a projection shortcut where needed."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(in_planes, planes, stride)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        preact = self.bn2(self.conv2(out)) + self.shortcut(x)
        return F.relu(preact), preact

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a projection shortcut where needed."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _projection(in_planes, out_planes, stride)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        preact = self.bn3(self.conv3(out)) + self.shortcut(x)
        return F.relu(preact), preact

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


class CifarResNetV2(nn.Module):
    """3x3 stem (64 channels) + four stages (64, 128, 256, 512 x expansion) + linear head."""

    def __init__(
        self, block: type[BasicBlock | Bottleneck], num_blocks: list[int], num_classes: int
    ) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_stage(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_stage(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_stage(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_stage(block, 512, num_blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512 * block.expansion, num_classes)
        self.stage_channels = [64] + [w * block.expansion for w in (64, 128, 256, 512)]
        self._init_weights()

    def _make_stage(
        self, block: type[BasicBlock | Bottleneck], planes: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        blocks = []
        for index in range(num_blocks):
            blocks.append(block(self.in_planes, planes, stride if index == 0 else 1))
            self.in_planes = planes * block.expansion
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
        stem = F.relu(self.bn1(self.conv1(x)))
        f1, f1_pre = run_stage_with_preact(self.layer1, stem)
        f2, f2_pre = run_stage_with_preact(self.layer2, f1)
        f3, f3_pre = run_stage_with_preact(self.layer3, f2)
        f4, f4_pre = run_stage_with_preact(self.layer4, f3)
        pooled = torch.flatten(self.avgpool(f4), 1)
        logits = self.linear(pooled)
        feats = [stem, f1, f2, f3, f4]
        return logits, make_features(feats, [stem, f1_pre, f2_pre, f3_pre, f4_pre], pooled)


def ResNet18(num_classes: int) -> CifarResNetV2:  # noqa: N802 (reference name)
    return CifarResNetV2(BasicBlock, [2, 2, 2, 2], num_classes)


def ResNet34(num_classes: int) -> CifarResNetV2:  # noqa: N802 (reference name)
    return CifarResNetV2(BasicBlock, [3, 4, 6, 3], num_classes)


def ResNet50(num_classes: int) -> CifarResNetV2:  # noqa: N802 (reference name)
    return CifarResNetV2(Bottleneck, [3, 4, 6, 3], num_classes)
