"""Batch-level mixing augmentations: CutMix and Mixup.

* CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
  Localizable Features", ICCV 2019): paste a box from a partner image; lambda ~ Beta(a, a), box
  side ratio sqrt(1 - lambda), centre uniform, clipped at the border, lambda corrected to
  1 - box area / image area.
* Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018): the convex
  combination lambda * x + (1 - lambda) * x[perm], lambda ~ Beta(a, a).

Both are pure (the input is not modified) and return `(mixed, perm, lam)`; the loss is
`lam * loss(out, y) + (1 - lam) * loss(out, y[perm])`. Randomness comes from `generator` when
given (a torch.Generator) and from torch's global RNG otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def sample_beta(alpha: float, generator: torch.Generator | None = None) -> float:
    """One draw of Beta(alpha, alpha); 1.0 (no mixing) when alpha <= 0."""
    if alpha <= 0:
        return 1.0
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_where(generator)))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def partner_permutation(
    batch: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random permutation of the batch (drawn on the generator's device), on `device`."""
    return torch.randperm(batch, generator=generator, device=_where(generator)).to(device)


def cutmix_box(
    height: int, width: int, lam: float, generator: torch.Generator | None = None
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of side ratio sqrt(1 - lam), clipped at the border."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(0, height, (1,), generator=generator, device=_where(generator)))
    cx = int(torch.randint(0, width, (1,), generator=generator, device=_where(generator)))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right


def _where(generator: torch.Generator | None) -> torch.device:
    """The device draws must be made on: the generator's own (CPU without one)."""
    return generator.device if generator is not None else torch.device("cpu")


def cutmix(
    images: torch.Tensor, generator: torch.Generator | None = None, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix a batch `(B, C, H, W)`: returns (mixed, perm, lam), lam = 1 - box area / area."""
    batch, _, height, width = images.shape
    lam = sample_beta(alpha, generator)
    perm = partner_permutation(batch, images.device, generator)
    top, bottom, left, right = cutmix_box(height, width, lam, generator)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[perm, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return mixed, perm, lam


def mixup(
    images: torch.Tensor, alpha: float = 0.2, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup a float batch: returns (lam * x + (1 - lam) * x[perm], perm, lam)."""
    lam = sample_beta(alpha, generator)
    perm = partner_permutation(images.shape[0], images.device, generator)
    mixed = images.mul(lam).add_(images[perm], alpha=1.0 - lam)
    return mixed, perm, lam
