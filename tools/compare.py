"""Compare finished runs in one markdown table (optionally also CSV).

Usage::

    python tools/compare.py RUN_DIR [RUN_DIR ...] [--csv FILE] [--metric top1|top1_best]

A run directory holds ``config.yaml`` (the resolved recipe), ``summary.json`` (written when the
run finishes) and ``metrics.jsonl`` (one JSON object per epoch). Any argument may also be a
parent folder: every run directory below it is used. Runs that share a recipe ``name`` are
repeats with different seeds and become one row showing the mean and the sample standard
deviation (n - 1 in the denominator) over seeds. Run directories without ``summary.json`` are
listed under the table as unfinished.

``--metric`` chooses which of our top-1 numbers the "gap" column compares to the paper's:
``top1`` (the last epoch, default) or ``top1_best`` (the best evaluated epoch).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CompareError",
    "Run",
    "Row",
    "find_runs",
    "load_run",
    "summarise",
    "format_markdown",
    "write_csv",
    "main",
]

SUMMARY = "summary.json"
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
METRIC_CHOICES = ("top1", "top1_best")
DASH = "—"


class CompareError(Exception):
    """A problem with the inputs that ends the program with one error line (exit code 2)."""


# --------------------------------------------------------------------------------------------
# Reading runs
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run directory, finished (``summary`` is a dict) or not (``summary`` is None)."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    epochs_done: int | None = None  # from metrics.jsonl; None when the file is absent
    epochs_total: int | None = None  # train.epochs of the recipe

    @property
    def finished(self) -> bool:
        """Whether the run wrote its summary."""
        return self.summary is not None

    @property
    def name(self) -> str:
        """The recipe name (runs with the same name are seeds of one recipe)."""
        name = cfg_get(self.config, "name")
        return str(name) if name else self.path.name


def cfg_get(config: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """Look up ``a.b.c`` in a nested dict (a flat key ``"a.b.c"`` is accepted too)."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _is_run_dir(path: Path) -> bool:
    """A run directory is one holding a summary, a resolved recipe or an epoch log."""
    return any((path / f).is_file() for f in (SUMMARY, CONFIG, METRICS))


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every run directory named by, or found below, ``paths`` (sorted, without duplicates).

    A directory is a run directory when it contains ``summary.json``, ``config.yaml`` or
    ``metrics.jsonl``; the search does not descend into run directories. A directory given on
    the command line with no run directory at or below it is returned as is (it is then shown
    as an unfinished run that has not written anything yet). A file named ``summary.json``
    stands for its folder.

    Raises:
        CompareError: a path does not exist or is a file other than ``summary.json``.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CompareError(f"no such file or directory: {raw}")
        if path.is_file():
            if path.name != SUMMARY:
                raise CompareError(f"not a run directory: {raw}")
            path = path.parent
        if _is_run_dir(path):
            found.setdefault(path, None)
            continue
        below: list[Path] = []
        for root, dirs, _files in os.walk(path):
            dirs.sort()
            here = Path(root)
            if here != path and _is_run_dir(here):
                below.append(here)
                dirs[:] = []  # do not look inside a run (checkpoints, logs, ...)
        for run in below or [path]:
            found.setdefault(run, None)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return sorted(unique.values(), key=lambda p: str(p))


