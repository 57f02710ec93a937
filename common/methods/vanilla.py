"""Plain supervised training (cross-entropy); trains teachers and teacher-free baselines."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.batch import Batch
from common.config.validate import ranged
from common.methods.base import Distiller
from common.methods.registry import register_method


@dataclass
class VanillaOptions:
    """Label smoothing 0 reproduces the papers' teacher training."""

    label_smoothing: float = ranged(0.0, ge=0, lt=1)  # 0 = plain cross-entropy (the papers)


@register_method("vanilla")
class Vanilla(Distiller):
    """Cross-entropy on the labels; no teacher."""

    Options = VanillaOptions
    needs_teacher = False

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        logits, _ = self.student(images)
        ce = F.cross_entropy(logits, targets, label_smoothing=self.options.label_smoothing)
        return logits, {"ce": ce}
