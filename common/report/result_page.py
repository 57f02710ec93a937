"""The results page in HTML: the table, its legend and the two figures, in one file."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from common.report.html_page import Figure, render_page
from common.report.result_plots import accuracy_figure, curves_figure, figure_png
from common.report.result_rows import Results
from common.report.result_table import GAP_COLUMNS, SIGNIFICANT_MARK, legend_lines, results_table
from common.report.run_states import DONE, FAILED, MISSING

__all__ = ["DEFAULT_TITLE", "results_html"]

DEFAULT_TITLE = "Results"


def _cell_class(column: str, text: str) -> str:
    """Green / red for marked gaps, red for failed or missing runs."""
    if column in GAP_COLUMNS and text.endswith(SIGNIFICANT_MARK):
        return "up" if text.startswith("+") else "down"
    if column in (FAILED, MISSING) and text not in ("", "0"):
        return "warn"
    return ""


def _subtitle(results: Results) -> str:
    """How many runs and rows, from which folders, when."""
    done = sum(r.states[DONE] for r in results.rows)
    paths = ", ".join(f"`{p}`" for p in results.paths)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"{done} finished runs in {len(results.rows)} rows, from {paths}; generated {when}."


def results_html(
    results: Results, title: str = DEFAULT_TITLE, figures: Sequence[bytes] = ()
) -> str:
    """The page. ``figures``: PNGs of figures (a) and (b) when already drawn (else drawn here).

    Raises:
        ResultsError: matplotlib is missing.
    """
    accuracy, curves = figures or (
        figure_png(accuracy_figure(results)),
        figure_png(curves_figure(results)),
    )
    table = results_table(results)
    return render_page(
        title=title,
        subtitle=_subtitle(results),
        header=table.header,
        align=table.align,
        rows=table.rows,
        legend=legend_lines(results),
        figures=[
            Figure(
                "Accuracy per row",
                accuracy,
                "Each point is one seed's last-epoch top-1; the black bar is the row's mean ± std. "
                "Dashed: the teacher (its vanilla row); dotted: the vanilla student.",
            ),
            Figure(
                "Training curves",
                curves,
                "Top-1 per epoch from `metrics.jsonl`, mean over the row's finished seeds; "
                "the band runs from the lowest to the highest seed.",
            ),
        ],
        cell_class=_cell_class,
    )