def _read_epochs(path: Path) -> int | None:
    """Number of finished epochs according to ``metrics.jsonl`` (None when it is absent).

    Uses the largest ``epoch`` field (counted from 1; a log whose epochs start at 0 is shifted
    by one), or the number of records when they carry no ``epoch``. Lines that do not parse
    (a record cut short by a crash) are skipped.
    """
    file = path / METRICS
    if not file.is_file():
        return None
    epochs: list[int] = []
    records = 0
    for line in file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        records += 1
        epoch = record.get("epoch")
        if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
            epochs.append(int(epoch))
    if not epochs:
        return records
    return max(epochs) + (1 if min(epochs) == 0 else 0)


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read one run directory's ``config.yaml``, ``summary.json`` and ``metrics.jsonl``.

    Missing files are tolerated (an empty config, ``summary=None``); files that exist but do not
    parse raise `CompareError`.
    """
    path = Path(path)
    config: dict[str, Any] = {}
    cfg_file = path / CONFIG
    if cfg_file.is_file():
        try:
            loaded = yaml.safe_load(cfg_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CompareError(f"cannot parse {cfg_file}: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise CompareError(f"{cfg_file} is not a mapping")
        config = loaded or {}
    summary: dict[str, Any] | None = None
    sum_file = path / SUMMARY
    if sum_file.is_file():
        try:
            loaded = json.loads(sum_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CompareError(f"cannot parse {sum_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CompareError(f"{sum_file} is not a JSON object")
        summary = loaded
    total = cfg_get(config, "train.epochs")
    return Run(
        path=path,
        config=config,
        summary=summary,
        epochs_done=_read_epochs(path),
        epochs_total=int(total) if isinstance(total, (int, float)) else None,
    )


# --------------------------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One recipe: the seeds that ran it, summarised (None where no run reported a value)."""

    recipe: str
    method: str
    teacher: str
    student: str
    data: str
    n: int
    top1_mean: float | None
    top1_std: float | None  # sample std over seeds; None when n == 1
    top1_best_mean: float | None
    top1_best_std: float | None
    paper_top1: float | None
    paper_table: str
    gap: float | None  # our mean (of --metric) minus the paper's top-1
    ece_mean: float | None  # fraction
    train_seconds_mean: float | None
    seeds: list[Any] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values that are not None."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) > 1 else None
    return mean, std


