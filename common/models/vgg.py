"""VGG with batch norm for CIFAR (vgg8, vgg11, vgg13, vgg16, vgg19).

Reproduces Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (ICLR 2015) in the CIFAR form of RepDistiller (``models/vgg.py``, the ``*_bn``
builders) and mdistiller (``mdistiller/models/cifar/vgg.py``): five conv blocks ``block0`` ...
``block4`` (conv3x3 with bias, BN, ReLU; the last ReLU of each block applied outside it), max
pooling between blocks, global average pooling and a single ``classifier`` Linear(512, classes).
Names and shapes match the reference, so its released checkpoints load unchanged.

As in the reference, the max-pool between block3 and block4 runs only for large inputs (the
reference tests ``h == 64``; here ``h >= 64``), so 32x32 and 64x64 both reach block4 at 4x4.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.models.features import ModelOutput, make_features

# Output channels of each conv, per block (configurations S, A, B, D, E of the reference).
VGG_CONFIGS: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [
        [64, 64],
        [128, 128],
        [256, 256, 256, 256],
        [512, 512, 512, 512],
        [512, 512, 512, 512],
    ],
}


def _conv_block(channels: list[int], in_channels: int) -> nn.Sequential:
    """[conv3x3, BN, ReLU] per entry, without the final ReLU (so block output is pre-activation)."""
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers[:-1])


class CifarVGG(nn.Module):
    """Five BN conv blocks separated by max-pooling, then global pooling and one Linear."""

    def __init__(self, config: list[list[int]], num_classes: int) -> None:
        super().__init__()
        in_channels = [3] + [block[-1] for block in config[:-1]]
        self.block0 = _conv_block(config[0], in_channels[0])
        self.block1 = _conv_block(config[1], in_channels[1])
        self.block2 = _conv_block(config[2], in_channels[2])
        self.block3 = _conv_block(config[3], in_channels[3])
        self.block4 = _conv_block(config[4], in_channels[4])
        self.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(512, num_classes)
        self.stage_channels = [block[-1] for block in config]
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> ModelOutput:
        height = x.shape[2]
        f0 = F.relu(self.block0(x))
        f1_pre = self.block1(self.pool0(f0))
        f1 = F.relu(f1_pre)
        f2_pre = self.block2(self.pool1(f1))
        f2 = F.relu(f2_pre)
        f3_pre = self.block3(self.pool2(f2))
        f3 = F.relu(f3_pre)
        block4_input = self.pool3(f3) if height >= 64 else f3
        f4_pre = self.block4(block4_input)
        f4 = F.relu(f4_pre)
        pooled = torch.flatten(self.pool4(f4), 1)
        logits = self.classifier(pooled)
        feats = [f0, f1, f2, f3, f4]
        return logits, make_features(feats, [f0, f1_pre, f2_pre, f3_pre, f4_pre], pooled)


def vgg8(num_classes: int) -> CifarVGG:
    return CifarVGG(VGG_CONFIGS["vgg8"], num_classes)


def vgg11(num_classes: int) -> CifarVGG:
    return CifarVGG(VGG_CONFIGS["vgg11"], num_classes)


def vgg13(num_classes: int) -> CifarVGG:
    return CifarVGG(VGG_CONFIGS["vgg13"], num_classes)


def vgg16(num_classes: int) -> CifarVGG:
    return CifarVGG(VGG_CONFIGS["vgg16"], num_classes)


def vgg19(num_classes: int) -> CifarVGG:
    return CifarVGG(VGG_CONFIGS["vgg19"], num_classes)
