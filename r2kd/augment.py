"""The augmented copy of each batch (Sec. IV-D): R2KD passes a second, augmented version of the
clean batch through student, teacher and pruned teacher and adds value + rank on it (no CE).

Batches arrive normalised, on the training device. Every function here is pure: the clean
batch is never modified. Randomness comes from torch's global generator (and NumPy's, seeded
from it, for Beta draws), which the engine seeds and stores in every checkpoint, so a resumed
run draws the same boxes.

* `cutmix`  - Yun et al. 2019 via `common.data.mixing.cutmix`, lambda ~ Beta(1, 1).
* `mixup`   - Zhang et al. 2018 via `common.data.mixing.mixup`, lambda ~ Beta(0.2, 0.2).
* `cutout`  - DeVries & Taylor 2017: one square hole of side `length` (8 on CIFAR, 16 on
              Tiny-ImageNet in the released code), centre uniform over the image, clipped at the
              border; the hole is 0 in normalised space (the mean colour). One hole per image by
              default; the released code cuts the same hole in every image of the batch.
* `autoaugment` - Cubuk et al. 2019 (torchvision.transforms.v2.AutoAugment) on the
              un-normalised uint8 batch; one sub-policy is drawn per batch (as in the released
              code, which calls AutoAugment on the whole batch tensor).
* `cutmixpick` - Wang et al. 2022 ("What makes a good data augmentation in KD"): CutMix, then
              keep the `keep` samples of highest teacher entropy (`highest_entropy`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.data.mixing import cutmix, mixup

AUGMENTS = ("none", "cutmix", "mixup", "cutout", "autoaugment", "cutmixpick")


def cutout(images: torch.Tensor, length: int, per_image: bool = True) -> torch.Tensor:
    """A copy of `images` with a `length` x `length` hole (value 0) per image (or per batch)."""
    batch, _, height, width = images.shape
    count = batch if per_image else 1
    # drawn on the images' device: no host-to-device copy each step (and capturable)
    cy = torch.randint(0, height, (count,), device=images.device)
    cx = torch.randint(0, width, (count,), device=images.device)
    rows = torch.arange(height, device=images.device)
    cols = torch.arange(width, device=images.device)
    half = length // 2
    in_rows = (rows >= (cy - half).clamp(0, height)[:, None]) & (
        rows < (cy + half).clamp(0, height)[:, None]
    )
    in_cols = (cols >= (cx - half).clamp(0, width)[:, None]) & (
        cols < (cx + half).clamp(0, width)[:, None]
    )
    hole = in_rows[:, :, None] & in_cols[:, None, :]  # (count, H, W)
    return images.masked_fill(hole[:, None], 0.0)


def _stats(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def autoaugment(
    images: torch.Tensor,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    policy: str = "cifar10",
) -> torch.Tensor:
    """AutoAugment on the un-normalised batch: de-normalise, uint8, one policy, re-normalise."""
    from torchvision.transforms import v2

    policies = {
        "cifar10": v2.AutoAugmentPolicy.CIFAR10,
        "imagenet": v2.AutoAugmentPolicy.IMAGENET,
        "svhn": v2.AutoAugmentPolicy.SVHN,
    }
    if policy not in policies:
        raise ValueError(f"autoaugment policy '{policy}' is not one of {', '.join(policies)}")
    m, s = _stats(mean, images), _stats(std, images)
    raw = (images * s + m).mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    augmented = v2.AutoAugment(policies[policy])(raw)
    return (augmented.to(images.dtype) / 255.0 - m) / s


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of softmax(logits) per row (nats)."""
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def highest_entropy(logits: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the `keep` rows of highest entropy (all rows when the batch is smaller)."""
    keep = min(keep, logits.shape[0])
    return torch.topk(entropy(logits), keep, sorted=False).indices


def augmented_copy(
    kind: str,
    images: torch.Tensor,
    *,
    mixup_alpha: float = 0.2,
    cutout_length: int = 8,
    cutout_per_image: bool = True,
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
    std: tuple[float, float, float] = (1.0, 1.0, 1.0),
    autoaugment_policy: str = "cifar10",
) -> torch.Tensor:
    """The augmented version of the clean batch (`cutmixpick`: the CutMix batch, before the
    entropy pick, which needs the teacher and is done by the method)."""
    if kind in ("cutmix", "cutmixpick"):
        return cutmix(images)[0]
    if kind == "mixup":
        return mixup(images, alpha=mixup_alpha)[0]
    if kind == "cutout":
        return cutout(images, cutout_length, per_image=cutout_per_image)
    if kind == "autoaugment":
        return autoaugment(images, mean, std, autoaugment_policy)
    raise ValueError(f"augment '{kind}' is not one of {', '.join(AUGMENTS[1:])}")
