"""Entropy analysis of R2KD Sec. IV-E (Figs. 4 and 5): pure tensors in, numbers out.

Fig. 4: for each class, take the validation samples on which the TEACHER is most uncertain
(the top `fraction` of the class by teacher prediction entropy) and compare the students' mean
prediction entropy on exactly those samples; R2KD should give lower entropy than KD there,
i.e. carry more target information where the teacher carries little. Fig. 5 shows the
students' prediction distributions on such samples; its number here is the mean probability
each student puts on the true class of the selected samples.

Entropy is H(p) = -sum_c p_c log p_c of p = softmax(logits) (temperature 1), in nats,
computed in float64 with 0 log 0 = 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

OVERALL = -1  # the `label` of the row that pools every selected sample


def sample_entropy(logits: Tensor) -> Tensor:
    """Per-sample entropy (nats, float64) of softmax(logits) for (N, C) logits."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.detach().double(), dim=1)
    plogp = torch.where(log_p.isneginf(), torch.zeros_like(log_p), log_p.exp() * log_p)
    return -plogp.sum(dim=1)


def per_class_count(class_size: int, fraction: float) -> int:
    """How many of a class's `class_size` samples are kept: ceil(fraction * size), at least 1.

    A relative tolerance of 1e-9 keeps e.g. 0.1 * 30 (= 3.0000000000000004 in floating point)
    at 3.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if class_size <= 0:
        return 0
    return min(class_size, max(1, math.ceil(fraction * class_size * (1 - 1e-9))))


def high_entropy_indices(
    teacher_entropy: Tensor, targets: Tensor, fraction: float = 0.1
) -> dict[int, Tensor]:
    """{class: indices of its most teacher-uncertain samples}, for every class in `targets`.

    Per class c with n_c samples, the `per_class_count(n_c, fraction)` samples of highest
    teacher entropy, ordered by decreasing entropy (equal entropies: lower index first).
    """
    if teacher_entropy.dim() != 1 or teacher_entropy.shape != targets.shape:
        raise ValueError("teacher_entropy and targets must both be (N,)")
    selected: dict[int, Tensor] = {}
    for label in torch.unique(targets).tolist():
        members = (targets == label).nonzero(as_tuple=True)[0]
        order = torch.sort(teacher_entropy[members], descending=True, stable=True).indices
        selected[int(label)] = members[order[: per_class_count(len(members), fraction)]]
    return selected


@dataclass
class EntropyRow:
    """The selected samples of one class (or of all classes, `label == OVERALL`)."""

    label: int
    count: int
    teacher: float  # mean teacher entropy (nats)
    students: dict[str, float] = field(default_factory=dict)  # mean entropy per student
    target_prob: dict[str, float] = field(default_factory=dict)  # mean p(true class) (Fig. 5)


def summarise(
    indices: Tensor,
    label: int,
    teacher_entropy: Tensor,
    student_entropy: Mapping[str, Tensor],
    student_target_prob: Mapping[str, Tensor],
) -> EntropyRow:
    """The means over `indices` of every per-sample quantity."""
    return EntropyRow(
        label=label,
        count=len(indices),
        teacher=float(teacher_entropy[indices].mean()),
        students={k: float(v[indices].mean()) for k, v in student_entropy.items()},
        target_prob={k: float(v[indices].mean()) for k, v in student_target_prob.items()},
    )


def entropy_comparison(
    teacher_logits: Tensor,
    student_logits: Mapping[str, Tensor],
    targets: Tensor,
    fraction: float = 0.1,
) -> tuple[list[EntropyRow], EntropyRow]:
    """Fig. 4's numbers: per class (sorted by label) and overall (every selected sample).

    `student_logits` maps a name (e.g. "r2kd", "kd") to (N, C) logits on the same N samples
    as `teacher_logits`; `targets` are the (N,) true classes.
    """
    for name, logits in student_logits.items():
        if logits.shape != teacher_logits.shape:
            raise ValueError(
                f"student {name!r} logits {tuple(logits.shape)} differ from the "
                f"teacher's {tuple(teacher_logits.shape)}"
            )
    targets = targets.to(teacher_logits.device)
    teacher_entropy = sample_entropy(teacher_logits)
    entropies = {k: sample_entropy(v) for k, v in student_logits.items()}
    target_probs = {
        k: torch.softmax(v.double(), dim=1).gather(1, targets.view(-1, 1)).squeeze(1)
        for k, v in student_logits.items()
    }
    selection = high_entropy_indices(teacher_entropy, targets, fraction)
    rows = [
        summarise(idx, label, teacher_entropy, entropies, target_probs)
        for label, idx in sorted(selection.items())
    ]
    pooled = torch.cat([selection[label] for label in sorted(selection)])
    return rows, summarise(pooled, OVERALL, teacher_entropy, entropies, target_probs)


def most_uncertain_classes(rows: list[EntropyRow], count: int) -> list[EntropyRow]:
    """The `count` rows of highest mean teacher entropy, highest first (Fig. 4's classes)."""
    return sorted(rows, key=lambda row: (-row.teacher, row.label))[:count]


def most_uncertain_samples(teacher_logits: Tensor, count: int) -> Tensor:
    """Indices of the `count` samples of highest teacher entropy, highest first (Fig. 5)."""
    entropy = sample_entropy(teacher_logits)
    return torch.sort(entropy, descending=True, stable=True).indices[:count]
