"""The model zoo: CIFAR / ImageNet architectures of RepDistiller and mdistiller.

Every model's ``forward(x)`` returns ``(logits, features)`` (see ``common.models.features``) and
every model has ``get_stage_channels()``. State dict keys match the reference zoos, so their
released teacher checkpoints load with ``load_weights``.
"""

from common.models.adapter import FeatureModel
from common.models.checkpoint import CheckpointError, fitting_architectures, load_weights
from common.models.features import Features, ModelOutput
from common.models.registry import build_model, model_names, register_model

__all__ = [
    "CheckpointError",
    "FeatureModel",
    "Features",
    "ModelOutput",
    "build_model",
    "fitting_architectures",
    "load_weights",
    "model_names",
    "register_model",
]
