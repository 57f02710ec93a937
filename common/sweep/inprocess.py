"""Runs of a sweep trained one after another in this process (the demo, the short real-data
checks, CQKD's Fig. 2 sweep): no process start-up per run, output on this console; the same
folders, states and resume rules as the launchers."""

from __future__ import annotations

from collections.abc import Callable

from common.cli import main as train_main
from common.sweep.command import train_command
from common.sweep.plan import PlannedRun
from common.sweep.state import RunState, run_state


def dependency_order(runs: list[PlannedRun]) -> list[PlannedRun]:
    """`runs` with every run after the runs it waits for (else in the given order)."""
    by_id = {run.run_id: run for run in runs}
    ordered: list[PlannedRun] = []
    placed: set[str] = set()

    def place(run: PlannedRun) -> None:
        if run.run_id in placed:
            return
        placed.add(run.run_id)
        for need in run.needs:
            if need in by_id:
                place(by_id[need])
        ordered.append(run)

    for run in runs:
        place(run)
    return ordered


def run_in_process(
    runs: list[PlannedRun],
    say: Callable[[str], None] = print,
    prog: str = "train",
    default_method: str = "vanilla",
) -> int:
    """Train every run that is not done (a partial one continues from last.pt); stop at the
    first failure and return its exit code (its `error:` line is already printed), else 0."""
    folders = {run.run_id: run.run_dir for run in runs}
    for run in dependency_order(runs):
        if run_state(run.run_dir) is RunState.DONE:
            say(f"== {run.run_id}: done already, kept ==")
            continue
        say(f"== {run.run_id} ==")
        argv = train_command(run, folders, python="python")[3:]  # drop `python -m module`
        code = train_main(argv, prog=prog, default_method=default_method)
        if code:
            return code
    return 0
