"""The results page's figures: accuracy per row with every seed, and top-1 training curves.

One panel per comparison group (data set, subset, epochs, student: the rows that share their
vanilla and KD baselines). matplotlib is an optional extra, imported only when a figure is
drawn; figures are built with ``matplotlib.figure.Figure`` (no pyplot, no display needed).
"""

from __future__ import annotations

import io
import os
import statistics
import textwrap
from collections.abc import Sequence
from typing import Any

from common.report.grouping import Row
from common.report.plot import top1_by_epoch
from common.report.result_rows import ResultRow, Results, short_label
from common.report.run_states import ResultsError
from common.report.runs import number

__all__ = [
    "INSTALL_HINT",
    "accuracy_figure",
    "curves_figure",
    "figure_png",
    "group_title",
    "plot_groups",
    "require_figure",
    "seed_top1",
]

INSTALL_HINT = "--html and --figure need matplotlib: pip install -e '.[plot]'"
_BASE_COLORS = {"vanilla": "#4c72b0", "kd": "#dd8452"}
_OTHER_COLORS = ("#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974")
_WIDTH = 10.0  # inches
_LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False}
_PANEL_HEIGHT = 4.2


def require_figure() -> Any:
    """The ``matplotlib.figure`` module.

    Raises:
        ResultsError: matplotlib is not installed (the message says how to install it).
    """
    try:
        import matplotlib.figure
    except ImportError:
        raise ResultsError(INSTALL_HINT) from None
    return matplotlib.figure


def seed_top1(row: Row) -> list[float]:
    """The last-epoch top-1 of each seed of ``row`` (runs repeating a seed averaged)."""
    by_path = {r.path: number((r.summary or {}).get("top1")) for r in row.runs}
    out = []
    for paths in row.seed_runs.values():
        values = [v for p in paths if (v := by_path.get(p)) is not None]
        if values:
            out.append(statistics.fmean(values))
    return out


def plot_groups(results: Results) -> list[list[ResultRow]]:
    """Rows with a finished seed, by comparison group, in table order.

    Only groups that compare something are drawn: those with a row of another method than
    vanilla (a teacher or a lone vanilla row is drawn as a line in its students' panel). When
    no group has one, every group is drawn.
    """
    groups: dict[tuple[str, ...], list[ResultRow]] = {}
    for r in results.rows:
        if r.key and r.row.n > 0:  # one panel for every input resolution of a student
            groups.setdefault(r.key[:4], []).append(r)
    compared = [g for g in groups.values() if any(r.row.method != "vanilla" for r in g)]
    return compared or list(groups.values())


def group_title(rows: Sequence[ResultRow]) -> str:
    """``cifar10 · student resnet8 · 20 epochs`` (and the subset when one is set)."""
    data, subset, epochs, student = rows[0].key[:4]
    parts = [data or "?", f"student {student or '?'}"]
    if subset not in ("", "0", "null"):
        parts.append(f"subset {subset}")
    if epochs:
        parts.append(f"{epochs} epochs")
    return " · ".join(parts)


def _colors(results: Results) -> dict[str, str]:
    """One color per method, the same in every panel and figure."""
    colors = dict(_BASE_COLORS)
    for r in results.rows:
        if r.row.method not in colors:
            colors[r.row.method] = _OTHER_COLORS[(len(colors) - 2) % len(_OTHER_COLORS)]
    return colors


