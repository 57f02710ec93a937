"""What a run folder holds: done (summary.json), partial (last.pt), failed (the launcher's
`sweep.failed` marker, holding the run's last error line), or pending (nothing yet)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

FAILED_MARKER = "sweep.failed"
LOG_NAME = "sweep.log"


class RunState(str, Enum):
    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"
    PENDING = "pending"


def run_state(run_dir: Path) -> RunState:
    """The state of the run in `run_dir` (a committed summary.json counts as done)."""
    if (run_dir / "summary.json").is_file():
        return RunState.DONE
    if (run_dir / FAILED_MARKER).is_file():
        return RunState.FAILED
    if (run_dir / "last.pt").is_file():
        return RunState.PARTIAL
    return RunState.PENDING


def failure_line(run_dir: Path) -> str:
    """The last error line recorded for a failed run ('' if none)."""
    marker = run_dir / FAILED_MARKER
    return marker.read_text().strip() if marker.is_file() else ""


def last_error_line(log: Path) -> str:
    """The last `error:` line of a run's log, else its last non-empty line."""
    if not log.is_file():
        return "(no log)"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    lines = [line.split("\r")[-1] for line in lines if line]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line
    return lines[-1] if lines else "(empty log)"


def mark_failed(run_dir: Path, line: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_MARKER).write_text(line + "\n")


def clear_failed(run_dir: Path) -> None:
    (run_dir / FAILED_MARKER).unlink(missing_ok=True)
