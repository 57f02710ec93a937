"""SLKD's losses: the supervised-KD form shared by Eqs. 1-5 and the logit fusion of Eq. 6."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from common.methods.losses import kd_loss


def fusion_weights(num: int, rho: float, explicit: Sequence[float] = ()) -> list[float]:
    """The weight of each SL-teacher's logits in the fused target (Eq. 6).

    Two SL-teachers: (rho, 1 - rho), the paper's Eq. 6. One: (1,). More than two: `explicit`
    when given, else equal weights 1/num (the paper only defines two).
    """
    if explicit:
        if len(explicit) != num:
            raise ValueError(f"{len(explicit)} fusion weights for {num} SL-teachers")
        return [float(w) for w in explicit]
    if num == 1:
        return [1.0]
    if num == 2:
        return [rho, 1.0 - rho]
    return [1.0 / num] * num


def fuse_logits(logits: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Eq. 6 on logits (as the released code fuses them): sum_i w_i * z_i."""
    fused = weights[0] * logits[0]
    for w, z in zip(weights[1:], logits[1:]):
        fused = fused + w * z
    return fused


def supervised_kd(
    logits: torch.Tensor,
    targets: torch.Tensor,
    target_logits: torch.Tensor,
    ce_weight: float,
    kd_weight: float,
    temperature: float,
    ce: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ce_weight * CE(y, z), kd_weight * T^2 KL(p_target^T || p^T)): the two terms of Eqs. 1-5.

    `ce` may pass an already computed CE(y, z) (the student's CE appears in Eqs. 1 and 3).
    Gradient reaches `target_logits` unless the caller detaches them.
    """
    if ce is None:
        ce = F.cross_entropy(logits, targets)
    return ce_weight * ce, kd_weight * kd_loss(logits, target_logits, temperature)
