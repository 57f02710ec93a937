"""Markdown and CSV tables of the entropy analysis (R2KD Figs. 4, 5)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from r2kd.analysis.entropy import OVERALL, EntropyRow


def class_name(row: EntropyRow, class_names: Sequence[str]) -> str:
    """The class's name (its index when unnamed); 'all' for the pooled row."""
    if row.label == OVERALL:
        return "all"
    return class_names[row.label] if row.label < len(class_names) else str(row.label)


def entropy_columns(students: Sequence[str]) -> list[str]:
    """Column headers: class, count, teacher H, each student's H and p(true class)."""
    return [
        "class",
        "samples",
        "H(teacher)",
        *(f"H({s})" for s in students),
        *(f"p_true({s})" for s in students),
    ]


def entropy_cells(row: EntropyRow, class_names: Sequence[str], digits: int) -> list[str]:
    """One row's cells, numbers rounded to `digits` decimals."""
    return [
        class_name(row, class_names),
        str(row.count),
        f"{row.teacher:.{digits}f}",
        *(f"{v:.{digits}f}" for v in row.students.values()),
        *(f"{v:.{digits}f}" for v in row.target_prob.values()),
    ]


def entropy_markdown(
    rows: Sequence[EntropyRow], overall: EntropyRow, class_names: Sequence[str]
) -> str:
    """A markdown table of `rows` followed by the pooled row (entropies in nats)."""
    header = entropy_columns(list(overall.students))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in [*rows, overall]:
        lines.append("| " + " | ".join(entropy_cells(row, class_names, 3)) + " |")
    return "\n".join(lines)


def write_entropy_csv(
    path: str | Path, rows: Sequence[EntropyRow], overall: EntropyRow, class_names: Sequence[str]
) -> Path:
    """Every class's row and the pooled row, 6 decimals."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", *entropy_columns(list(overall.students))])
        for row in [*rows, overall]:
            writer.writerow([row.label, *entropy_cells(row, class_names, 6)])
    return path
