"""ReviewKD (Chen et al., "Distilling Knowledge via Knowledge Review", CVPR 2021), as mdistiller
runs it.

The student's stage outputs and pooled feature are fused from the deepest level up by
attention-based fusion modules (ABF, Sec. 3.2; `common.methods.abf.ReviewFusion`), and each
fused level is compared with the teacher's (pre-activation stages after the stem, and the
pooled feature) by the hierarchical context loss (HCL, Sec. 3.3; `losses.hcl_loss`):

    L = ce_weight CE(y, z_s) + reviewkd_weight * min((epoch + 1) / warmup_epochs, 1) * HCL

Defaults: mdistiller's CIFAR-100 config, weight 1 (5 for resnet32x4 -> resnet8x4, in that
recipe), 20 warm-up epochs (counted from 1, as mdistiller), channels and sizes derived from
the two models by a dry forward (never typed per pair), mid channels min(512, the student's
deepest width). `student_preact: true` fuses the student's pre-activation maps (mdistiller's
ImageNet configs). The fusion modules train with the student; last.pt holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least
from common.methods.abf import ReviewFusion, student_levels, teacher_levels
from common.methods.feature_base import FeatureDistiller, FeaturePairs
from common.methods.losses import hcl_loss
from common.methods.registry import register_method


@dataclass
class ReviewKDOptions:
    """Hyper-parameters of ReviewKD (mdistiller's CIFAR-100 values)."""

    reviewkd_weight: float = at_least(0, 1.0)  # weight of HCL (recipes: the authors', 0.6-8 a pair)
    warmup_epochs: int = at_least(0, 20)  # HCL ramped in linearly over these epochs; 0 = none
    ce_weight: float = at_least(0, 1.0)  # weight of the cross-entropy on the labels
    student_preact: bool = False  # fuse the student's pre-activation maps (ImageNet configs)
    max_mid_channel: int = at_least(1, 512)  # ABF width: min(this, the deepest student width)


@register_method("reviewkd")
class ReviewKD(FeatureDistiller):
    """CE + ramped reviewkd_weight * HCL(ABF-fused student levels, teacher levels)."""

    Options = ReviewKDOptions

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        options: ReviewKDOptions | None = None,
        image_size: int = 32,
    ) -> None:
        super().__init__(student, teacher, options)
        o = self.options
        self.fusion = ReviewFusion.from_models(
            student, teacher, image_size, max_mid_channel=o.max_mid_channel,
            student_preact=o.student_preact,
        )  # fmt: skip
        self.register_buffer("ramp", torch.ones(()), persistent=False)  # see `start_epoch`
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        """The warm-up factor into the device buffer `ramp`, between epochs (a step never
        reads the epoch on the host; a captured step sees each epoch's value)."""
        super().start_epoch(epoch)
        self.ramp.fill_(self.warmup())

    def warmup(self) -> float:
        """min((epoch + 1) / warmup_epochs, 1), epochs counted from 1 as in mdistiller."""
        o = self.options
        return min((self.epoch + 1) / o.warmup_epochs, 1.0) if o.warmup_epochs > 0 else 1.0

    def compile_targets(self) -> list[nn.Module]:
        """The fusion modules are trained network work (ABFs, 1.7x the student's FLOPs on
        resnet32x4 -> resnet8x4): `train.graph=compile` compiles them with the networks."""
        return [*super().compile_targets(), self.fusion]

    def feature_pairs(self, features: dict, teacher_features: dict) -> FeaturePairs:
        """(ABF-fused student levels, teacher levels), shallowest first: what HCL compares."""
        levels = student_levels(features, len(self.fusion.abfs), self.options.student_preact)
        return FeaturePairs(self.fusion(levels), teacher_levels(teacher_features), adapted=True)

    def losses(
        self,
        batch: Batch,
        logits: torch.Tensor,
        features: dict,
        teacher_features: dict,
        pairs: FeaturePairs,
    ) -> dict[str, torch.Tensor]:
        """{"ce", "feat"}: the weighted cross-entropy and ramped HCL."""
        o = self.options
        hcl = hcl_loss(pairs.student, pairs.teacher)
        return {
            "ce": o.ce_weight * F.cross_entropy(logits, batch.targets),
            "feat": o.reviewkd_weight * self.ramp * hcl,
        }
