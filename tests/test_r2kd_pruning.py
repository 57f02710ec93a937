"""The pruned teacher: exact per-layer unstructured sparsity, structured pruning that shrinks the
network and still runs, the teacher left intact, logits mixing and the BatchNorm mode option."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from common.models import build_model
from r2kd.method import R2KD, R2KDOptions
from r2kd.pruning import make_pruned_teacher, prunable_layers


@pytest.fixture
def teacher() -> nn.Module:
    torch.manual_seed(0)
    return build_model("resnet8", 10).eval().requires_grad_(False)


@pytest.mark.parametrize("amount", [0.1, 0.3])
def test_unstructured_zeroes_exactly_the_fraction_of_each_layer(teacher, amount) -> None:
    before = {
        n: m.weight.clone() for n, m in teacher.named_modules() if m in prunable_layers(teacher)
    }
    pruned, report = make_pruned_teacher(teacher, "unstructured", amount, 16)
    layers = dict(pruned.named_modules())
    assert set(before) == {n for n, m in layers.items() if isinstance(m, (nn.Conv2d, nn.Linear))}
    for name, original in before.items():
        weight = layers[name].weight
        zeros = weight == 0
        assert int(zeros.sum()) == round(amount * weight.numel()), name
        # the zeroed ones are the smallest magnitudes; the others are untouched
        assert original.abs()[zeros].max() <= original.abs()[~zeros].min(), name
        assert torch.equal(weight[~zeros], original[~zeros]), name
    assert report.zero_fraction == pytest.approx(amount, abs=0.01)
    assert report.params_after == report.params_before
    # the first conv and the classifier are pruned too, and nothing is left re-parametrised
    assert not any("weight_orig" in k for k in pruned.state_dict())
    # the teacher itself is unchanged and both stay frozen
    for name, original in before.items():
        assert torch.equal(dict(teacher.named_modules())[name].weight, original)
    assert not any(p.requires_grad for p in pruned.parameters())


def test_unstructured_pruning_keeps_batchnorm(teacher) -> None:
    pruned, _ = make_pruned_teacher(teacher, "unstructured", 0.1, 16)
    for (name, a), b in zip(teacher.named_buffers(), pruned.buffers()):
        assert torch.equal(a, b), name


def test_structured_pruning_shrinks_and_still_runs(teacher) -> None:
    pruned, report = make_pruned_teacher(teacher, "structured", 0.25, 16)
    assert report.params_after < 0.9 * report.params_before
    assert report.macs_after < 0.9 * report.macs_before
    assert sum(p.numel() for p in pruned.parameters()) == report.params_after
    x = torch.randn(3, 3, 16, 16)
    logits = pruned(x)[0]
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    assert teacher(x)[0].shape == (3, 10)  # the teacher keeps its shapes
    assert sum(p.numel() for p in teacher.parameters()) == report.params_before


def test_structured_pruning_refuses_channel_shuffle_networks() -> None:
    with pytest.raises(ValueError, match="does not support"):
        make_pruned_teacher(build_model("ShuffleV2", 10).eval(), "structured", 0.1, 32)


def test_teacher_logits_are_mixed_before_the_softmax(teacher) -> None:
    pruned, _ = make_pruned_teacher(teacher, "unstructured", 0.3, 16)
    method = R2KD(build_model("resnet8", 10), teacher, R2KDOptions(), pruned)
    x = torch.randn(4, 3, 16, 16)
    z_t, z_p = method.teacher_pair(x)
    assert torch.allclose(z_t, teacher(x)[0]) and torch.allclose(z_p, pruned(x)[0])
    assert not torch.allclose(z_t, z_p)
    assert torch.allclose(method.mix(z_t, z_p), 0.7 * z_t + 0.3 * z_p)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_pruned_teacher_batchnorm_mode(teacher, bn_mode: str) -> None:
    pruned, _ = make_pruned_teacher(teacher, "unstructured", 0.1, 16)
    method = R2KD(build_model("resnet8", 10), teacher, R2KDOptions(pruned_bn=bn_mode), pruned)
    method.train()
    assert not method.teacher.training
    assert method.pruned_teacher.training == (bn_mode == "train")
    stats = [b.clone() for b in pruned.buffers()]
    method.teacher_pair(torch.randn(4, 3, 16, 16))
    changed = any(not torch.equal(a, b) for a, b in zip(stats, pruned.buffers()))
    assert changed == (bn_mode == "train")  # the released quirk updates running statistics
    method.eval()
    assert not method.pruned_teacher.training
