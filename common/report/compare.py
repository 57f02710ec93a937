"""The compare command: runs in, one markdown table out (optionally CSV and a plot).

Usage::

    python tools/compare.py RUN_DIR [RUN_DIR ...] [--csv FILE] [--plot FILE.png]
                            [--metric top1|top1_best]

Any argument may be a parent folder: every run folder below it is used. Runs whose resolved
configuration is the same once the seed, the output folder and the keys that only say where or
how a run ran are left out (`common.report.grouping.IGNORED_KEYS`) are seeds of one experiment
and become one row: mean ± sample standard deviation (n - 1) over seeds. Runs with one recipe
name but other overrides get rows of their own, labelled ``name [key=value, ...]``. Warnings
(a seed that ran twice in one row, unfinished runs) go to stderr as ``warning:`` lines; each
row whose recipe has a ``paper.note`` gets a ``note:`` line under the table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.errors import UserError
from common.report.grouping import METRIC_CHOICES, run_warnings, summarise
from common.report.plot import plot_top1, require_matplotlib
from common.report.runs import find_runs, load_run
from common.report.table import format_markdown, format_notes, write_csv

__all__ = ["PROG", "main"]

PROG = "compare.py"


def _parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare runs (one row per configuration, mean ± std over seeds) in a table.",
    )
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run dirs or parent folders")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV to FILE")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also plot top-1 against epoch per row (needs the plot extra: matplotlib)",
    )
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
        if args.plot:
            require_matplotlib()  # before any output: fail with one line, not after the table
        runs = [load_run(p) for p in find_runs(args.paths)]
        rows = summarise(runs, metric=args.metric)
        unfinished = [r for r in runs if not r.finished]
        for line in run_warnings(rows, unfinished):
            print(line, file=sys.stderr)
        if not rows and not unfinished:
            print(f"{PROG}: no runs found under " + " ".join(args.paths), file=sys.stderr)
            return 1
        sys.stdout.write(format_markdown(rows, metric=args.metric))
        notes = format_notes(rows)
        if notes:
            sys.stdout.write("\n" + "\n".join(notes) + "\n")
        if args.csv:
            write_csv(rows, args.csv)
        if args.plot:
            plot_top1(rows, args.plot)
    except (UserError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0
