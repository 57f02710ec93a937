"""SLKD's recipe keys (everything under `method:`), with the paper's values as defaults.

Paper (Sec. 3, 4.1): alpha = 0.1 in Eqs. 1-5 (CE weight; the KD weight is 1 - alpha = 0.9, the
original KD's weights), T = 4, lambda = 1 and eta = 3 in Eq. 7, two SL-teachers fused with
rho = 0.5 (Eq. 6). ImageNet (released config): T = 1, CE/KD 0.5/0.5.

Released-code values (METHODS.md): the student's SL term is eta * (1 CE + 1 KD) with eta = 1,
and the SL-teachers' logits are not detached in it (`sl_ce_weight: 1`, `sl_kd_weight: 1`,
`eta: 1`, `detach_sl_teachers: false`; recipe `..._released.yaml`).
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

from common.config.validate import at_least, positive, ranged
from common.errors import ConfigError

# Which networks train in a run (Sec. 3.3 and the sequential reading of Sec. 4.3).
Mode = Literal[
    "parallel",  # Eq. 7: SL-teachers and student learn together, every step (SLKD)
    "sequential_sl_teachers",  # SLKD* stage 1: only the SL-teachers learn (Eqs. 4, 5)
    "sequential_student",  # SLKD* stage 2: the student learns from T + frozen SL-teachers
]
# Whom the student learns from (Table 4's ablation).
StudentSources = Literal[
    "both",  # Eq. 7: lambda L_TS + eta L_SL-TS
    "teacher",  # lambda L_TS only (Table 4, "T" row; this is KD)
    "sl_teachers",  # eta L_SL-TS only (Table 4, "SL-T" row)
]
MODES = typing.get_args(Mode)
STUDENT_SOURCES = typing.get_args(StudentSources)


@dataclass
class SLKDOptions:
    """Hyper-parameters of SLKD; `None` for the SL-term weights means "the same as alpha".

    Choices and ranges are declared on the fields (checked when a recipe is read); the checks
    between keys are `__post_init__`'s."""

    temperature: float = positive(4.0)  # tau in Eqs. 1-5 (ImageNet 1.0)
    ce_weight: float = at_least(0, 0.1)  # alpha in Eqs. 1, 2, 4, 5 (ImageNet 0.5)
    kd_weight: float = at_least(0, 0.9)  # 1 - alpha in Eqs. 1, 2, 4, 5 (ImageNet 0.5)
    teacher_weight: float = at_least(0, 1.0)  # lambda in Eq. 7
    eta: float = at_least(0, 3.0)  # eta in Eq. 7 (Sec. 4.1; the released code's default is 1)
    sl_ce_weight: float | None = at_least(0, None)  # CE weight in L_SL-TS; null: alpha
    sl_kd_weight: float | None = at_least(0, None)  # KD weight in L_SL-TS; null: 1 - alpha
    rho: float = ranged(0.5, ge=0, le=1)  # Eq. 6: rho * SL-T1 + (1 - rho) * SL-T2
    num_sl_teachers: int = at_least(1, 2)  # more than 2 without fusion_weights are averaged
    fusion_weights: list[float] = at_least(0, [])  # one per SL-teacher, sum 1; [] = from rho
    sl_teacher_arch: str = ""  # "" = the teacher's architecture (the paper)
    detach_sl_teachers: bool = True  # false: released coupling (the student's term trains them too)
    student_sources: StudentSources = "both"  # whom the student learns from (Table 4; both: Eq. 7)
    mode: Mode = "parallel"  # sequential_*: SLKD*'s stage 1 (SL-teachers), 2 (student)
    sl_teacher_checkpoint: str = ""  # sequential_student: last.pt of the stage-1 run

    def __post_init__(self) -> None:
        """The checks between keys (a single key's choices and range are declared above)."""
        if self.fusion_weights:
            if len(self.fusion_weights) != self.num_sl_teachers:
                raise ConfigError(
                    f"method.fusion_weights has {len(self.fusion_weights)} weights for "
                    f"{self.num_sl_teachers} SL-teachers: give one per SL-teacher"
                )
            if not math.isclose(sum(self.fusion_weights), 1.0, abs_tol=1e-6):
                raise ConfigError(
                    f"method.fusion_weights {self.fusion_weights} must sum to 1 "
                    f"(they sum to {sum(self.fusion_weights):.6g})"
                )
        if self.mode == "sequential_student" and not self.sl_teacher_checkpoint:
            raise ConfigError(
                "method.mode sequential_student needs method.sl_teacher_checkpoint=PATH: the "
                "last.pt of a `mode: sequential_sl_teachers` run (SLKD* stage 1)"
            )

    @property
    def sl_ce(self) -> float:
        """CE weight inside L_SL-TS (Eq. 3)."""
        return self.ce_weight if self.sl_ce_weight is None else self.sl_ce_weight

    @property
    def sl_kd(self) -> float:
        """KD weight inside L_SL-TS (Eq. 3)."""
        return self.kd_weight if self.sl_kd_weight is None else self.sl_kd_weight
