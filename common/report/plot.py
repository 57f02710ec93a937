"""``--plot``: top-1 against epoch, one line per row (mean over seeds, band from min to max).

matplotlib is an optional extra (``pip install -e '.[plot]'``); it is imported only here, and
only when a plot is asked for.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.report.grouping import Row
from common.report.runs import CompareError

__all__ = ["INSTALL_HINT", "plot_top1", "require_matplotlib", "top1_by_epoch"]

INSTALL_HINT = "--plot needs matplotlib: pip install -e '.[plot]'"
_STYLES = ("-", "--", "-.", ":")


def require_matplotlib() -> Any:
    """The ``matplotlib.figure`` module.

    Raises:
        CompareError: matplotlib is not installed (the message says how to install it).
    """
    try:
        import matplotlib.figure
    except ImportError:
        raise CompareError(INSTALL_HINT) from None
    return matplotlib.figure


def top1_by_epoch(row: Row) -> list[tuple[int, float, float, float]]:
    """``(epoch, mean, min, max)`` of top-1 over the row's seeds, for each evaluated epoch.

    Runs that repeat a seed are averaged into that seed first; a seed without ``top1`` at an
    epoch is left out of that epoch.
    """
    by_seed: dict[str, dict[int, list[float]]] = {}
    for seed, paths in row.seed_runs.items():
        wanted = set(paths)
        epochs = by_seed.setdefault(seed, {})
        for run in row.runs:
            if run.path in wanted:
                for epoch, top1 in run.top1_curve.items():
                    epochs.setdefault(epoch, []).append(top1)
    per_epoch: dict[int, list[float]] = {}
    for epochs in by_seed.values():
        for epoch, values in epochs.items():
            per_epoch.setdefault(epoch, []).append(statistics.fmean(values))
    return [(epoch, statistics.fmean(v), min(v), max(v)) for epoch, v in sorted(per_epoch.items())]


def plot_top1(rows: Sequence[Row], file: str | os.PathLike[str]) -> int:
    """Draw top-1 (%) against epoch for each row and save the figure to ``file``.

    The format follows the file's extension (PNG when it has none). Rows without any
    per-epoch top-1 are left out. Returns the number of lines drawn.

    Raises:
        CompareError: matplotlib is missing, or the file cannot be written in that format.
    """
    figure_mod = require_matplotlib()
    fig = figure_mod.Figure(figsize=(10.0, 5.5), dpi=120)
    ax = fig.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    drawn = 0
    for row in rows:
        points = top1_by_epoch(row)
        if not points:
            continue
        epochs = [p[0] for p in points]
        color = colors[drawn % len(colors)]
        style = _STYLES[(drawn // len(colors)) % len(_STYLES)]
        marker = "o" if len(points) <= 20 else None
        ax.plot(
            epochs,
            [p[1] for p in points],
            color=color,
            linestyle=style,
            marker=marker,
            markersize=3,
            linewidth=1.5,
            label=row.label,
        )
        if row.n > 1:
            ax.fill_between(
                epochs, [p[2] for p in points], [p[3] for p in points], color=color, alpha=0.15
            )
        drawn += 1
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("top-1 by epoch: mean over seeds, band from min to max")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    else:
        ax.text(
            0.5, 0.5, "no per-epoch top-1 in metrics.jsonl", ha="center", transform=ax.transAxes
        )
    path = Path(file)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        fig.savefig(path, format=fmt, bbox_inches="tight")
    except ValueError as exc:
        raise CompareError(f"cannot write the plot {file}: {exc}") from None
    return drawn
