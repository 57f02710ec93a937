"""FitNet (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015), as mdistiller runs it.

A regressor r (`ConvReg`: a conv matching the spatial size, then BN and ReLU) maps the
student's feature at `hint_layer` onto the teacher's, and the hint loss (Sec. 3.1, Eq. 2) is
their mean squared error:

    L = ce_weight CE(y, z_s) + feat_weight * MSE(r(F_s[h]), F_t[h])

trained jointly from the start (mdistiller's reading; the paper pre-trains with the hint
first). Defaults: mdistiller's CIFAR-100 config, `hint_layer` 2 (feats[0] is the stem), CE 1,
hint weight 100. The regressor is built from the two models' feature shapes by one dry forward
at the data's image size, in eval mode (the teacher's BatchNorm statistics stay as loaded;
`dry_forward_train_mode: true` reproduces mdistiller, whose dry forward in train mode updates
them once). The regressor trains with the student and is saved in last.pt, not in best.pt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least
from common.errors import ConfigError
from common.methods.conv_reg import ConvReg
from common.methods.feature_base import FeatureDistiller, FeaturePairs
from common.methods.feature_shapes import feature_shapes
from common.methods.registry import register_method


@dataclass
class FitNetOptions:
    """Hyper-parameters of FitNet (mdistiller's CIFAR-100 values)."""

    hint_layer: int = at_least(0, 2)  # index into the models' feats (0 = the stem)
    ce_weight: float = at_least(0, 1.0)  # weight of the cross-entropy on the labels
    feat_weight: float = at_least(0, 100.0)  # weight of the hint MSE
    dry_forward_train_mode: bool = False  # true: mdistiller's shape probe updates teacher BN


def hint_regressor(
    student: nn.Module, teacher: nn.Module, image_size: int, options: FitNetOptions
) -> ConvReg:
    """The ConvReg from the student's to the teacher's map at `hint_layer` (range checked)."""
    s = feature_shapes(student, image_size)["feats"]
    t = feature_shapes(teacher, image_size, train_mode=options.dry_forward_train_mode)["feats"]
    last = min(len(s), len(t)) - 1
    if not 0 <= options.hint_layer <= last:
        raise ConfigError(
            f"method.hint_layer {options.hint_layer} is out of range: the student has "
            f"{len(s)} feature maps and the teacher {len(t)}; choose 0..{last} [method 'fitnet']"
        )
    return ConvReg(s[options.hint_layer], t[options.hint_layer])


@register_method("fitnet")
class FitNet(FeatureDistiller):
    """CE + feat_weight * MSE(regressor(student hint), teacher hint)."""

    Options = FitNetOptions

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        options: FitNetOptions | None = None,
        image_size: int = 32,
    ) -> None:
        super().__init__(student, teacher, options)
        self.regressor = hint_regressor(student, teacher, image_size, self.options)

    replaceable_losses = ("feat",)  # SoKD's L_DA takes the hint MSE's place

    def feature_pairs(self, features: dict, teacher_features: dict) -> FeaturePairs:
        """The hint pair: (regressed student map, teacher map) at `hint_layer`."""
        h = self.options.hint_layer
        student = self.regressor(features["feats"][h])
        return FeaturePairs([student], [teacher_features["feats"][h]], adapted=True)

    def compile_targets(self) -> list[nn.Module]:
        """The hint regressor is trained with the student: compiled with the networks."""
        return [*super().compile_targets(), self.regressor]

    def losses(
        self,
        batch: Batch,
        logits: torch.Tensor,
        features: dict,
        teacher_features: dict,
        pairs: FeaturePairs,
    ) -> dict[str, torch.Tensor]:
        """{"ce", "feat"}: the weighted cross-entropy and hint MSE."""
        o = self.options
        return {
            "ce": o.ce_weight * F.cross_entropy(logits, batch.targets),
            "feat": o.feat_weight * F.mse_loss(pairs.student[0], pairs.teacher[0]),
        }
