"""ShuffleNet V2 for CIFAR (``ShuffleV2``, net size 1).

Reproduces Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design" (ECCV 2018) in the CIFAR form of RepDistiller (``models/ShuffleNetv2.py``) and mdistiller
(``mdistiller/models/cifar/ShuffleNetv2.py``): 1x1 stem to 24 channels, three stages (116, 232,
464 channels), each a down-sampling block followed by 3, 7, 3 split-shuffle blocks, a 1x1
``conv2`` to 1024 channels and a ``linear`` head. Names and shapes match the reference so its
checkpoints load unchanged. Pooling is adaptive (4x4 fixed in the reference).

As in mdistiller, a stage's ``preact_feats`` entry is the concatenation before the ReLU and
before the final channel shuffle of its last block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.models.features import ModelOutput, make_features, run_stage_with_preact
from common.models.shufflenetv1 import channel_shuffle


def _depthwise3x3(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False)


def _pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class SplitShuffleBlock(nn.Module):
    """Split channels in half; transform the second half (1x1, dw 3x3, 1x1); concat; shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = _pointwise(half, half)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = _depthwise3x3(half, stride=1)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = _pointwise(half, half)
        self.bn3 = nn.BatchNorm2d(half)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        half = x.shape[1] // 2
        kept, transformed = x[:, :half], x[:, half:]
        out = F.relu(self.bn1(self.conv1(transformed)))
        out = self.bn2(self.conv2(out))
        branch_preact = self.bn3(self.conv3(out))
        out = torch.cat([kept, F.relu(branch_preact)], 1)
        return channel_shuffle(out, 2), torch.cat([kept, branch_preact], 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


class DownBlock(nn.Module):
    """Stride-2 block: two branches on the full input, each giving half the output channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        # left branch: dw 3x3 (stride 2), 1x1
        self.conv1 = _depthwise3x3(in_channels, stride=2)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = _pointwise(in_channels, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        # right branch: 1x1, dw 3x3 (stride 2), 1x1
        self.conv3 = _pointwise(in_channels, mid)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = _depthwise3x3(mid, stride=2)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = _pointwise(mid, mid)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class CifarShuffleNetV2(nn.Module):
    """1x1 stem + three (DownBlock + split-shuffle blocks) stages + 1x1 conv + ``linear``."""

    def __init__(self, out_channels: list[int], num_blocks: list[int], num_classes: int) -> None:
        super().__init__()
        self.in_channels = 24
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.layer1 = self._make_stage(out_channels[0], num_blocks[0])
        self.layer2 = self._make_stage(out_channels[1], num_blocks[1])
        self.layer3 = self._make_stage(out_channels[2], num_blocks[2])
        self.conv2 = _pointwise(out_channels[2], out_channels[3])
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_channels[3], num_classes)
        self.stage_channels = [24, *out_channels[:3]]

    def _make_stage(self, out_channels: int, num_blocks: int) -> nn.Sequential:
        blocks: list[nn.Module] = [DownBlock(self.in_channels, out_channels)]
        blocks += [SplitShuffleBlock(out_channels) for _ in range(num_blocks)]
        self.in_channels = out_channels
        return nn.Sequential(*blocks)

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> ModelOutput:
        stem = F.relu(self.bn1(self.conv1(x)))
        f1, f1_pre = run_stage_with_preact(self.layer1, stem)
        f2, f2_pre = run_stage_with_preact(self.layer2, f1)
        f3, f3_pre = run_stage_with_preact(self.layer3, f2)
        head = F.relu(self.bn2(self.conv2(f3)))
        pooled = torch.flatten(self.avgpool(head), 1)
        logits = self.linear(pooled)
        return logits, make_features([stem, f1, f2, f3], [stem, f1_pre, f2_pre, f3_pre], pooled)


def ShuffleV2(num_classes: int) -> CifarShuffleNetV2:  # noqa: N802 (reference name)
    """ShuffleNet V2 1x: stages of 116, 232, 464 channels (3, 7, 3 blocks), 1024-d head."""
    return CifarShuffleNetV2([116, 232, 464, 1024], [3, 7, 3], num_classes=num_classes)
