"""Per-channel mean/std used to normalise each data set (the values the papers' code uses).

CIFAR values are the commonly used training-set statistics (e.g. the CRD / RepDistiller code
base); Tiny-ImageNet and ImageNet use the torchvision ImageNet statistics.
"""

from __future__ import annotations

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

IMAGENET_STATS: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR10_STATS: Stats = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS: Stats = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))

NORMALISATION: dict[str, Stats] = {
    "cifar10": CIFAR10_STATS,
    "cifar100": CIFAR100_STATS,
    "tiny_imagenet": IMAGENET_STATS,
    "imagenet": IMAGENET_STATS,
    "imagefolder": IMAGENET_STATS,
}
