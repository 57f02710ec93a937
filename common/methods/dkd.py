"""DKD: Decoupled Knowledge Distillation (Zhao et al., CVPR 2022).

KD's loss split into target-class KD (TCKD, Eq. 2's binary part) and non-target-class KD
(NCKD), weighted alpha and beta (Eq. 4), both times T^2. The distillation part is ramped in
linearly over the first `warmup_epochs` epochs, as in the authors' code.
Defaults: CE 1, alpha 1, beta 8, T 4, warm-up 20 (beta 2 for resnet56/20 and resnet110/32; 6
for vgg13/vgg8, vgg13/MobileNetV2, wrn_40_2/wrn_16_2, wrn_40_2/wrn_40_1: set in recipes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from common.batch import Batch
from common.config.validate import at_least, positive
from common.methods.base import Distiller
from common.methods.registry import register_method


def dkd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    beta: float,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha * TCKD, beta * NCKD), each KL summed over classes, mean over batch, times T^2.

    TCKD: KL between the binary (target, all non-target) distributions b^T and b^S.
    NCKD: KL between the distributions over non-target classes only (target masked out).
    """
    t = temperature
    # scatter, not F.one_hot: one_hot checks the targets' range on the host (a sync a step)
    gt = torch.zeros_like(student_logits, dtype=torch.bool).scatter_(1, targets[:, None], True)
    p_s = F.softmax(student_logits / t, dim=1)
    p_t = F.softmax(teacher_logits / t, dim=1)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], dim=1)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], dim=1)
    tckd = F.kl_div(torch.log(b_s.clamp_min(1e-12)), b_t, reduction="batchmean") * t**2
    # Masking the target with a large negative logit removes it from both softmaxes.
    masked_s = student_logits / t - 1000.0 * gt
    masked_t = teacher_logits / t - 1000.0 * gt
    nckd = (
        F.kl_div(
            F.log_softmax(masked_s, dim=1),
            F.log_softmax(masked_t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        * t**2
    )
    return alpha * tckd, beta * nckd


@dataclass
class DKDOptions:
    """Hyper-parameters of DKD (Zhao et al. 2022, Sec. 4)."""

    ce_weight: float = at_least(0, 1.0)  # weight of the cross-entropy on the labels
    alpha: float = at_least(0, 1.0)  # weight of TCKD (target class, Eq. 4)
    beta: float = at_least(0, 8.0)  # weight of NCKD (non-target classes); 2, 6 or 8 per pair
    temperature: float = positive(4.0)  # T of the softmaxes; both terms times T^2
    warmup_epochs: int = at_least(0, 20)  # linear ramp of TCKD + NCKD over these epochs; 0 = none


@register_method("dkd")
class DKD(Distiller):
    """Loss = CE + min(epoch / warmup, 1) * (alpha * TCKD + beta * NCKD)."""

    Options = DKDOptions

    def __init__(self, student: Any, teacher: Any, options: DKDOptions | None = None) -> None:
        super().__init__(student, teacher, options)
        # The warm-up factor lives on the device and is rewritten between epochs, so a step
        # never reads the epoch on the host and a captured step sees each epoch's value.
        self.register_buffer("ramp", torch.ones(()), persistent=False)
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        """min((epoch + 1) / warmup, 1) into the `ramp` buffer (epochs counted from 1)."""
        super().start_epoch(epoch)
        o = self.options
        self.ramp.fill_(min((epoch + 1) / o.warmup_epochs, 1.0) if o.warmup_epochs > 0 else 1.0)

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        logits, _ = self.student(images)
        teacher_logits = self.teacher_logits(images)
        o = self.options
        ramp = self.ramp
        tckd, nckd = dkd_loss(logits, teacher_logits, targets, o.alpha, o.beta, o.temperature)
        losses = {
            "ce": o.ce_weight * F.cross_entropy(logits, targets),
            "tckd": ramp * tckd,
            "nckd": ramp * nckd,
        }
        return logits, losses
