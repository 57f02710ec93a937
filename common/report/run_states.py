"""What became of each run: done, partial, failed, or missing (expected but never started).

A run folder is *done* when it holds ``summary.json``; *failed* when the sweep launcher left its
``sweep.failed`` marker there (the file holds the run's last error line); otherwise *partial*:
it started (``last.pt`` to resume from, or just its config and log) but has no summary yet. A
run is *missing* when a ``--expect`` file lists its folder and the folder holds none of these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from common.errors import UserError
from common.report.runs import CONFIG, METRICS, SUMMARY, find_runs

__all__ = [
    "CHECKPOINT",
    "DONE",
    "FAILED",
    "FAILED_MARKER",
    "MISSING",
    "PARTIAL",
    "RUN_MARKERS",
    "STATES",
    "ResultsError",
    "failure_line",
    "find_run_dirs",
    "has_run_files",
    "read_expected",
    "run_state",
]

FAILED_MARKER = "sweep.failed"  # written by the sweep launcher (common/sweep/state.py)
CHECKPOINT = "last.pt"
SWEEP_LOG = "sweep.log"
RUN_MARKERS = (FAILED_MARKER, CHECKPOINT, SWEEP_LOG)  # besides summary, config and metrics
DONE, PARTIAL, FAILED, MISSING = "done", "partial", "failed", "missing"
STATES = (DONE, PARTIAL, FAILED, MISSING)


class ResultsError(UserError):
    """A problem with the inputs that ends the results command with one error line (exit 2)."""


def has_run_files(path: Path) -> bool:
    """Whether ``path`` holds any file a run or the sweep launcher writes."""
    return any((path / f).is_file() for f in (SUMMARY, CONFIG, METRICS, *RUN_MARKERS))


def run_state(path: Path) -> str:
    """``done``, ``failed`` or ``partial`` for an existing run folder (in that order)."""
    if (path / SUMMARY).is_file():
        return DONE
    if (path / FAILED_MARKER).is_file():
        return FAILED
    return PARTIAL


def failure_line(path: Path) -> str:
    """The error line the launcher recorded for a failed run (``""`` when there is none)."""
    marker = path / FAILED_MARKER
    if not marker.is_file():
        return ""
    lines = [line.strip() for line in marker.read_text(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")


def find_run_dirs(paths: list[str]) -> list[Path]:
    """Every run folder at or below each path, failed and partial runs included.

    Raises:
        ResultsError: a path does not exist, or holds no run at all.
    """
    found: dict[Path, Path] = {}
    for raw in paths:
        dirs = find_runs([raw], extra_markers=RUN_MARKERS)
        if not any(has_run_files(d) for d in dirs):
            raise ResultsError(f"no runs under {raw} (no folder with {SUMMARY} or {CONFIG})")
        for d in dirs:
            found.setdefault(d.resolve(), d)
    return sorted(found.values(), key=str)


def read_expected(file: str | os.PathLike[str]) -> list[Path]:
    """The run folders a ``--expect`` file lists.

    The file is JSON: a list of folder paths, or an object whose ``runs`` is that list (items
    may also be objects with a ``run_dir``). Relative paths are relative to the file's folder.

    Raises:
        ResultsError: the file is missing, does not parse, or is not such a list.
    """
    path = Path(file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"--expect: no such file: {file}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"--expect: cannot read {file}: {exc}") from None
    items = data.get("runs") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ResultsError(f"--expect: {file} is not a JSON list of run folders")
    out: list[Path] = []
    for item in items:
        folder = item.get("run_dir") if isinstance(item, dict) else item
        if not isinstance(folder, str) or not folder:
            raise ResultsError(f"--expect: {file}: {item!r} is not a run folder path")
        out.append(path.parent / folder if not Path(folder).is_absolute() else Path(folder))
    return out
