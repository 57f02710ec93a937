"""SLKD (Liu, Li and Cheng): the student learns from the teacher and from self-learning teachers.

Every step (Sec. 3.3, Fig. 4):
- each SL-teacher i (the teacher's architecture, random init) learns from the frozen teacher:
  L_T->SL-Ti = alpha CE(y, z_i) + (1 - alpha) T^2 KL(p_T || p_i)            (Eqs. 2, 4, 5);
- their logits are fused: z_SL = rho z_1 + (1 - rho) z_2                     (Eq. 6);
- the student learns from both: lambda L_TS + eta L_SL-TS                     (Eqs. 1, 3, 7),
  L_TS = alpha CE(y, z_s) + (1 - alpha) T^2 KL(p_T || p_s),
  L_SL-TS = alpha' CE(y, z_s) + (1 - alpha)' T^2 KL(p_SL || p_s).
One backward of the summed loss trains the student and the SL-teachers with the engine's one
optimiser (the released code's three SGD optimisers have identical settings: equivalent).
z_SL is detached in the student's term by default (the paper's teacher-to-student direction);
`detach_sl_teachers: false` lets that term pull the SL-teachers toward the student, as the
released code does. The teacher never receives gradients.

Modes (`options.py`): `parallel` (the above), and SLKD* as two runs: `sequential_sl_teachers`
trains only the SL-teachers (Eqs. 4, 5; the student is frozen and never run), then
`sequential_student` loads them from that run's last.pt, freezes them and trains the student by
Eq. 7. `student_sources` gives Table 4's ablation (teacher only / SL-teachers only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.errors import ConfigError
from common.methods.base import Distiller
from common.methods.registry import register_method
from slkd.losses import fuse_logits, fusion_weights, supervised_kd
from slkd.options import SLKDOptions
from slkd.sl_teachers import build_sl_teachers, freeze, load_sl_teachers


@register_method("slkd")
class SLKD(Distiller):
    """Student + frozen teacher + `num_sl_teachers` self-learning teachers (`sl_teachers`)."""

    Options = SLKDOptions

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        options: SLKDOptions,
        sl_teachers: Sequence[nn.Module],
    ) -> None:
        super().__init__(student, teacher, options)
        if len(sl_teachers) != options.num_sl_teachers:
            raise ConfigError(
                f"{len(sl_teachers)} SL-teachers given, method.num_sl_teachers is "
                f"{options.num_sl_teachers}"
            )
        self.sl_teachers = nn.ModuleList(sl_teachers)
        self.fusion = fusion_weights(len(sl_teachers), options.rho, options.fusion_weights)
        self.trains_student = options.mode != "sequential_sl_teachers"
        self.trains_sl_teachers = options.mode != "sequential_student"
        if not self.trains_student:
            freeze(self.student)
        if not self.trains_sl_teachers:
            freeze(self.sl_teachers)

    @classmethod
    def from_config(
        cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any
    ) -> SLKD:
        """SL-teachers of `sl_teacher_arch` (default: the teacher's); loaded in stage 2."""
        opts: SLKDOptions = cfg.method.options
        arch = opts.sl_teacher_arch or cfg.teacher.name
        sl_teachers = build_sl_teachers(arch, opts.num_sl_teachers, spec.num_classes)
        if opts.mode == "sequential_student":
            load_sl_teachers(sl_teachers, opts.sl_teacher_checkpoint)
        return cls(student, teacher, opts, sl_teachers)

    def train(self, mode: bool = True) -> SLKD:
        super().train(mode)
        if not self.trains_student:
            self.student.eval()
        if not self.trains_sl_teachers:
            self.sl_teachers.eval()
        return self

    # ------------------------------------------------------------------ forward
    def _sl_teacher_terms(
        self, images: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Each SL-teacher's logits and, when they learn, its Eq. 4/5 terms."""
        o = self.options
        if not self.trains_sl_teachers:
            with torch.no_grad():
                return [net(images)[0] for net in self.sl_teachers], {}
        logits, losses = [], {}
        for i, net in enumerate(self.sl_teachers, start=1):
            z, _ = net(images)
            ce, kd = supervised_kd(
                z, targets, teacher_logits, o.ce_weight, o.kd_weight, o.temperature
            )
            losses[f"sl_teacher{i}_ce"], losses[f"sl_teacher{i}_kd"] = ce, kd
            logits.append(z)
        return logits, losses

    def _student_terms(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        teacher_logits: torch.Tensor | None,
        sl_logits: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """lambda L_TS (Eq. 1) and eta L_SL-TS (Eq. 3) as named, weighted terms (Eq. 7)."""
        o = self.options
        ce = F.cross_entropy(logits, targets)
        losses: dict[str, torch.Tensor] = {}
        if o.student_sources in ("both", "teacher"):
            lam = o.teacher_weight
            losses["ce"], losses["kd"] = supervised_kd(
                logits, targets, teacher_logits, lam * o.ce_weight, lam * o.kd_weight,
                o.temperature, ce=ce,
            )  # fmt: skip
        if o.student_sources in ("both", "sl_teachers"):
            fused = fuse_logits(sl_logits, self.fusion)
            if o.detach_sl_teachers:
                fused = fused.detach()
            losses["sl_ce"], losses["sl_kd"] = supervised_kd(
                logits, targets, fused, o.eta * o.sl_ce, o.eta * o.sl_kd, o.temperature, ce=ce
            )
        return losses

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        needs_teacher = self.trains_sl_teachers or self.options.student_sources != "sl_teachers"
        teacher_logits = self.teacher_logits(images) if needs_teacher else None
        sl_logits, sl_losses = self._sl_teacher_terms(images, targets, teacher_logits)
        if not self.trains_student:  # SLKD* stage 1: the student is never run
            return fuse_logits(sl_logits, self.fusion).detach(), sl_losses
        logits, _ = self.student(images)
        losses = self._student_terms(logits, targets, teacher_logits, sl_logits)
        return logits, {**losses, **sl_losses}

    # --------------------------------------------------------- engine hooks
    def extra_eval_models(self) -> dict[str, nn.Module]:
        """The SL-teachers while they learn: their accuracy is logged each epoch (Fig. 3)."""
        if not self.trains_sl_teachers:
            return {}
        return {f"sl_teacher{i}": net for i, net in enumerate(self.sl_teachers, start=1)}

    def reference_models(self) -> dict[str, nn.Module]:
        """The teacher, and in SLKD* stage 2 the frozen SL-teachers (measured once)."""
        refs = super().reference_models()
        if not self.trains_sl_teachers:
            refs.update({f"sl_teacher{i}": n for i, n in enumerate(self.sl_teachers, start=1)})
        return refs

    def compile_targets(self) -> list[nn.Module]:
        """Student, teacher and every SL-teacher (frozen ones included)."""
        nets = [self.student, self.teacher, *self.sl_teachers]
        return [n for n in nets if n is not None]
