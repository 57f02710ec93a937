"""ShuffleNet V1 for CIFAR (``ShuffleV1``, 3 groups).

Reproduces Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices" (CVPR 2018) in the CIFAR form of RepDistiller (``models/ShuffleNetv1.py``) and
mdistiller (``mdistiller/models/cifar/ShuffleNetv1.py``): 1x1 stem to 24 channels, three stages
of grouped bottlenecks (240, 480, 960 channels; 4, 8, 4 blocks), ``linear`` head. Names and
shapes match the reference so its checkpoints load unchanged. Pooling is adaptive (4x4 fixed in
the reference, identical at 32x32).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.models.features import ModelOutput, make_features, run_stage_with_preact


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """[N, C, H, W] -> [N, g, C/g, H, W] -> transpose groups -> [N, C, H, W]."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleBottleneck(nn.Module):
    """Grouped 1x1, channel shuffle, depthwise 3x3, grouped 1x1.

    Stride 2 concatenates an average-pooled shortcut (so the block adds ``in_planes`` channels to
    its ``out_planes``); stride 1 adds the identity.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int) -> None:
        super().__init__()
        self.stride = stride
        mid_planes = out_planes // 4
        # The first block of the network sees the 24-channel stem: not grouped (as the reference).
        self.first_groups = 1 if in_planes == 24 else groups
        self.conv1 = nn.Conv2d(
            in_planes, mid_planes, kernel_size=1, groups=self.first_groups, bias=False
        )
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.conv2 = nn.Conv2d(
            mid_planes, mid_planes, 3, stride=stride, padding=1, groups=mid_planes, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 2:
            self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1))

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = self.shortcut(x)
        preact = torch.cat([out, shortcut], 1) if self.stride == 2 else out + shortcut
        return F.relu(preact), preact

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


class CifarShuffleNetV1(nn.Module):
    """1x1 stem + three ShuffleNet stages + global pooling + ``linear``."""

    def __init__(
        self, out_planes: list[int], num_blocks: list[int], groups: int, num_classes: int
    ) -> None:
        super().__init__()
        self.in_planes = 24
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.layer1 = self._make_stage(out_planes[0], num_blocks[0], groups)
        self.layer2 = self._make_stage(out_planes[1], num_blocks[1], groups)
        self.layer3 = self._make_stage(out_planes[2], num_blocks[2], groups)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_planes[2], num_classes)
        self.stage_channels = [24, *out_planes]

    def _make_stage(self, out_planes: int, num_blocks: int, groups: int) -> nn.Sequential:
        blocks = []
        for index in range(num_blocks):
            stride = 2 if index == 0 else 1
            # The strided block concatenates its input, so its branch produces the remainder.
            branch_planes = out_planes - self.in_planes if index == 0 else out_planes
            blocks.append(ShuffleBottleneck(self.in_planes, branch_planes, stride, groups))
            self.in_planes = out_planes
        return nn.Sequential(*blocks)

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> ModelOutput:
        stem = F.relu(self.bn1(self.conv1(x)))
        f1, f1_pre = run_stage_with_preact(self.layer1, stem)
        f2, f2_pre = run_stage_with_preact(self.layer2, f1)
        f3, f3_pre = run_stage_with_preact(self.layer3, f2)
        pooled = torch.flatten(self.avgpool(f3), 1)
        logits = self.linear(pooled)
        return logits, make_features([stem, f1, f2, f3], [stem, f1_pre, f2_pre, f3_pre], pooled)


def ShuffleV1(num_classes: int) -> CifarShuffleNetV1:  # noqa: N802 (reference name)
    """ShuffleNet V1 with 3 groups: stages of 240, 480, 960 channels and 4, 8, 4 blocks."""
    return CifarShuffleNetV1([240, 480, 960], [4, 8, 4], groups=3, num_classes=num_classes)
