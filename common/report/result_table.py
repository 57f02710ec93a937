"""The results table as cells (shared by the markdown and the HTML page), and its legend."""

from __future__ import annotations

from dataclasses import dataclass

from common.report.baselines import SIGNIFICANT_SE, Gap
from common.report.grouping import Row
from common.report.result_rows import Results, short_label
from common.report.run_states import DONE, FAILED, MISSING, PARTIAL
from common.report.table import DASH, format_duration, format_mean_std, format_notes

__all__ = [
    "NO_SE_MARK",
    "SIGNIFICANT_MARK",
    "Table",
    "format_gap",
    "format_pair",
    "format_results_markdown",
    "legend_lines",
    "results_table",
    "row_seconds",
    "total_seconds",
]

SIGNIFICANT_MARK = "*"  # |gap| > 2 standard errors
NO_SE_MARK = "†"  # a side has a single seed: no standard error
GAP_COLUMNS = ("vs vanilla", "vs KD")


@dataclass
class Table:
    """Header, per-column alignment (``left`` / ``right``) and rows of text cells."""

    header: list[str]
    align: list[str]
    rows: list[list[str]]


def format_gap(gap: Gap | None) -> str:
    """``+2.31*`` beyond two standard errors, ``+0.40`` within, ``+0.40†`` without one."""
    if gap is None:
        return DASH
    mark = {True: SIGNIFICANT_MARK, False: "", None: NO_SE_MARK}[gap.significant]
    return f"{gap.diff:+.2f}{mark}"


def format_pair(pair: tuple[str, Gap | None] | None) -> str:
    """``+1.20* (fitnet)``: the gap to the row's named baseline; a dash without one."""
    if pair is None:
        return DASH
    return f"{format_gap(pair[1])} ({short_label(pair[0])})"


def row_seconds(row: Row) -> float | None:
    """Training time summed over a row's finished runs (``None`` when none recorded one)."""
    times = [r.summary["train_seconds"] for r in row.runs if "train_seconds" in (r.summary or {})]
    return sum(times) if times else None


def total_seconds(results: Results) -> tuple[float, int]:
    """Training time summed over every finished run of the page, and the number of runs."""
    times = [
        r.summary["train_seconds"]
        for result in results.rows
        for r in result.row.runs
        if "train_seconds" in (r.summary or {})
    ]
    return sum(times), len(times)


def results_table(results: Results) -> Table:
    """One line per row: label, method, n, top-1, paper, gaps, time and run states."""
    states = [DONE, PARTIAL, FAILED] + ([MISSING] if results.expected else [])
    papers = any(r.row.paper_top1 is not None for r in results.rows)
    header = ["row", "method", "n", "top-1 (last)"] + (["paper", "vs paper"] if papers else [])
    header += [*GAP_COLUMNS]
    header += ["vs base"] if results.paired else []
    header += ["time / run", "time / row", *states]
    teachers = {id(r) for r in results.teacher_rows}
    rows = []
    for r in results.rows:
        row = r.row
        method = row.method or DASH
        if id(row) in teachers:
            method += " (teacher)"
        rows.append(
            [
                row.label,
                method,
                str(row.n),
                format_mean_std(row.top1_mean, row.top1_std),
                *(
                    [
                        DASH if row.paper_top1 is None else f"{row.paper_top1:.2f}",
                        DASH if row.gap is None else f"{row.gap:+.2f}",
                    ]
                    if papers
                    else []
                ),
                format_gap(r.gaps.get("vanilla")),
                format_gap(r.gaps.get("kd")),
                *([format_pair(r.pair)] if results.paired else []),
                format_duration(row.train_seconds_mean),
                format_duration(row_seconds(row)),
                *(str(r.states[s]) for s in states),
            ]
        )
    align = ["left", "left"] + ["right"] * (len(header) - 2)
    return Table(header=header, align=align, rows=rows)


def legend_lines(results: Results) -> list[str]:
    """What the columns and marks mean, then failed runs' error lines and notes."""
    lines = [
        "top-1: mean ± sample std over the n seeds that finished, of the last epoch's top-1 (%)"
        + (
            "; vs paper: our mean minus the recipe's `paper.top1`."
            if any(r.row.paper_top1 is not None for r in results.rows)
            else " (no recipe here has a paper number)."
        ),
        "vs vanilla / vs KD: our mean minus that of the `vanilla` / `kd` row with the same data "
        f"set, subset, epochs and student; `{SIGNIFICANT_MARK}` marks a gap larger than "
        f"{SIGNIFICANT_SE:g} standard errors, √(s₁²/n₁ + s₂²/n₂); `{NO_SE_MARK}`: a side has one "
        f"seed, so no standard error; {DASH}: no such row, or the row is that baseline."
        + (
            " vs base: the gap to the row named in parentheses (`--pair`), marked the same way."
            if results.paired
            else ""
        ),
        "time / run: mean training time of a finished seed; time / row: their sum. done: "
        "`summary.json`; partial: started, no `summary.json` yet (resumes from `last.pt`); "
        "failed: the sweep's `sweep.failed` marker (its error line below)"
        + ("; missing: listed by --expect, no folder." if results.expected else "."),
    ]
    seconds, runs = total_seconds(results)
    if runs:
        lines.append(
            f"training time of all {runs} finished runs, summed: {format_duration(seconds)} "
            "(runs that share a machine overlap, so the wall time can be shorter)."
        )
    for r in results.rows:
        for folder, line in r.failures:
            lines.append(f"failed: {folder}: {line or '(no error line recorded)'}")
    lines += [f"note: {n}" for n in results.notes]
    lines += format_notes([r.row for r in results.rows])
    return lines


def _cell(text: str) -> str:
    """Escape a markdown table cell."""
    return text.replace("|", "\\|") or DASH


def format_results_markdown(results: Results) -> str:
    """The table in markdown, then the legend as a list."""
    table = results_table(results)
    rule = {"left": "---", "right": "---:"}
    lines = [
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join(rule[a] for a in table.align) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    lines.append("")
    lines += [f"- {line}" for line in legend_lines(results)]
    return "\n".join(lines) + "\n"