def _new_figure(panels: int) -> tuple[Any, list[Any]]:
    """A figure with ``panels`` stacked axes (at least one)."""
    figure_mod = require_figure()
    n = max(panels, 1)
    fig = figure_mod.Figure(figsize=(_WIDTH, _PANEL_HEIGHT * n), dpi=110, layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _empty(ax: Any, text: str) -> None:
    """An axes that only says ``text``."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_axis_off()


def _reference_lines(ax: Any, group: Sequence[ResultRow]) -> None:
    """Horizontal lines: each teacher of the group's rows, and the group's vanilla row."""
    teachers: dict[int, Row] = {}
    vanilla: Row | None = None
    for r in group:
        if r.teacher is not None:
            teachers.setdefault(id(r.teacher), r.teacher)
        vanilla = vanilla or r.baselines.get("vanilla")
    if vanilla is None:
        vanilla = next((r.row for r in group if r.row.method == "vanilla"), None)
    for t in teachers.values():
        ax.axhline(
            t.top1_mean,
            color="#222",
            linestyle="--",
            linewidth=1.2,
            label=f"teacher {t.student} ({t.top1_mean:.2f})",
        )
    if vanilla is not None and vanilla.top1_mean is not None:
        ax.axhline(
            vanilla.top1_mean,
            color=_BASE_COLORS["vanilla"],
            linestyle=":",
            linewidth=1.5,
            label=f"vanilla {vanilla.student} ({vanilla.top1_mean:.2f})",
        )


def accuracy_figure(results: Results) -> Any:
    """Figure (a): each row's seeds as points, its mean ± std, teacher and vanilla as lines."""
    groups = plot_groups(results)
    fig, axes = _new_figure(len(groups))
    colors = _colors(results)
    if not groups:
        _empty(axes[0], "no finished run")
        return fig
    for ax, group in zip(axes, groups):
        for x, r in enumerate(group):
            values = seed_top1(r.row)
            color = colors.get(r.row.method, "#555")
            offsets = (
                [0.0]
                if len(values) == 1
                else [-0.12 + 0.24 * i / (len(values) - 1) for i in range(len(values))]
            )
            ax.scatter(
                [x + o for o in offsets],
                values,
                s=28,
                color=color,
                alpha=0.75,
                edgecolors="white",
                linewidths=0.5,
                zorder=3,
            )
            mean, std = r.row.top1_mean, r.row.top1_std
            if mean is not None:
                ax.errorbar(
                    [x + 0.25],
                    [mean],
                    yerr=None if std is None else [std],
                    fmt="_",
                    color="#222",
                    markersize=14,
                    capsize=3,
                    zorder=4,
                )
        _reference_lines(ax, group)
        labels = [textwrap.fill(short_label(r.label), 26) for r in group]
        ax.set_xticks(range(len(group)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(group) - 0.4)
        ax.set_ylabel("top-1 (%), last epoch")
        ax.set_title(group_title(group), fontsize=10, loc="left")
        ax.grid(True, axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(**_LEGEND)
    fig.suptitle("accuracy per row: one point per seed, black bar = mean ± std", fontsize=11)
    return fig


def curves_figure(results: Results) -> Any:
    """Figure (b): top-1 against epoch per row, mean over seeds, band from min to max."""
    groups = [g for g in plot_groups(results) if any(top1_by_epoch(r.row) for r in g)]
    fig, axes = _new_figure(len(groups))
    if not groups:
        _empty(axes[0], "no per-epoch top-1 in metrics.jsonl")
        return fig
    colors = _colors(results)
    styles = ("-", "--", "-.", ":")
    for ax, group in zip(axes, groups):
        seen: dict[str, int] = {}
        for r in group:
            points = top1_by_epoch(r.row)
            if not points:
                continue
            color = colors.get(r.row.method, "#555")
            style = styles[seen.get(r.row.method, 0) % len(styles)]
            seen[r.row.method] = seen.get(r.row.method, 0) + 1
            epochs = [p[0] for p in points]
            ax.plot(
                epochs,
                [p[1] for p in points],
                color=color,
                linestyle=style,
                linewidth=1.6,
                marker="o" if len(points) <= 30 else None,
                markersize=3,
                label=f"{r.label} (n={r.row.n})",
            )
            if r.row.n > 1:
                ax.fill_between(
                    epochs,
                    [p[2] for p in points],
                    [p[3] for p in points],
                    color=color,
                    alpha=0.15,
                    linewidth=0,
                )
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("top-1 (%)")
        ax.set_title(group_title(group), fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(**_LEGEND)
    fig.suptitle(
        "training curves: top-1 per epoch, mean over seeds (band: min to max)", fontsize=11
    )
    return fig


def figure_png(fig: Any, file: str | os.PathLike[str] | None = None) -> bytes:
    """The figure as PNG bytes, also written to ``file`` when given.

    Raises:
        ResultsError: the file cannot be written.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    data = buffer.getvalue()
    if file is not None:
        try:
            with open(file, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise ResultsError(f"cannot write {file}: {exc.strerror or exc}") from None
    return data
