"""The fused optimisers with a tensor learning rate train exactly like the unfused ones."""

from __future__ import annotations

import copy

import pytest
import torch

from common.config.schema import OptimConfig
from common.engine.optim import build_optimizer, build_scheduler, current_lr
from common.models import build_model


@pytest.mark.parametrize(
    "cfg",
    [
        OptimConfig(name="sgd", lr=0.05, schedule="multistep", milestones=[1], nesterov=False),
        OptimConfig(name="sgd", lr=0.05, schedule="cosine", nesterov=True, warmup_epochs=0.5),
        OptimConfig(name="adamw", lr=1e-3, schedule="onecycle", weight_decay=0.01),
    ],
    ids=["sgd-multistep", "sgd-nesterov-cosine", "adamw-onecycle"],
)
def test_fused_with_a_tensor_lr_equals_the_unfused_optimiser(cfg: OptimConfig) -> None:
    torch.manual_seed(0)
    model = build_model("resnet8", 10)
    twin = copy.deepcopy(model)
    fused = build_optimizer(model.parameters(), cfg)
    plain = build_optimizer(twin.parameters(), OptimConfig(**{**vars(cfg), "fused": False}))
    assert fused.defaults["fused"] and torch.is_tensor(fused.param_groups[0]["lr"])
    assert not plain.defaults.get("fused") and not torch.is_tensor(plain.param_groups[0]["lr"])
    schedules = [build_scheduler(o, cfg, steps_per_epoch=5, epochs=2) for o in (fused, plain)]
    x = torch.randn(8, 3, 16, 16)
    for _ in range(10):
        for net, opt, sched in ((model, fused, schedules[0]), (twin, plain, schedules[1])):
            opt.zero_grad()
            net(x)[0].square().mean().backward()
            opt.step()
            sched.step()
        assert current_lr(fused) == pytest.approx(current_lr(plain), rel=1e-6)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
