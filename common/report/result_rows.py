"""The results page's rows: compare's rows (seeds pooled), each with its run states and gaps.

Runs are grouped exactly as `common.report.grouping.summarise` groups them, unfinished ones
included, so that a failed or partial seed is counted in the row it belongs to; the statistics
(n, mean, std, time) come from the finished runs only. A run folder without ``config.yaml``
(a run that failed before starting) and an expected folder that does not exist are counted in
the row of their sibling folders (``<label>/seed0`` next to ``<label>/seed1``), or in a row of
their own named after their parent folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.report.baselines import (
    BASELINE_METHODS,
    Gap,
    baseline_key,
    choose_baseline,
    choose_teacher,
    gap_between,
)
from common.report.grouping import Row, run_warnings, summarise
from common.report.run_states import (
    FAILED,
    MISSING,
    STATES,
    ResultsError,
    failure_line,
    find_run_dirs,
    has_run_files,
    run_state,
)
from common.report.runs import Run, load_run

__all__ = ["ResultRow", "Results", "build_results", "empty_row", "link_pairs", "short_label"]

_METHOD_ORDER = {m: i for i, m in enumerate(BASELINE_METHODS)}


@dataclass
class ResultRow:
    """One row of the results table."""

    row: Row  # statistics over the finished seeds (n = 0 when none finished)
    key: tuple[str, ...]  # data.name, data.subset, train.epochs, student.name
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    failures: list[tuple[Path, str]] = field(default_factory=list)  # (folder, last error line)
    gaps: dict[str, Gap | None] = field(default_factory=dict)  # baseline method -> gap
    baselines: dict[str, Row] = field(default_factory=dict)  # baseline method -> its row
    teacher: Row | None = None  # the vanilla row that trained this row's teacher
    folders: list[Path] = field(default_factory=list)  # every folder counted in this row
    pair: tuple[str, Gap | None] | None = None  # (its named baseline's label, the gap to it)

    @property
    def label(self) -> str:
        """The row's label (compare's)."""
        return self.row.label


@dataclass
class Results:
    """Everything the page shows."""

    rows: list[ResultRow]
    paths: list[str]
    expected: bool  # whether a --expect file was given (the ``missing`` column is shown)
    paired: bool = False  # whether named pairs were given (the ``vs base`` column is shown)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def teacher_rows(self) -> list[Row]:
        """The rows that trained another row's teacher."""
        seen: dict[int, Row] = {}
        for r in self.rows:
            if r.teacher is not None:
                seen.setdefault(id(r.teacher), r.teacher)
        return list(seen.values())


def empty_row(label: str) -> Row:
    """A row without any finished run (its runs are missing, failed or without config)."""
    return Row(
        recipe=label,
        label=label,
        method="",
        teacher="",
        student="",
        data="",
        n=0,
        n_runs=0,
        top1_mean=None,
        top1_std=None,
        top1_best_mean=None,
        top1_best_std=None,
        top5_mean=None,
        paper_top1=None,
        paper_top5=None,
        paper_table="",
        paper_note="",
        gap=None,
        ece_mean=None,
        train_seconds_mean=None,
    )


def _finished_only(row: Row, done: set[Path]) -> Row:
    """``row`` restricted to its finished runs (the statistics already are)."""
    seed_runs = {s: [p for p in ps if p in done] for s, ps in row.seed_runs.items()}
    seed_runs = {s: ps for s, ps in seed_runs.items() if ps}
    runs = [r for r in row.runs if r.path in done]
    return replace(
        row,
        runs=runs,
        seed_runs=seed_runs,
        seeds=list(seed_runs),
        n=len(seed_runs),
        n_runs=len(runs),
    )


def _display(path: Path) -> str:
    """A folder as shown: relative to the current folder when below it."""
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def _count(result: ResultRow, folder: Path, state: str) -> None:
    """Count ``folder`` in ``result`` with ``state`` (and its error line when failed)."""
    result.states[state] += 1
    result.folders.append(folder)
    if state == FAILED:
        result.failures.append((folder, failure_line(folder)))


def _group(configured: Sequence[Run], states: dict[Path, str]) -> list[ResultRow]:
    """Rows of the runs that have a config, finished or not."""
    done = {r.path for r in configured if r.finished}
    as_finished = [r if r.finished else replace(r, summary={}, top1_curve={}) for r in configured]
    out = []
    for row in summarise(as_finished):
        result = ResultRow(row=_finished_only(row, done), key=baseline_key(row.runs))
        for run in row.runs:
            _count(result, run.path, states[run.path])
        out.append(result)
    return out


