"""The comparison table: markdown for the terminal, CSV with unformatted numbers, note lines."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

from common.report.grouping import Row

__all__ = [
    "CSV_COLUMNS",
    "DASH",
    "format_duration",
    "format_markdown",
    "format_mean_std",
    "format_notes",
    "write_csv",
]

DASH = "—"


def _fmt(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or a dash."""
    return DASH if value is None else f"{value:.{digits}f}"


def format_mean_std(mean: float | None, std: float | None) -> str:
    """``mean ± std``, or just the mean when there is no std (one seed)."""
    if mean is None:
        return DASH
    return _fmt(mean) if std is None else f"{mean:.2f} ± {std:.2f}"


def format_duration(seconds: float | None) -> str:
    """Seconds as ``42s``, ``12m05s`` or ``3h07m``."""
    if seconds is None:
        return DASH
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _fmt_seeds(row: Row) -> str:
    """The row's seeds, ``0, 1``; a repeated seed as ``0 (×2)``."""
    parts = []
    for seed in row.seeds:
        count = len(row.seed_runs.get(seed, ()))
        parts.append(seed if count <= 1 else f"{seed} (×{count})")
    return ", ".join(parts)


def _pair(row: Row) -> str:
    """``teacher → student``, or the student alone when there is no teacher."""
    if row.teacher and row.student:
        return f"{row.teacher} → {row.student}"
    return row.student or row.teacher or DASH


def _cell(text: str) -> str:
    """Escape a markdown table cell."""
    return text.replace("|", "\\|") or DASH


def format_markdown(rows: Sequence[Row], *, metric: str = "top1") -> str:
    """The comparison table in markdown, one line per row.

    Top-1, top-5 and the gap are in percent points; ECE is shown in percent (it is a fraction
    in ``summary.json``); train time is the mean wall time of the seeds. ``metric`` names the
    number the gap was computed from (see `common.report.grouping.summarise`).
    """
    gap_name = "gap (last − paper)" if metric == "top1" else "gap (best − paper)"
    header = [
        "recipe",
        "method",
        "teacher → student",
        "data",
        "n seeds",
        "seeds",
        "top-1 (last)",
        "top-1 (best epoch)",
        "top-5",
        "paper top-1",
        "paper top-5",
        gap_name,
        "ECE (%)",
        "train time",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 4 + ["---:"] * (len(header) - 4)) + "|",
    ]
    for r in rows:
        cells = [
            _cell(r.label),
            _cell(r.method),
            _cell(_pair(r)),
            _cell(r.data),
            str(r.n),
            _cell(_fmt_seeds(r)),
            format_mean_std(r.top1_mean, r.top1_std),
            format_mean_std(r.top1_best_mean, r.top1_best_std),
            _fmt(r.top5_mean),
            _fmt(r.paper_top1),
            _fmt(r.paper_top5),
            DASH if r.gap is None else f"{r.gap:+.2f}",
            DASH if r.ece_mean is None else f"{100.0 * r.ece_mean:.2f}",
            format_duration(r.train_seconds_mean),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_notes(rows: Sequence[Row]) -> list[str]:
    """``note: <row label>: <paper.note>`` for each row whose recipe has a note."""
    return [f"note: {r.label}: {' '.join(r.paper_note.split())}" for r in rows if r.paper_note]


CSV_COLUMNS = [
    "recipe",
    "label",
    "method",
    "teacher",
    "student",
    "data",
    "n_seeds",
    "seeds",
    "n_runs",
    "top1_mean",
    "top1_std",
    "top1_best_mean",
    "top1_best_std",
    "top5_mean",
    "paper_top1",
    "paper_top5",
    "paper_table",
    "gap",
    "ece_mean",
    "train_seconds_mean",
    "note",
]


def write_csv(rows: Sequence[Row], file: str | os.PathLike[str]) -> None:
    """Write the table as CSV with unformatted numbers (empty cells where a value is missing).

    Columns are `CSV_COLUMNS`. ``seeds`` lists every run's seed, space-separated (a repeated
    seed appears once per run; ``n_seeds`` counts it once); ``gap`` is relative to the metric
    chosen in `summarise`; ``ece_mean`` is a fraction.
    """

    def raw(value: Any) -> Any:
        return "" if value is None else value

    with open(file, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            seeds = " ".join(s for s in r.seeds for _ in r.seed_runs.get(s, [None]))
            writer.writerow(
                [
                    r.recipe,
                    r.label,
                    r.method,
                    r.teacher,
                    r.student,
                    r.data,
                    r.n,
                    seeds,
                    r.n_runs,
                    raw(r.top1_mean),
                    raw(r.top1_std),
                    raw(r.top1_best_mean),
                    raw(r.top1_best_std),
                    raw(r.top5_mean),
                    raw(r.paper_top1),
                    raw(r.paper_top5),
                    r.paper_table,
                    raw(r.gap),
                    raw(r.ece_mean),
                    raw(r.train_seconds_mean),
                    r.paper_note,
                ]
            )
