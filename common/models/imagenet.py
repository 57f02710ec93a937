"""ImageNet models: torchvision ResNet18/34/50 with features, and MobileNetV1.

``resnet18``/``resnet34``/``resnet50`` subclass ``torchvision.models.ResNet`` (He et al., CVPR
2016) without adding or renaming any module, so their state_dict keys are exactly torchvision's
and torchvision weight files (``resnet50-0676ba61.pth`` ...) load unchanged. Only ``forward``
changes, to also return features laid out as mdistiller's ImageNet ResNet
(``mdistiller/models/imagenet/resnet.py``): ``feats`` = ReLU of [stem BN output, stage 1..4],
``preact_feats`` = the stage outputs before their final ReLU. The stem entry of
``preact_feats`` is the activated stem, as in every CIFAR model and as mdistiller effectively
returns (its pre-ReLU stem tensor is overwritten by an in-place ReLU). The logits are
torchvision's.

``MobileNetV1`` reproduces Howard et al., "MobileNets" (arXiv:1704.04861) as in mdistiller's
ImageNet zoo (``mdistiller/models/imagenet/mobilenetv1.py``): the 14 conv blocks in ``model``,
the head in ``fc``; features are the outputs of blocks 3, 5, 11 and 13 (no stem entry, as in
mdistiller), ``preact_feats`` being those before their last ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from common.models.features import ModelOutput, make_features


def _torchvision_block_with_preact(
    block: BasicBlock | Bottleneck, x: Tensor
) -> tuple[Tensor, Tensor]:
    """torchvision's block forward, also returning the sum before the final ReLU."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        preact = block.bn3(block.conv3(out)) + identity
    else:
        preact = block.bn2(block.conv2(out)) + identity
    return F.relu(preact), preact


def _run_torchvision_stage(stage: nn.Sequential, x: Tensor) -> tuple[Tensor, Tensor]:
    *leading, last = list(stage)
    for block in leading:
        x = block(x)
    return _torchvision_block_with_preact(last, x)


class ImageNetResNet(ResNet):
    """torchvision ResNet whose forward returns ``(logits, features)``; keys unchanged."""

    def get_stage_channels(self) -> list[int]:
        expansion = 4 if isinstance(self.layer1[0], Bottleneck) else 1
        return [64] + [w * expansion for w in (64, 128, 256, 512)]

    def forward(self, x: Tensor) -> ModelOutput:
        stem = self.relu(self.bn1(self.conv1(x)))
        f1, f1_pre = _run_torchvision_stage(self.layer1, self.maxpool(stem))
        f2, f2_pre = _run_torchvision_stage(self.layer2, f1)
        f3, f3_pre = _run_torchvision_stage(self.layer3, f2)
        f4, f4_pre = _run_torchvision_stage(self.layer4, f3)
        pooled = torch.flatten(self.avgpool(f4), 1)
        logits = self.fc(pooled)
        feats = [stem, f1, f2, f3, f4]
        return logits, make_features(feats, [stem, f1_pre, f2_pre, f3_pre, f4_pre], pooled)


def resnet18(num_classes: int) -> ImageNetResNet:
    return ImageNetResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def resnet34(num_classes: int) -> ImageNetResNet:
    return ImageNetResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes)


def resnet50(num_classes: int) -> ImageNetResNet:
    return ImageNetResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _depthwise_separable(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


# (output channels, stride) of the 13 depthwise-separable blocks after the stem.
_MOBILENETV1_BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]
# Indices in ``model`` whose outputs are the four feature stages (128, 256, 512, 1024 channels).
_MOBILENETV1_FEATURE_BLOCKS = (3, 5, 11, 13)


class MobileNetV1(nn.Module):
    """Stride-2 3x3 stem + 13 depthwise-separable blocks + global pooling + ``fc``."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers = [_conv_bn_relu(3, 32, stride=2)]
        in_channels = 32
        for out_channels, stride in _MOBILENETV1_BLOCKS:
            layers.append(_depthwise_separable(in_channels, out_channels, stride))
            in_channels = out_channels
        self.model = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)

    def get_stage_channels(self) -> list[int]:
        return [128, 256, 512, 1024]

    def forward(self, x: Tensor) -> ModelOutput:
        feats: list[Tensor] = []
        preact_feats: list[Tensor] = []
        out = x
        for index, block in enumerate(self.model):
            if index in _MOBILENETV1_FEATURE_BLOCKS:
                preact = block[:-1](out)
                out = F.relu(preact)
                preact_feats.append(preact)
                feats.append(out)
            else:
                out = block(out)
        pooled = torch.flatten(self.avgpool(out), 1)
        logits = self.fc(pooled)
        return logits, make_features(feats, preact_feats, pooled)
