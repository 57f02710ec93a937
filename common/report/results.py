"""The results command: folders of runs in, the tables a paper's reader wants out.

Usage::

    python tools/results.py RUN_DIR [RUN_DIR ...] [--expect FILE.json] [--markdown FILE]
                            [--readme FILE --marker NAME] [--html FILE] [--figure FILE.png]
                            [--pair ROW=BASE ...] [--title TEXT]

Rows are compare's (`common.report.grouping`: seeds pooled only when everything but the seed
matches). Each row shows n, the last-epoch top-1 mean ± std, the paper's number and the gap to
it (where a recipe has one), the gaps to the row's vanilla and KD rows and to a named base
(``--pair``; marked when beyond two standard errors), the mean and summed training time, and how
many of its runs are done, partial, failed or missing. The markdown goes to stdout (and
``--markdown``, and a README block between ``<!-- results:NAME -->`` markers); ``--html`` writes
one self-contained page with the figures, ``--figure`` the accuracy figure alone. A bad input
is one ``results.py: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from common.errors import UserError
from common.report.readme_block import readme_with_block
from common.report.result_page import DEFAULT_TITLE, results_html
from common.report.result_plots import (
    accuracy_figure,
    curves_figure,
    figure_png,
    require_figure,
)
from common.report.result_rows import build_results
from common.report.result_table import format_results_markdown
from common.report.run_states import ResultsError, read_expected

__all__ = ["PROG", "main"]

PROG = "results.py"


def _parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Results of runs: mean ± std over seeds, gaps to the paper and to the "
        "vanilla / KD rows, run states; markdown, README blocks and one HTML page.",
    )
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run dirs or parent folders")
    parser.add_argument(
        "--expect",
        metavar="FILE.json",
        help="JSON list of the run folders that should exist (relative to the file's folder); "
        "those without a folder are counted as missing",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument(
        "--readme",
        metavar="FILE",
        help="replace the block between <!-- results:NAME --> and <!-- /results:NAME --> in FILE",
    )
    parser.add_argument("--marker", metavar="NAME", help="the block's NAME (with --readme)")
    parser.add_argument(
        "--html", metavar="FILE", help="write one self-contained HTML page (needs matplotlib)"
    )
    parser.add_argument(
        "--figure", metavar="FILE.png", help="write the accuracy-per-row figure as PNG"
    )
    parser.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="ROW=BASE",
        help="also show ROW's gap to BASE (row labels, or their last part), e.g. "
        "sokd_fitnet=fitnet; repeatable",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="the HTML page's title")
    return parser


def _write(file: str, text: str) -> None:
    """Write ``text`` to ``file``.

    Raises:
        ResultsError: the file cannot be written.
    """
    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"cannot write {file}: {exc.strerror or exc}") from None


def _pair(text: str) -> tuple[str, str]:
    """``ROW=BASE`` as ``(ROW, BASE)``.

    Raises:
        ResultsError: not of that form.
    """
    row, sep, base = text.partition("=")
    if not sep or not row or not base:
        raise ResultsError(f"--pair {text!r}: give ROW=BASE, e.g. --pair sokd_fitnet=fitnet")
    return row.strip(), base.strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the results table and write the files asked for; 0, or 2 on a bad input."""
    parser = _parser()
    args = parser.parse_args(argv)
    if bool(args.readme) != bool(args.marker):
        parser.error("--readme and --marker go together")
    try:
        if args.html or args.figure:
            require_figure()  # before any output: fail with one line, not after the table
        expect = read_expected(args.expect) if args.expect else None
        results = build_results(args.paths, expect, [_pair(p) for p in args.pair])
        text = format_results_markdown(results)
        readme = readme_with_block(args.readme, args.marker, text) if args.readme else None
        for line in results.warnings:
            print(line, file=sys.stderr)
        sys.stdout.write(text)
        if args.markdown:
            _write(args.markdown, text)
        if readme is not None:
            _write(args.readme, readme)
        accuracy = None
        if args.figure:
            accuracy = figure_png(accuracy_figure(results), args.figure)
        if args.html:
            figures = (
                accuracy or figure_png(accuracy_figure(results)),
                figure_png(curves_figure(results)),
            )
            _write(args.html, results_html(results, args.title, figures))
    except (UserError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0
