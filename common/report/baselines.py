"""Baselines of a row: the vanilla and KD rows it is measured against, the gap and its error.

A row's baseline of method ``m`` (``vanilla`` or ``kd``) is a row of that method with the same
`BASELINE_KEYS` (data set and subset, epochs, student and its input resolution): a teacher
trained with ``vanilla`` is not the baseline of its students, nor a 32-pixel student that of a
16-pixel one. Other baselines (SoKD's base method, CQKD's low-resolution student) are named
pairs (`pair_gaps`). The gap is the difference of the two top-1 means; its
standard error is that of a difference of two independent means, sqrt(s1²/n1 + s2²/n2), with
the sample standard deviations over seeds. A gap is marked when it exceeds twice that error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from common.report.grouping import Row, format_value
from common.report.runs import Run, cfg_get

__all__ = [
    "BASELINE_KEYS",
    "BASELINE_METHODS",
    "Gap",
    "baseline_key",
    "choose_baseline",
    "choose_teacher",
    "gap_between",
]

BASELINE_KEYS = ("data.name", "data.subset", "train.epochs", "student.name", "student.resolution")
BASELINE_METHODS = ("vanilla", "kd")
SIGNIFICANT_SE = 2.0  # a gap is marked when |gap| > SIGNIFICANT_SE standard errors


@dataclass(frozen=True)
class Gap:
    """``diff`` = row mean - baseline mean (points); ``se`` is None when a side has one seed."""

    diff: float
    se: float | None

    @property
    def significant(self) -> bool | None:
        """Whether ``|diff| > 2 se``; None when the standard error is unknown."""
        return None if self.se is None else abs(self.diff) > SIGNIFICANT_SE * self.se


def baseline_key(runs: Sequence[Run]) -> tuple[str, ...]:
    """The values of `BASELINE_KEYS` in the first run's config (``""`` where unset)."""
    config = runs[0].config if runs else {}
    out = []
    for key in BASELINE_KEYS:
        value = cfg_get(config, key)
        out.append("" if value is None else format_value(value))
    return tuple(out)


def gap_between(row: Row, base: Row) -> Gap | None:
    """The gap of ``row`` to ``base``, or None when either has no top-1."""
    if row.top1_mean is None or base.top1_mean is None:
        return None
    se = None
    if row.top1_std is not None and base.top1_std is not None and row.n > 1 and base.n > 1:
        se = math.sqrt(row.top1_std**2 / row.n + base.top1_std**2 / base.n)
    return Gap(row.top1_mean - base.top1_mean, se)


def _preference(row: Row) -> tuple[int, int, str]:
    """Sort key among candidate baselines: the plain recipe (no override) first, then most seeds."""
    return (0 if row.label == row.recipe else 1, -row.n, row.label)


def choose_baseline(candidates: Sequence[Row]) -> Row | None:
    """The baseline among rows of one method and key that have a top-1 (None when none has)."""
    usable = [r for r in candidates if r.top1_mean is not None]
    return min(usable, key=_preference) if usable else None


def choose_teacher(row: Row, subset: str, vanilla_rows: Sequence[tuple[Row, str]]) -> Row | None:
    """The row that trained ``row``'s teacher: method vanilla, student = ``row.teacher``.

    ``vanilla_rows`` are ``(row, its data.subset)``; one on the same data set is required, one
    on the same subset preferred.
    """
    if not row.teacher:
        return None
    fits = [
        (r, s)
        for r, s in vanilla_rows
        if r.student == row.teacher and r.data == row.data and r.top1_mean is not None
    ]
    if not fits:
        return None
    return min(fits, key=lambda rs: (rs[1] != subset, *_preference(rs[0])))[0]
