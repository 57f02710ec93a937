"""AT, attention transfer (Zagoruyko & Komodakis, ICLR 2017), as mdistiller runs it.

Each stage output after the stem gives a spatial attention map a(F) = normalise(flatten(mean_c
|F|^p)) (Sec. 3.1, Eq. 2 with F_sum^p); where student and teacher maps differ in size the larger
is average-pooled to the smaller first. The loss sums, over stages, the mean squared difference
of the two maps (`common.methods.losses.at_loss`):

    L = ce_weight CE(y, z_s) + feat_weight * sum_j mean((a(F_s,j) - a(F_t,j))^2)

Defaults: mdistiller's CIFAR-100 config, p = 2, CE 1, AT weight 1000. Student and teacher must
have as many stages (checked once at construction by a dry forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least, positive
from common.errors import ConfigError
from common.methods.feature_base import FeatureDistiller
from common.methods.feature_shapes import feature_shapes
from common.methods.losses import at_loss
from common.methods.registry import register_method


@dataclass
class ATOptions:
    """Hyper-parameters of AT (mdistiller's CIFAR-100 values)."""

    p: float = positive(2.0)  # power of the channel-mean of |F| in the attention map
    feat_weight: float = at_least(0, 1000.0)  # weight of the summed attention loss
    ce_weight: float = at_least(0, 1.0)  # weight of the cross-entropy on the labels


def check_stages(student: nn.Module, teacher: nn.Module, image_size: int) -> None:
    """Refuse a pair whose numbers of stages differ (AT pairs stage j with stage j)."""
    s = feature_shapes(student, image_size)["feats"]
    t = feature_shapes(teacher, image_size)["feats"]
    if len(s) != len(t):
        raise ConfigError(
            f"method 'at' pairs the stages of student and teacher, but the student has "
            f"{len(s) - 1} stages after the stem and the teacher {len(t) - 1}: choose a pair "
            "with as many stages (e.g. the pairs of tools/recipes/at/)"
        )


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
        check_stages(student, teacher, image_size)

    def losses(
        self, batch: Batch, logits: torch.Tensor, features: dict, teacher_features: dict
    ) -> dict[str, torch.Tensor]:
        """{"ce", "feat"}: the weighted cross-entropy and attention loss."""
        o = self.options
        attention = at_loss(features["feats"][1:], teacher_features["feats"][1:], o.p)
        return {
            "ce": o.ce_weight * F.cross_entropy(logits, batch.targets),
            "feat": o.feat_weight * attention,
        }
