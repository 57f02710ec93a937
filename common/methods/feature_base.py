"""What the feature-distillation methods (FitNet, AT, CRD, ReviewKD) share: built from the data
they need (`data_kwargs`: the image size of the dry forward that sizes their modules, CRD's
labels), and a step that runs both networks once and hands their features to `losses`, which
a plug-in such as SoKD calls on features it already has."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from common.batch import Batch
from common.methods.base import Distiller


class FeatureDistiller(Distiller):
    """A Distiller whose loss reads both networks' features (`losses`)."""

    @classmethod
    def data_kwargs(cls, spec: Any) -> dict[str, Any]:
        """What the construction needs of the data (the image size of a dry forward)."""
        return {"image_size": spec.image_size}

    @classmethod
    def from_config(cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any):
        return cls(student, teacher, cfg.method.options, **cls.data_kwargs(spec))

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, features, teacher_features = self.student_and_teacher(batch.images)
        return logits, self.losses(batch, logits, features, teacher_features)

    def losses(
        self, batch: Batch, logits: torch.Tensor, features: dict, teacher_features: dict
    ) -> dict[str, torch.Tensor]:
        """The weighted losses of one batch from the networks' outputs."""
        raise NotImplementedError
