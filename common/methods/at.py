"""AT, attention transfer (Zagoruyko & Komodakis, ICLR 2017), as mdistiller runs it.

Each stage output after the stem gives a spatial attention map a(F) = normalise(flatten(mean_c
|F|^p)) (Sec. 3.1, Eq. 2 with F_sum^p); where student and teacher maps differ in size the larger
is average-pooled to the smaller first. The loss sums, over stages, the mean squared difference
of the two maps (`common.methods.losses.at_loss`):

    L = ce_weight CE(y, z_s) + feat_weight * sum_j mean((a(F_s,j) - a(F_t,j))^2)

Defaults: mdistiller's CIFAR-100 config, p = 2, CE 1, AT weight 1000. Which stages are paired
is `stage_pairing` (checked once at construction by a dry forward): `equal` (default) pairs stage
j with stage j and refuses networks with different numbers of stages; `first` pairs the first
min(n_s, n_t) stages after the stem of each network in order and drops the longer one's extra
last stages, as mdistiller's `zip(feats_s[1:], feats_t[1:])` does (its resnet50 -> MobileNetV1
config pairs MobileNetV1's three stages with resnet50's first three).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least, positive
from common.errors import ConfigError
from common.methods.feature_base import FeatureDistiller, FeaturePairs
from common.methods.feature_shapes import feature_shapes
from common.methods.losses import at_loss
from common.methods.registry import register_method


@dataclass
class ATOptions:
    """Hyper-parameters of AT (mdistiller's CIFAR-100 values)."""

    p: float = positive(2.0)  # power of the channel-mean of |F| in the attention map
    feat_weight: float = at_least(0, 1000.0)  # weight of the summed attention loss
    ce_weight: float = at_least(0, 1.0)  # weight of the cross-entropy on the labels
    # equal: stage j with stage j, same count | first: the first stages, extra last ones dropped
    stage_pairing: Literal["equal", "first"] = "equal"


def paired_stages(
    student: nn.Module, teacher: nn.Module, image_size: int, pairing: str = "equal"
) -> list[int]:
    """The indices j (into `feats`, 0 = the stem) whose student and teacher maps AT pairs:
    1 .. n with n the stages after the stem (`equal`: refused unless both have n; `first`:
    the smaller count, mdistiller's `zip`)."""
    s = len(feature_shapes(student, image_size)["feats"])
    t = len(feature_shapes(teacher, image_size)["feats"])
    if s != t and pairing == "equal":
        raise ConfigError(
            f"method 'at' pairs the stages of student and teacher, but the student has "
            f"{s - 1} stages after the stem and the teacher {t - 1}: set "
            "method.stage_pairing=first to pair the first stages and drop the extra last ones "
            "(mdistiller's zip), or choose a pair with as many stages"
        )
    return list(range(1, min(s, t)))


@register_method("at")
class AT(FeatureDistiller):
    """CE + feat_weight * attention transfer over every stage after the stem."""

    Options = ATOptions

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        options: ATOptions | None = None,
        image_size: int = 32,
    ) -> None:
        super().__init__(student, teacher, options)
        self.stage_indices = paired_stages(student, teacher, image_size, self.options.stage_pairing)

    def feature_pairs(self, features: dict, teacher_features: dict) -> FeaturePairs:
        """The paired stage maps (`stage_indices`), as the networks give them."""
        student = [features["feats"][j] for j in self.stage_indices]
        teacher = [teacher_features["feats"][j] for j in self.stage_indices]
        return FeaturePairs(student, teacher, adapted=False)

    def losses(
        self,
        batch: Batch,
        logits: torch.Tensor,
        features: dict,
        teacher_features: dict,
        pairs: FeaturePairs,
    ) -> dict[str, torch.Tensor]:
        """{"ce", "feat"}: the weighted cross-entropy and attention loss."""
        o = self.options
        attention = at_loss(pairs.student, pairs.teacher, o.p)
        return {
            "ce": o.ce_weight * F.cross_entropy(logits, batch.targets),
            "feat": o.feat_weight * attention,
        }
