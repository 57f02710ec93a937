"""Batch-level mixing augmentations: CutMix and Mixup.

* CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
  Localizable Features", ICCV 2019): paste a box from a partner image; lambda ~ Beta(a, a), box
  side ratio sqrt(1 - lambda), centre uniform, clipped at the border, lambda corrected to
  1 - box area / image area.
* Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018): the convex
  combination lambda * x + (1 - lambda) * x[perm], lambda ~ Beta(a, a).

Both are pure (the input is not modified) and return `(mixed, perm, lam)` with `lam` a 0-d
tensor; the loss is `lam * loss(out, y) + (1 - lam) * loss(out, y[perm])`. Every draw and
every box coordinate stays a tensor on the device (the box is a mask, not a slice), so a
training step that mixes never reads a value on the host. Randomness comes from `generator`
when given (a torch.Generator, on its own device) and from the images' device's default
generator otherwise. Beta(a, a) is drawn exactly by Johnk's method (Johnk 1964) from a block of
64 uniform pairs, the first accepted pair kept (all 64 rejected: probability below 2^-64).
"""

from __future__ import annotations

import torch

JOHNK_PROPOSALS = 64


def _where(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """The device draws are made on: the generator's own, else the images'."""
    return generator.device if generator is not None else device


def sample_beta(
    alpha: float, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """One draw of Beta(alpha, alpha) as a 0-d float32 tensor on `device`; 1 when alpha <= 0.

    Johnk: for U, V uniform, X = U^(1/a), Y = V^(1/a), X / (X + Y) given X + Y <= 1 is
    Beta(a, a)."""
    device = torch.device(device)
    if alpha <= 0:
        return torch.ones((), device=device)
    u = torch.rand(JOHNK_PROPOSALS, 2, generator=generator, device=_where(generator, device))
    x, y = u[:, 0].pow(1.0 / alpha), u[:, 1].pow(1.0 / alpha)
    total = x + y
    accepted = (total <= 1) & (total > 0)
    first = accepted.to(torch.int64).argmax()
    # gather, not [first]: indexing with a 0-d tensor reads it on the host (a sync, and a
    # failure under CUDA-graph capture)
    return (x / total.clamp_min(1e-30)).gather(0, first.view(1)).squeeze(0).to(device)


def partner_permutation(
    batch: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random permutation of the batch (drawn on the generator's device), on `device`."""
    return torch.randperm(batch, generator=generator, device=_where(generator, device)).to(device)


def cutmix_mask(
    height: int,
    width: int,
    lam: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inside, area): the (H, W) bool mask of a box of side ratio sqrt(1 - lam) around a
    uniform centre, clipped at the border, and its area in pixels (tensors on lam's device)."""
    device = lam.device
    ratio = torch.sqrt(1.0 - lam)
    cut_h, cut_w = torch.floor(height * ratio), torch.floor(width * ratio)
    where = _where(generator, device)
    cy = torch.randint(0, height, (), generator=generator, device=where).to(device)
    cx = torch.randint(0, width, (), generator=generator, device=where).to(device)
    top = (cy - torch.floor(cut_h / 2)).clamp_min(0)
    bottom = (cy + torch.floor(cut_h / 2)).clamp_max(height)
    left = (cx - torch.floor(cut_w / 2)).clamp_min(0)
    right = (cx + torch.floor(cut_w / 2)).clamp_max(width)
    rows = torch.arange(height, device=device).view(-1, 1)
    cols = torch.arange(width, device=device).view(1, -1)
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    return inside, (bottom - top) * (right - left)


def cutmix(
    images: torch.Tensor, generator: torch.Generator | None = None, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CutMix a batch `(B, C, H, W)`: returns (mixed, perm, lam), lam = 1 - box area / area."""
    batch, _, height, width = images.shape
    lam = sample_beta(alpha, generator, images.device)
    perm = partner_permutation(batch, images.device, generator)
    if alpha <= 0:
        return images.clone(), perm, lam
    inside, area = cutmix_mask(height, width, lam, generator)
    mixed = torch.where(inside, images[perm], images)
    return mixed, perm, 1.0 - area / (height * width)


def mixup(
    images: torch.Tensor, alpha: float = 0.2, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup a float batch: returns (lam * x + (1 - lam) * x[perm], perm, lam)."""
    lam = sample_beta(alpha, generator, images.device).to(images.dtype)
    perm = partner_permutation(images.shape[0], images.device, generator)
    mixed = images * lam + images[perm] * (1.0 - lam)
    return mixed, perm, lam
