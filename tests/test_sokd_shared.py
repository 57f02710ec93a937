"""SoKD's search step: the public code's order (the student sees the policy after its step, the
36 sub-policies applied twice) and `shared_search_forward` (applied once, the student's
target from the policy before its step: exact up to that one-step lag)."""

from __future__ import annotations

import pytest
import torch

from common.batch import Batch
from common.errors import ConfigError
from common.methods import get_method
from common.methods.base import Distiller
from common.models import build_model
from sokd.options import SoKDOptions
from sokd.policy import SUB_POLICIES


def _method(**options) -> Distiller:
    torch.manual_seed(0)
    teacher = build_model("resnet20", 10).eval().requires_grad_(False)
    options = {"search_epochs": 1, "seed": 0, **options}
    method = get_method("sokd").build(
        build_model("resnet8", 10), teacher, SoKDOptions(**options), image_size=32
    )
    return method.train()


def _batch() -> Batch:
    g = torch.Generator().manual_seed(3)
    return Batch(torch.randn(8, 3, 32, 32, generator=g), torch.arange(8) % 10, torch.arange(8))


def _count_sub_policies(method: Distiller) -> list[int]:
    calls: list[int] = []
    policy, inner = method.policy, method.policy.sub_policy

    def counted(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    policy.sub_policy = counted  # the instance's attribute wins over the class's method
    return calls


def _old_step(method: Distiller, batch: Batch) -> dict[str, torch.Tensor]:
    """The search step as written before `shared_search_forward`: the policy step on its own
    application of s_bar, then the student's losses on a second application without a graph."""
    logits, features, teacher_features = method.student_and_teacher(batch.images)
    feature_pairs = method.feature_pairs(features, teacher_features)
    pairs = method.maps.pairs(feature_pairs)
    draw = method.policy.draw(*method.generators(batch.images.device))
    method.policy_step(batch, pairs, draw, None)
    with torch.no_grad():
        augmented = method.augment([p.teacher for p in pairs], draw, None)
    base = method.losses(batch, logits, features, teacher_features, feature_pairs)  # the base's
    losses = {k: v for k, v in base.items() if k not in method.replaced}
    losses.update(method.dam_losses(pairs, augmented, record=True))
    return losses


@pytest.mark.parametrize("objective", ["aug", "train"])
def test_the_codes_order_is_the_step_as_it_was(objective: str) -> None:
    """`shared_search_forward: false` (the default): the same losses and the same policy as the
    step written out in full (two applications of s_bar, the student's after the policy's)."""
    new, old = _method(policy_objective=objective), _method(policy_objective=objective)
    assert new.sokd.shared_search_forward is False
    for method in (new, old):
        method.start_epoch(0)
    calls = _count_sub_policies(new)
    for _ in range(2):
        _, losses = new.forward_train(_batch())
        expected = _old_step(old, _batch())
        assert losses.keys() == expected.keys()
        for key in losses:
            torch.testing.assert_close(losses[key], expected[key], rtol=1e-6, atol=0)
    for a, b in zip(new.policy.parameters(), old.policy.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
    assert len(calls) == 2 * 2 * len(SUB_POLICIES)  # two steps, s_bar twice a step


@pytest.mark.parametrize("objective", ["aug", "train"])
def test_the_shared_forward_is_the_old_step_with_the_policy_before_its_step(
    objective: str,
) -> None:
    """`shared_search_forward: true`: the 36 sub-policies are applied once a step; the policy
    takes the same step as in the code's order, and the student's losses are the old step's
    with the policy before that step (its Adam step skipped), i.e. exact up to the lag."""
    shared = _method(policy_objective=objective, shared_search_forward=True)
    ordered = _method(policy_objective=objective)
    lagged = _method(policy_objective=objective)
    lagged.policy_optimizer.step = lambda *a, **k: None  # the student sees gamma before a step
    for method in (shared, ordered, lagged):
        method.start_epoch(0)
    calls = _count_sub_policies(shared)
    before = [p.detach().clone() for p in shared.policy.parameters()]
    _, losses = shared.forward_train(_batch())
    _, ordered_losses = ordered.forward_train(_batch())
    _, lagged_losses = lagged.forward_train(_batch())
    assert len(calls) == len(SUB_POLICIES)  # once a step
    for key in losses:
        torch.testing.assert_close(losses[key], lagged_losses[key], rtol=1e-6, atol=0)
    assert not torch.equal(losses["da"], ordered_losses["da"])  # the lag is real
    moved = [not torch.equal(p, b) for p, b in zip(shared.policy.parameters(), before)]
    assert all(moved)
    for a, b in zip(shared.policy.parameters(), ordered.policy.parameters()):
        assert torch.equal(a, b)  # the policy's step is the code's order's
    sum(losses.values()).backward()  # the student's graph does not reach the stepped policy
    assert all(p.grad is None for p in shared.policy.parameters())
    assert all(p.grad is not None for p in shared.student.parameters())


def test_the_shared_forward_is_first_order_only() -> None:
    with pytest.raises(ConfigError, match="shared_search_forward"):
        _method(shared_search_forward=True, policy_order="second")