def summarise(runs: Iterable[Run], metric: str = "top1") -> list[Row]:
    """Group finished runs by recipe name into rows, sorted by data, teacher/student, method.

    Unfinished runs are ignored. ``metric`` (``top1`` or ``top1_best``) is the number whose
    mean the ``gap`` column compares with ``paper.top1``.
    """
    if metric not in METRIC_CHOICES:
        raise ValueError(f"metric must be one of {METRIC_CHOICES}, got {metric!r}")
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if run.finished:
            groups.setdefault(run.name, []).append(run)
    rows: list[Row] = []
    for name, members in groups.items():
        first = members[0].config

        def col(key: str, members: list[Run] = members) -> list[float | None]:
            return [_number((m.summary or {}).get(key)) for m in members]

        top1_mean, top1_std = _mean_std(col("top1"))
        best_mean, best_std = _mean_std(col("top1_best"))
        ece_mean, _ = _mean_std(col("ece"))
        time_mean, _ = _mean_std(col("train_seconds"))
        paper = next(
            (
                p
                for p in (_number(cfg_get(m.config, "paper.top1")) for m in members)
                if p is not None
            ),
            None,
        )
        ours = top1_mean if metric == "top1" else best_mean
        rows.append(
            Row(
                recipe=name,
                method=str(cfg_get(first, "method.name") or ""),
                teacher=str(cfg_get(first, "teacher.name") or ""),
                student=str(cfg_get(first, "student.name") or ""),
                data=str(cfg_get(first, "data.name") or ""),
                n=len(members),
                top1_mean=top1_mean,
                top1_std=top1_std,
                top1_best_mean=best_mean,
                top1_best_std=best_std,
                paper_top1=paper,
                paper_table=str(cfg_get(first, "paper.table") or ""),
                gap=None if ours is None or paper is None else ours - paper,
                ece_mean=ece_mean,
                train_seconds_mean=time_mean,
                seeds=[cfg_get(m.config, "train.seed") for m in members],
                paths=[m.path for m in members],
            )
        )
    rows.sort(key=lambda r: (r.data, r.teacher, r.student, r.method, r.recipe))
    return rows


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or a dash."""
    return DASH if value is None else f"{value:.{digits}f}"


def _fmt_mean_std(mean: float | None, std: float | None) -> str:
    """``mean ± std``, or just the mean when there is no std (one seed)."""
    if mean is None:
        return DASH
    return _fmt(mean) if std is None else f"{mean:.2f} ± {std:.2f}"


def _fmt_duration(seconds: float | None) -> str:
    """Seconds as ``42s``, ``12m05s`` or ``3h07m``."""
    if seconds is None:
        return DASH
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _pair(row: Row) -> str:
    """``teacher → student``, or the student alone when there is no teacher."""
    if row.teacher and row.student:
        return f"{row.teacher} → {row.student}"
    return row.student or row.teacher or DASH


def _cell(text: str) -> str:
    """Escape a markdown table cell."""
    return text.replace("|", "\\|") or DASH


def unfinished_note(run: Run) -> str:
    """``unfinished: DIR (epoch k of N)`` for a run without summary."""
    if run.epochs_done is None:
        progress = f"no {METRICS} yet"
    else:
        total = "?" if run.epochs_total is None else str(run.epochs_total)
        progress = f"epoch {run.epochs_done} of {total}"
    return f"unfinished: {run.path} ({progress})"


def format_markdown(
    rows: Sequence[Row], unfinished: Sequence[Run] = (), metric: str = "top1"
) -> str:
    """The comparison table in markdown, followed by one note line per unfinished run.

    Top-1 and the gap are in percent points; ECE is shown in percent (it is a fraction in
    ``summary.json``); train time is the mean wall time of the seeds.
    """
    gap_name = "gap (last − paper)" if metric == "top1" else "gap (best − paper)"
    header = [
        "recipe",
        "method",
        "teacher → student",
        "data",
        "n seeds",
        "top-1 (last)",
        "top-1 (best epoch)",
        "paper top-1",
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
            _cell(r.recipe),
            _cell(r.method),
            _cell(_pair(r)),
            _cell(r.data),
            str(r.n),
            _fmt_mean_std(r.top1_mean, r.top1_std),
            _fmt_mean_std(r.top1_best_mean, r.top1_best_std),
            _fmt(r.paper_top1),
            DASH if r.gap is None else f"{r.gap:+.2f}",
            DASH if r.ece_mean is None else f"{100.0 * r.ece_mean:.2f}",
            _fmt_duration(r.train_seconds_mean),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if unfinished:
        lines.append("")
        lines.extend(unfinished_note(run) for run in unfinished)
    return "\n".join(lines) + "\n"


CSV_COLUMNS = [
    "recipe",
    "method",
    "teacher",
    "student",
    "data",
    "n_seeds",
    "top1_mean",
    "top1_std",
    "top1_best_mean",
    "top1_best_std",
    "paper_top1",
    "paper_table",
    "gap",
    "ece_mean",
    "train_seconds_mean",
]


def write_csv(rows: Sequence[Row], file: str | os.PathLike[str]) -> None:
    """Write the table as CSV with unformatted numbers (empty cells where a value is missing).

    ``gap`` is relative to the metric chosen in `summarise`; ``ece_mean`` is a fraction.
    """

    def raw(value: Any) -> Any:
        return "" if value is None else value

    with open(file, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r.recipe,
                    r.method,
                    r.teacher,
                    r.student,
                    r.data,
                    r.n,
                    raw(r.top1_mean),
                    raw(r.top1_std),
                    raw(r.top1_best_mean),
                    raw(r.top1_best_std),
                    raw(r.paper_top1),
                    r.paper_table,
                    raw(r.gap),
                    raw(r.ece_mean),
                    raw(r.train_seconds_mean),
                ]
            )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="compare.py",
        description="Compare runs (grouped by recipe, mean ± std over seeds) in one table.",
    )
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run dirs or parent folders")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV to FILE")
    parser.add_argument(
        "--metric",
        choices=METRIC_CHOICES,
        default="top1",
        help="our top-1 the gap column compares with the paper: last epoch or best epoch",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison table; return 0, 1 when no run was found, 2 on a bad input."""
    args = _parser().parse_args(argv)
    try:
        runs = [load_run(p) for p in find_runs(args.paths)]
        rows = summarise(runs, metric=args.metric)
        unfinished = [r for r in runs if not r.finished]
        if not rows and not unfinished:
            print("compare.py: no runs found under " + " ".join(args.paths), file=sys.stderr)
            return 1
        sys.stdout.write(format_markdown(rows, unfinished, metric=args.metric))
        if args.csv:
            write_csv(rows, args.csv)
    except (CompareError, OSError) as exc:
        print(f"compare.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
