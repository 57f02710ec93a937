"""The pruned teacher of R2KD (Sec. III-C): a copy of the trained teacher pruned once, no
fine-tuning, whose logits are mixed with the teacher's (Eq. 10, on logits as in the code).

* `unstructured` (the released code): per layer, not global, L1 magnitude pruning of every
  Conv2d and Linear weight, first conv and classifier included, made permanent
  (`torch.nn.utils.prune.l1_unstructured` + `prune.remove`); BatchNorm untouched. Exactly
  round(amount x n) weights of each layer become zero; the network keeps its size.
* `structured`: channel pruning with torch-pruning (Fang et al., "DepGraph", CVPR 2023): the
  fraction `amount` of the output channels of every prunable group, ranked by the L1 norm of
  the group's weights, is removed together with everything that depends on them; the classifier's
  outputs are kept. The copy is smaller and faster (`PruneReport` gives parameters and MACs).
  Networks with channel shuffles (ShuffleNetV1/V2, students only in the paper) are refused:
  torch-pruning 1.6 fails on V1 and does not terminate on V2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

PRUNE_MODES = ("none", "unstructured", "structured")
# Zoo classes that torch-pruning cannot channel-prune (channel shuffle / split).
STRUCTURED_UNSUPPORTED = ("CifarShuffleNetV1", "CifarShuffleNetV2")


@dataclass
class PruneReport:
    """Size of the teacher before and after pruning."""

    mode: str
    amount: float
    params_before: int
    params_after: int
    macs_before: float
    macs_after: float
    zero_fraction: float  # zero weights / weights over Conv2d and Linear layers, after pruning

    def line(self) -> str:
        return (
            f"pruned teacher ({self.mode}, amount {self.amount:g}): params "
            f"{self.params_before / 1e6:.3f}M -> {self.params_after / 1e6:.3f}M, MACs "
            f"{self.macs_before / 1e6:.1f}M -> {self.macs_after / 1e6:.1f}M, zero weights "
            f"{100 * self.zero_fraction:.1f}%"
        )


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """Every Conv2d and Linear of `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def zero_fraction(model: nn.Module) -> float:
    """Share of exactly-zero weights over all Conv2d and Linear weights."""
    weights = [m.weight for m in prunable_layers(model)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / max(total, 1)


def prune_unstructured(model: nn.Module, amount: float) -> nn.Module:
    """In place: zero the `amount` fraction of smallest-|w| weights of each Conv2d/Linear."""
    for module in prunable_layers(model):
        prune.l1_unstructured(module, name="weight", amount=amount)
        prune.remove(module, "weight")
    return model


def _classifier(model: nn.Module, num_classes: int) -> nn.Module | None:
    """The last Linear producing `num_classes` outputs (kept whole by structured pruning)."""
    found = None
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.out_features == num_classes:
            found = module
    return found


def count_macs_params(model: nn.Module, example: torch.Tensor) -> tuple[float, int]:
    """(MACs, parameters) of one forward on `example`, via torch-pruning's counter."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, example)
    return float(macs), int(params)


def prune_structured(model: nn.Module, amount: float, example: torch.Tensor) -> nn.Module:
    """In place: remove `amount` of the channels of each prunable group (L1 group importance)."""
    import torch_pruning as tp

    if type(model).__name__ in STRUCTURED_UNSUPPORTED:
        raise ValueError(
            f"structured pruning does not support {type(model).__name__} (channel shuffle)"
        )
    with torch.no_grad():
        num_classes = model(example)[0].shape[1]
    classifier = _classifier(model, num_classes)
    # torch-pruning traces the dependency graph through autograd: the copy needs gradients on
    model.requires_grad_(True)
    with torch.enable_grad():
        pruner = tp.pruner.MetaPruner(
            model,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=1),
            pruning_ratio=amount,
            ignored_layers=[classifier] if classifier is not None else [],
            output_transform=lambda out: out[0],
        )
        pruner.step()
    model.requires_grad_(False)
    return model


def make_pruned_teacher(
    teacher: nn.Module, mode: str, amount: float, image_size: int
) -> tuple[nn.Module, PruneReport]:
    """A pruned copy of `teacher` (frozen, eval mode) and its size report.

    The teacher itself is not changed. `image_size` shapes the example input that traces the
    network for structured pruning and for counting MACs.
    """
    if mode not in PRUNE_MODES or mode == "none":
        raise ValueError(f"prune mode '{mode}' is not one of unstructured, structured")
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"prune_amount must be in [0, 1), got {amount}")
    was_training = teacher.training
    device = next(teacher.parameters()).device
    example = torch.zeros(1, 3, image_size, image_size, device=device)
    pruned = copy.deepcopy(teacher).eval()
    macs_before, params_before = count_macs_params(pruned, example)
    if mode == "unstructured":  # same shapes: MACs and parameter count do not change
        prune_unstructured(pruned, amount)
        macs_after, params_after = macs_before, params_before
    else:
        prune_structured(pruned, amount, example)
        macs_after, params_after = count_macs_params(pruned, example)
    teacher.train(was_training)
    for p in pruned.parameters():
        p.requires_grad_(False)
    report = PruneReport(
        mode, amount, params_before, params_after, macs_before, macs_after, zero_fraction(pruned)
    )
    return pruned.eval(), report
