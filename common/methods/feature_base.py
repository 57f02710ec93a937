"""What the feature-distillation methods (FitNet, AT, CRD, ReviewKD) share: built from the data
they need (`data_kwargs`: the image size of the dry forward that sizes their modules, CRD's
labels), and a step that runs both networks once, takes the (student, teacher) feature pairs
the method distils (`feature_pairs`, through the method's own adapters where it has them) and
hands them to `losses`.

The pairs are the interface a plug-in builds on: SoKD (`sokd/maps.py`) augments the teacher's
side of every pair and masks both, over any feature method, without naming it; it reuses the
step's pairs, so an adapter (FitNet's regressor, ReviewKD's fusion) runs once a step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from common.batch import Batch
from common.methods.base import Distiller


@dataclass
class FeaturePairs:
    """The maps a feature method distils, student and teacher side by side, shallowest first.

    `adapted`: the student's maps went through the method's own adapter and have the teacher's
    shapes (FitNet's regressor, ReviewKD's fusion); else they are the network's own maps (AT's
    stages, CRD's last stage) and a plug-in that needs the teacher's shape adds its own."""

    student: list[torch.Tensor]
    teacher: list[torch.Tensor]
    adapted: bool


class FeatureDistiller(Distiller):
    """A Distiller whose loss reads both networks' features (`losses`) through its pairs."""

    # the loss terms computed on the pairs that a plug-in's own loss on them may replace
    # (FitNet's hint MSE); the others (AT's attention, CRD's NCE, ReviewKD's HCL) stay beside it
    replaceable_losses: tuple[str, ...] = ()

    @classmethod
    def data_kwargs(cls, spec: Any) -> dict[str, Any]:
        """What the construction needs of the data (the image size of a dry forward)."""
        return {"image_size": spec.image_size}

    @classmethod
    def from_config(cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any):
        return cls(student, teacher, cfg.method.options, **cls.data_kwargs(spec))

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, features, teacher_features = self.student_and_teacher(batch.images)
        pairs = self.feature_pairs(features, teacher_features)
        return logits, self.losses(batch, logits, features, teacher_features, pairs)

    def feature_pairs(self, features: dict, teacher_features: dict) -> FeaturePairs:
        """The (student, teacher) maps this method distils, from the networks' features."""
        raise NotImplementedError

    def dry_feature_pairs(self, image_size: int) -> FeaturePairs:
        """The pairs of one dry forward of two blank images through both networks and the
        method's adapters in eval mode (what sizes a plug-in's modules: nothing is updated, no
        draw of the global random stream is taken, the train/eval flags are restored)."""
        param = next(self.student.parameters())
        image = torch.zeros(2, 3, image_size, image_size, device=param.device)
        modes = {module: module.training for module in self.modules()}
        try:
            self.eval()
            with torch.no_grad():
                _, features = self.student(image)
                _, teacher_features = self.teacher(image.to(self.teacher_dtype()))
                return self.feature_pairs(features, teacher_features)
        finally:
            for module, mode in modes.items():
                module.training = mode

    def teacher_dtype(self) -> torch.dtype:
        """The teacher's parameters' dtype (bf16 when the engine converted it)."""
        assert self.teacher is not None
        return next(self.teacher.parameters()).dtype

    def losses(
        self,
        batch: Batch,
        logits: torch.Tensor,
        features: dict,
        teacher_features: dict,
        pairs: FeaturePairs,
    ) -> dict[str, torch.Tensor]:
        """The weighted losses of one batch from the networks' outputs and the step's pairs."""
        raise NotImplementedError
