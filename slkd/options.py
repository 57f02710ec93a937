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
from dataclasses import dataclass, field

from common.errors import ConfigError

# Which networks train in a run (Sec. 3.3 and the sequential reading of Sec. 4.3).
MODES = (
    "parallel",  # Eq. 7: SL-teachers and student learn together, every step (SLKD)
    "sequential_sl_teachers",  # SLKD* stage 1: only the SL-teachers learn (Eqs. 4, 5)
    "sequential_student",  # SLKD* stage 2: the student learns from T + frozen SL-teachers
)
# Whom the student learns from (Table 4's ablation).
STUDENT_SOURCES = (
    "both",  # Eq. 7: lambda L_TS + eta L_SL-TS
    "teacher",  # lambda L_TS only (Table 4, "T" row; this is KD)
    "sl_teachers",  # eta L_SL-TS only (Table 4, "SL-T" row)
)


@dataclass
class SLKDOptions:
    """Hyper-parameters of SLKD; `None` for the SL-term weights means "the same as alpha"."""

    temperature: float = 4.0  # tau in Eqs. 1-5
    ce_weight: float = 0.1  # alpha in Eqs. 1, 2, 4, 5
    kd_weight: float = 0.9  # 1 - alpha in Eqs. 1, 2, 4, 5
    teacher_weight: float = 1.0  # lambda in Eq. 7
    eta: float = 3.0  # eta in Eq. 7 (Sec. 4.1; the released code's default is 1)
    sl_ce_weight: float | None = None  # CE weight inside L_SL-TS (Eq. 3: alpha; released: 1)
    sl_kd_weight: float | None = None  # KD weight inside L_SL-TS (Eq. 3: 1 - alpha; released: 1)
    rho: float = 0.5  # Eq. 6: rho * SL-T1 + (1 - rho) * SL-T2
    num_sl_teachers: int = 2
    fusion_weights: list[float] = field(default_factory=list)  # [] = from rho (see losses.py)
    sl_teacher_arch: str = ""  # "" = the teacher's architecture (the paper)
    detach_sl_teachers: bool = True  # False: the released code's coupling
    student_sources: str = "both"  # both | teacher | sl_teachers
    mode: str = "parallel"  # parallel | sequential_sl_teachers | sequential_student
    sl_teacher_checkpoint: str = ""  # sequential_student: last.pt of the stage-1 run

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"method.mode '{self.mode}' is not one of {', '.join(MODES)}")
        if self.student_sources not in STUDENT_SOURCES:
            raise ConfigError(
                f"method.student_sources '{self.student_sources}' is not one of "
                f"{', '.join(STUDENT_SOURCES)}"
            )
        if self.num_sl_teachers < 1:
            raise ConfigError(
                f"method.num_sl_teachers must be at least 1, got {self.num_sl_teachers}"
            )
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
        elif self.num_sl_teachers == 2 and not 0.0 <= self.rho <= 1.0:
            raise ConfigError(f"method.rho must lie in [0, 1], got {self.rho}")
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