def _attach(rows: list[ResultRow], orphans: Sequence[tuple[Path, str]]) -> list[ResultRow]:
    """Count folders with no config (or none at all) in their siblings' row, else a new row."""
    by_parent: dict[Path, set[int]] = {}
    for i, result in enumerate(rows):
        for folder in result.folders:
            by_parent.setdefault(folder.resolve().parent, set()).add(i)
    extra: dict[Path, ResultRow] = {}
    for folder, state in orphans:
        parent = folder.resolve().parent
        owners = by_parent.get(parent, set())
        if len(owners) == 1:
            _count(rows[next(iter(owners))], folder, state)
            continue
        if parent not in extra:
            extra[parent] = ResultRow(row=empty_row(_display(folder.parent)), key=())
        _count(extra[parent], folder, state)
    return rows + list(extra.values())


def _link_baselines(rows: Sequence[ResultRow]) -> list[str]:
    """Fill each row's gaps to its vanilla and KD rows and its teacher; return notes."""
    notes: list[str] = []
    vanilla = [(r.row, r.key[1]) for r in rows if r.key and r.row.method == "vanilla"]
    for method in BASELINE_METHODS:
        by_key: dict[tuple[str, ...], list[Row]] = {}
        for r in rows:
            if r.key and r.row.method == method:
                by_key.setdefault(r.key, []).append(r.row)
        for key, candidates in by_key.items():
            base = choose_baseline(candidates)
            if base is None:
                continue
            if len(candidates) > 1:
                notes.append(
                    f"{len(candidates)} {method} rows fit {', '.join(k for k in key if k)}; "
                    f"the gaps use {base.label}"
                )
            for r in rows:
                if r.key == key and r.row is not base:
                    r.baselines[method] = base
                    r.gaps[method] = gap_between(r.row, base)
    for r in rows:
        if r.key and r.row.method != "vanilla":
            r.teacher = choose_teacher(r.row, r.key[1], vanilla)
    return notes


def _natural(text: str) -> tuple[int, float, str]:
    """Numbers in numeric order (``20`` before ``100``), then text."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _order(result: ResultRow, teachers: set[int]) -> tuple[object, ...]:
    """Rows without config last; otherwise by data set and subset, teachers first, then by
    student, epochs, method (vanilla, kd, the others) and label."""
    if not result.key:
        return (1, (), 0, (), 0, "", result.label)
    data, subset, epochs, student, resolution = (_natural(k) for k in result.key)
    rank = _METHOD_ORDER.get(result.row.method, len(_METHOD_ORDER))
    is_student = 0 if id(result.row) in teachers else 1
    by_student = (student, epochs, resolution)
    return (0, (data, subset), is_student, by_student, rank, result.row.method, result.label)


def short_label(label: str) -> str:
    """A row's label without its folders (``cifar10/students/kd`` -> ``kd``)."""
    return label.rsplit("/", 1)[-1]


def _find_row(rows: Sequence[ResultRow], name: str) -> ResultRow:
    """The one row labelled ``name`` (or whose label ends in ``/name``)."""
    found = [r for r in rows if name in (r.label, short_label(r.label))]
    if len(found) != 1:
        labels = ", ".join(sorted(short_label(r.label) for r in rows))
        what = "no row" if not found else f"{len(found)} rows"
        raise ResultsError(f"--pair names '{name}', but {what} has that label (rows: {labels})")
    return found[0]


def link_pairs(rows: Sequence[ResultRow], pairs: Sequence[tuple[str, str]]) -> None:
    """Each named pair's gap: ``(row, base)`` -> ``row.pair = (base label, row - base)``.

    Raises:
        ResultsError: a name matches no row, or several.
    """
    for name, base_name in pairs:
        row, base = _find_row(rows, name), _find_row(rows, base_name)
        row.pair = (base.label, gap_between(row.row, base.row))


def build_results(
    paths: list[str],
    expect: Sequence[Path] | None = None,
    pairs: Sequence[tuple[str, str]] = (),
) -> Results:
    """Read every run at or below ``paths`` (and the ``expect`` list) into the page's rows;
    ``pairs`` (row, base) name baselines beyond vanilla and KD (``vs base``).

    Raises:
        ResultsError: a path is missing or holds no run; a pair names no row.
        CompareError: a run's config or summary does not parse.
    """
    dirs = find_run_dirs(paths)
    runs = [load_run(d) for d in dirs]
    states = {r.path: run_state(r.path) for r in runs}
    configured = [r for r in runs if r.config]
    orphans = [(r.path, states[r.path]) for r in runs if not r.config]
    rows = _group(configured, states)
    known = {d.resolve() for d in dirs}
    for folder in expect or ():
        if folder.resolve() not in known and not (folder.is_dir() and has_run_files(folder)):
            orphans.append((folder, MISSING))
    rows = _attach(rows, orphans)
    notes = _link_baselines(rows)
    link_pairs(rows, pairs)
    teachers = {id(r.teacher) for r in rows if r.teacher is not None}
    rows.sort(key=lambda r: _order(r, teachers))
    warnings = run_warnings([r.row for r in rows])
    return Results(
        rows=rows,
        paths=list(paths),
        expected=expect is not None,
        paired=bool(pairs),
        warnings=warnings,
        notes=notes,
    )
