"""A run's training command: a new run from its recipe, or `--resume` when its folder holds a
last.pt (decided when the command is built, so a requeued job continues where it stopped);
`torchrun` when the run has several processes."""

from __future__ import annotations

import sys
from pathlib import Path

from common.sweep.plan import PlannedRun

TRAIN_MODULE = "common.train"


def train_command(
    run: PlannedRun, folders: dict[str, Path], nproc: int = 1, python: str = sys.executable
) -> list[str]:
    """argv that trains (or continues) `run` in its folder."""
    overrides = run.resolved_overrides(folders)
    if (run.run_dir / "last.pt").is_file():
        args = ["--resume", str(run.run_dir), *overrides]
    else:
        args = ["--recipe", str(run.recipe), "--out", str(run.run_dir), *overrides]
    if nproc > 1:
        launcher = [python, "-m", "torch.distributed.run", "--standalone"]
        return [*launcher, "--nproc_per_node", str(nproc), "-m", TRAIN_MODULE, *args]
    return [python, "-m", TRAIN_MODULE, *args]
