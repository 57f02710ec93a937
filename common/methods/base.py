"""The Distiller interface the engine trains (mdistiller's shape).

A Distiller owns the student, an optional frozen teacher and anything else the method trains
(e.g. SLKD's self-learning teachers, DML's cohort, FitNet's regressor). Each epoch the engine
calls `start_epoch(epoch)`, then, each step, `forward_train(batch)` with a `Batch` (images,
targets, sample indices, ...), sums the named losses it returns, and steps one optimiser over
`trainable_parameters()`. A method that needs more of the batch than images and targets names
the fields in `batch_fields` (e.g. `("indices",)`); the engine checks them once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from common.batch import Batch


@dataclass
class NoOptions:
    """A method without hyper-parameters of its own."""


class Distiller(nn.Module):
    """Base class: subclasses set `Options` (a dataclass of hyper-parameters) and
    implement `forward_train`.

    The teacher is frozen (no gradients) and kept in eval mode whatever `train()` is called with.
    """

    Options: ClassVar[type] = NoOptions
    needs_teacher: ClassVar[bool] = True
    method_name: ClassVar[str] = ""
    batch_fields: ClassVar[tuple[str, ...]] = ()  # Batch fields beyond images and targets

    def __init__(self, student: nn.Module, teacher: nn.Module | None, options: Any = None) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.options = self.Options() if options is None else options
        self.epoch = 0  # the current epoch, counted from 0 (set by `start_epoch`)
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
            teacher.eval()

    @classmethod
    def from_config(
        cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any
    ) -> Distiller:
        """Build from the run's recipe and the data's spec; methods that need more than the
        student, teacher and options (extra networks, feature shapes) override this."""
        return cls(student, teacher, cfg.method.options)

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def start_epoch(self, epoch: int) -> None:
        """Called by the engine before each epoch's steps (and when resuming inside one):
        methods whose loss changes with the epoch (a warm-up) read `self.epoch`."""
        self.epoch = epoch

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.forward_train(batch)

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One training step's forward: (student logits, {loss name: weighted loss}).

        The engine sums the losses and back-propagates.
        """
        raise NotImplementedError

    def forward_eval(self, images: torch.Tensor) -> torch.Tensor:
        """The student's logits for evaluation images."""
        return self.student(images)[0]

    def teacher_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """The frozen teacher's `(logits, features)` without building a graph."""
        assert self.teacher is not None
        with torch.no_grad():
            return self.teacher(images)

    def student_and_teacher(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, Any], dict[str, Any]]:
        """(student logits, student features, teacher features): what a feature method's
        `losses` reads (and what a plug-in such as SoKD reuses without a second forward)."""
        logits, features = self.student(images)
        _, teacher_features = self.teacher_outputs(images)
        return logits, features, teacher_features

    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's logits without building a graph."""
        assert self.teacher is not None
        with torch.no_grad():
            return self.teacher(images)[0]

    def trained_modules(self) -> dict[str, nn.Module]:
        """The child modules the engine trains (with a parameter that requires gradients): the
        only ones wrapped in DistributedDataParallel and converted by `train.sync_bn`. The
        frozen teacher (and any other frozen network) stays outside."""
        return {
            name: child
            for name, child in self.named_children()
            if child is not self.teacher and any(p.requires_grad for p in child.parameters())
        }

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Everything the engine's optimiser updates (the teacher never)."""
        return [p for p in self.parameters() if p.requires_grad]

    def capturable(self) -> str:
        """'' when a CUDA graph can capture this method's whole step; else why not (one
        line, shown when `train.graph=cudagraph` is refused)."""
        return ""

    def compile_targets(self) -> list[nn.Module]:
        """The networks `train.compile` compiles (the losses stay eager)."""
        nets = [self.student, self.teacher, *self.extra_eval_models().values()]
        return [n for n in nets if n is not None]

    def extra_eval_models(self) -> dict[str, nn.Module]:
        """Other trained networks whose accuracy is logged each epoch (e.g. SL-teachers)."""
        return {}

    def reference_models(self) -> dict[str, nn.Module]:
        """Fixed networks whose accuracy is measured once before training."""
        return {"teacher": self.teacher} if self.teacher is not None else {}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint must hold to resume the method (everything but the teacher)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("teacher.")}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore `trainable_state_dict()`; the teacher stays as loaded."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("teacher.")]
        if missing or unexpected:
            raise ValueError(
                f"checkpoint does not fit method '{self.method_name}': "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}"
            )

    def epoch_metrics(self) -> dict[str, Any]:
        """The method's own values for this epoch's record (e.g. a learned policy), logged
        beside the losses in metrics.jsonl; JSON-serialisable."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """State outside the modules that must come back on resume (e.g. an inner optimiser)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore `extra_state()`."""
