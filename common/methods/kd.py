"""KD (Hinton et al. 2015): CE on labels plus the temperature-softened KL to the teacher.

CIFAR-100 defaults follow the RepDistiller/mdistiller protocol: T = 4, CE weight 0.1, KD weight
0.9. On ImageNet the papers use T = 1 with CE/KD 0.5/0.5 (set in those recipes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.batch import Batch
from common.config.validate import at_least, positive
from common.methods.base import Distiller
from common.methods.losses import kd_loss
from common.methods.registry import register_method


@dataclass
class KDOptions:
    """Hyper-parameters of KD."""

    temperature: float = positive(4.0)  # T of both softmaxes; the KL is multiplied by T^2
    ce_weight: float = at_least(0, 0.1)  # weight of the cross-entropy on the labels
    kd_weight: float = at_least(0, 0.9)  # weight of T^2 KL(p_t || p_s)


@register_method("kd")
class KD(Distiller):
    """Loss = ce_weight * CE(y, z_s) + kd_weight * T^2 * KL(p_t^T || p_s^T)."""

    Options = KDOptions

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        logits, _ = self.student(images)
        teacher_logits = self.teacher_logits(images)
        opts = self.options
        losses = {
            "ce": opts.ce_weight * F.cross_entropy(logits, targets),
            "kd": opts.kd_weight * kd_loss(logits, teacher_logits, opts.temperature),
        }
        return logits, losses
