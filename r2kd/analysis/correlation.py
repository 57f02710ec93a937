"""Correlation-matrix disparity of R2KD Fig. 6 (the CRD and DKD figures of the same kind).

For logits on the same N validation samples, `common.metrics.correlation_matrix` gives the
C x C Pearson correlation between classes' logits; Fig. 6 shows |corr_S - corr_T| as an image
and we summarise it by its mean (`common.metrics.correlation_disparity`). Smaller means the
student reproduces the teacher's inter-class structure more closely.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from common.metrics import correlation_disparity, correlation_matrix


@dataclass
class Disparity:
    """Fig. 6 for one student: the mean |difference| and the (C, C) |difference| matrix."""

    mean: float
    max: float
    matrix: Tensor  # float64, |corr_S - corr_T|


def disparity(student_logits: Tensor, teacher_logits: Tensor) -> Disparity:
    """|corr(student) - corr(teacher)| over the same samples, with its mean and max."""
    matrix = (correlation_matrix(student_logits) - correlation_matrix(teacher_logits)).abs()
    mean = correlation_disparity(student_logits, teacher_logits)
    return Disparity(mean=mean, max=float(matrix.max()), matrix=matrix)
