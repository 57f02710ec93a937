"""CQKD (Eq. 2) and its supervised low-resolution baseline.

CQKD: the teacher sees the full-resolution augmented image x, the student the same image
downsampled to h x h (`student.resolution`, see `common.methods.resize`), and

    L = (1 - alpha) * CE(y, p_1^s) + alpha * T^2 * KL(p_T^t || p_T^s)          (Eq. 2)

with alpha = 0.5 and T = 10 or 20 (Sec. 4.1). The paper's Eq. 2 has no T^2; the released code
multiplies the KL by T^2 (as Hinton et al. do), and so does this implementation.
`teacher_sees_lowres: true` reproduces a quirk of the released code: the teacher is fed the
downsampled batch too. The resize does not antialias by default (`antialias: false`, the released
code's torchvision behaviour; the paper does not say); `antialias: true` is the option.

`lowres`: the supervised baseline of Fig. 2, cross-entropy on the downsampled images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import positive, ranged
from common.methods.base import Distiller
from common.methods.losses import kd_loss
from common.methods.registry import register_method
from common.methods.resize import LowResolutionStudent, checked_resolution


@dataclass
class CQKDOptions:
    """Hyper-parameters of CQKD (defaults: Sec. 4.1)."""

    alpha: float = ranged(0.5, ge=0, le=1)  # KD weight; CE has 1 - alpha (Eq. 2)
    temperature: float = positive(10.0)  # T; the paper runs 10 and 20
    teacher_sees_lowres: bool = False  # true: teacher fed the downsampled batch (released quirk)
    antialias: bool = False  # true: antialiased resize (false: as released; common.methods.resize)


@dataclass
class LowResOptions:
    """The supervised baseline has no hyper-parameter but the resize's antialiasing."""

    antialias: bool = False  # true: antialiased resize (false: as released; common.methods.resize)


def cqkd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    temperature: float,
) -> dict[str, torch.Tensor]:
    """Eq. 2 as two already-weighted terms: {"ce": (1-a) CE, "kd": a T^2 KL(p_t || p_s)}."""
    return {
        "ce": (1.0 - alpha) * F.cross_entropy(student_logits, targets),
        "kd": alpha * kd_loss(student_logits, teacher_logits, temperature),
    }


class _LowResDistiller(LowResolutionStudent, Distiller):
    """A Distiller whose student sees `student.resolution` (read in `from_config`)."""

    def __init__(
        self, student: nn.Module, teacher: nn.Module | None, options: Any, resolution: int = 0
    ) -> None:
        super().__init__(student, teacher, options)
        self.resolution = resolution

    @classmethod
    def from_config(
        cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any
    ) -> Distiller:
        return cls(student, teacher, cfg.method.options, checked_resolution(cfg, spec))


@register_method("cqkd")
class CQKD(_LowResDistiller):
    """Cross-quality KD (Eq. 2): full-resolution teacher, low-resolution student."""

    Options = CQKDOptions

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        small = self.student_input(images)
        logits, _ = self.student(small)
        opts = self.options
        teacher_logits = self.teacher_logits(small if opts.teacher_sees_lowres else images)
        return logits, cqkd_loss(logits, teacher_logits, targets, opts.alpha, opts.temperature)


@register_method("lowres")
class LowRes(_LowResDistiller):
    """Supervised baseline of Fig. 2: cross-entropy on the downsampled images, no teacher."""

    Options = LowResOptions
    needs_teacher = False

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        logits, _ = self.student(self.student_input(images))
        return logits, {"ce": F.cross_entropy(logits, targets)}
