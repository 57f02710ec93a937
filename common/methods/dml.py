"""DML, deep mutual learning (Zhang et al. 2018), as CQKD's online baseline (CQKD Eq. 3).

A cohort of m students of the same architecture trains together; member i minimises

    L_i = CE(y, p^i) + 1/(m-1) * sum_{j != i} KL(p^j || p^i)          (CQKD Eq. 3)

at temperature T (1 in the paper; the KL is multiplied by T^2 like KD, a no-op at T = 1).
The peers' probabilities p^j are detached inside L_i, so L_i reaches only member i's weights.

One optimiser for the cohort: the engine steps a single optimiser over every trainable
parameter on sum_i L_i. Because each L_i only has gradient on member i (the peer terms are
detached), d(sum_i L_i)/d(theta_i) = dL_i/d(theta_i); SGD and AdamW update each parameter from
its own gradient and state alone, so this equals m optimisers with identical settings, each
stepping its own student after all forwards (the released code's order: all forwards, then
per-student updates). The one difference: `train.grad_clip` clips the cohort's joint norm.

The cohort is the engine's student (member 1, the one checkpointed as best.pt) plus m-1 peers
built here with the student's architecture. Every member sees `student.resolution` (the CQKD
sweep runs DML at each resolution); peers are evaluated each epoch as `top1_peer1`, ...; the
CQKD paper reports the best cohort member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least, positive
from common.errors import ConfigError
from common.methods.base import Distiller
from common.methods.losses import kd_loss
from common.methods.registry import register_method
from common.methods.resize import LowResolutionStudent, ResizedInput, checked_resolution
from common.models import build_model


@dataclass
class DMLOptions:
    """Hyper-parameters of DML (CQKD Sec. 4.1: m = 3, T = 1)."""

    cohort: int = at_least(2, 3, why="the student and at least one peer")  # m, student included
    temperature: float = positive(1.0)  # T of the mutual KL (times T^2: a no-op at T = 1)
    ce_weight: float = at_least(0, 1.0)  # weight of each member's cross-entropy
    antialias: bool = False  # released (torchvision < 0.17 tensors); see common.methods.resize


def mutual_losses(
    logits: list[torch.Tensor], targets: torch.Tensor, opts: DMLOptions
) -> dict[str, torch.Tensor]:
    """Eq. 3 for every member: {"ce", "dml"} for member 1, {"ce_peerK", "dml_peerK"} for the
    others. Peers enter member i's KL detached."""
    m = len(logits)
    losses: dict[str, torch.Tensor] = {}
    for i, own in enumerate(logits):
        suffix = "" if i == 0 else f"_peer{i}"
        mimic = sum(
            kd_loss(own, other.detach(), opts.temperature)
            for j, other in enumerate(logits)
            if j != i
        )
        losses[f"ce{suffix}"] = opts.ce_weight * F.cross_entropy(own, targets)
        losses[f"dml{suffix}"] = mimic / (m - 1)
    return losses


@register_method("dml")
class DML(LowResolutionStudent, Distiller):
    """The student plus `cohort - 1` peers trained mutually (Eq. 3), at `student.resolution`."""

    Options = DMLOptions
    needs_teacher = False

    def __init__(
        self, student: nn.Module, peers: list[nn.Module], options: DMLOptions, resolution: int = 0
    ) -> None:
        super().__init__(student, None, options)
        if options.cohort < 2:
            raise ConfigError(f"method.cohort must be >= 2 for DML, got {options.cohort}")
        if len(peers) != options.cohort - 1:
            raise ValueError(f"DML with cohort {options.cohort} needs {options.cohort - 1} peers")
        self.resolution = resolution
        self.peers = nn.ModuleList(ResizedInput(p, resolution, options.antialias) for p in peers)

    @classmethod
    def from_config(cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any) -> DML:
        """Peers: fresh random inits of the student's architecture."""
        opts = cfg.method.options
        peers = [build_model(cfg.student.name, spec.num_classes) for _ in range(opts.cohort - 1)]
        return cls(student, peers, opts, checked_resolution(cfg, spec))

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        small = self.student_input(images)
        logits = [self.student(small)[0], *(peer.net(small)[0] for peer in self.peers)]
        return logits[0], mutual_losses(logits, targets, self.options)

    def compile_targets(self) -> list[nn.Module]:
        """The members' networks themselves (training calls them past the resize wrappers)."""
        return [self.student, *(peer.net for peer in self.peers)]

    def extra_eval_models(self) -> dict[str, nn.Module]:
        """The peers, each resizing its input to the student's resolution."""
        return {f"peer{i + 1}": peer for i, peer in enumerate(self.peers)}
