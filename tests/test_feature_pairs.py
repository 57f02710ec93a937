"""The feature-pairs interface (`FeatureDistiller.feature_pairs`): SoKD plugs into a feature
method it does not name, and under SoKD a base's adapter runs once a step."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from common.batch import Batch
from common.config import ConfigError
from common.methods import get_method
from common.methods.feature_base import FeatureDistiller, FeaturePairs
from common.methods.registry import METHODS
from common.models import build_model
from sokd.options import SoKDOptions


@dataclass
class LastStageOptions:
    ce_weight: float = 1.0
    feat_weight: float = 1.0


class LastStageMSE(FeatureDistiller):
    """A feature method added after SoKD: MSE of the last stage maps (same widths here)."""

    Options = LastStageOptions

    def __init__(self, student, teacher, options=None, image_size: int = 32) -> None:
        super().__init__(student, teacher, options)

    def feature_pairs(self, features: dict, teacher_features: dict) -> FeaturePairs:
        return FeaturePairs([features["feats"][-1]], [teacher_features["feats"][-1]], False)

    def losses(self, batch, logits, features, teacher_features, pairs):
        o = self.options
        return {
            "ce": o.ce_weight * F.cross_entropy(logits, batch.targets),
            "feat": o.feat_weight * F.mse_loss(pairs.student[0], pairs.teacher[0]),
        }


@pytest.fixture
def last_stage_mse():
    """LastStageMSE registered for one test (the shared registry is left as it was)."""
    METHODS.add("test_last_stage_mse", LastStageMSE)
    yield LastStageMSE
    METHODS.remove("test_last_stage_mse")


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(4, 3, 16, 16, generator=g), torch.tensor([0, 1, 2, 3]), None)


def _sokd(base: str, **options):
    torch.manual_seed(0)
    teacher = build_model("resnet20", 4).eval().requires_grad_(False)
    return get_method("sokd").build(
        build_model("resnet8", 4),
        teacher,
        SoKDOptions(base=base, **{"search_epochs": 1, **options}),
        image_size=16,
    )


def test_sokd_plugs_into_a_feature_method_it_does_not_name(last_stage_mse) -> None:
    from sokd.options import feature_methods

    assert "test_last_stage_mse" in feature_methods()
    method = _sokd("test_last_stage_mse", alpha=10.0, beta=10.0)
    assert len(method.maps.adapters) == 1 and method.maps.shapes == [(64, 4, 4)]
    method.train().start_epoch(0)
    _, losses = method.forward_train(_batch())
    assert {"ce", "feat", "da", "dam"} <= set(losses)  # its own loss stays beside L_DA
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert method.maps.adapters[0].conv.weight.grad is not None


def test_a_method_that_is_not_a_feature_method_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="'kd' is not a feature method"):
        _sokd("kd")


@pytest.mark.parametrize(("base", "adapter"), [("fitnet", "regressor"), ("reviewkd", "fusion")])
def test_the_base_adapter_runs_once_a_step_under_sokd(base: str, adapter: str) -> None:
    method = _sokd(
        base, search_epochs=0, base_options={"hint_layer": 2} if base == "fitnet" else {}
    )
    calls = []
    getattr(method, adapter).register_forward_hook(lambda *_: calls.append(1))
    method.train().start_epoch(0)
    method.forward_train(_batch())
    assert len(calls) == 1
