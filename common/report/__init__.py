"""Reports on finished runs: read run folders, group seeds, print tables, plot curves.

The command is `common.report.compare.main` (``python tools/compare.py``); the results page
(markdown, README blocks, one HTML page) is `common.report.results.main`
(``python tools/results.py``). The pieces are importable on their own.
"""

from __future__ import annotations

from common.report.compare import main
from common.report.grouping import (
    IGNORED_KEYS,
    IGNORED_SECTIONS,
    Row,
    experiment_config,
    flatten,
    run_warnings,
    summarise,
)
from common.report.plot import plot_top1, require_matplotlib, top1_by_epoch
from common.report.runs import CompareError, Run, cfg_get, find_runs, load_run
from common.report.table import CSV_COLUMNS, format_markdown, format_notes, write_csv

__all__ = [
    "CSV_COLUMNS",
    "IGNORED_KEYS",
    "IGNORED_SECTIONS",
    "CompareError",
    "Row",
    "Run",
    "cfg_get",
    "experiment_config",
    "find_runs",
    "flatten",
    "format_markdown",
    "format_notes",
    "load_run",
    "main",
    "plot_top1",
    "require_matplotlib",
    "run_warnings",
    "summarise",
    "top1_by_epoch",
    "write_csv",
]
