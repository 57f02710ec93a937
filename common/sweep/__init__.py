"""Sweeps: a grid of runs (recipes x seeds x overrides) from one YAML file, launched on local
workers or a SLURM cluster, resumable, with dependencies between runs (a student waits for the
teacher the sweep trains).

`spec` reads and checks a sweep file, `plan` expands it into runs with stable folders,
`state` tells what each run folder holds, `command` builds a run's training command,
`local` and `slurm` launch them, `cli` is `tools/sweep.py`.
"""

from common.sweep.plan import PlannedRun, plan_sweep
from common.sweep.spec import Resources, SweepSpec, load_sweep
from common.sweep.state import RunState, run_state

__all__ = [
    "PlannedRun",
    "Resources",
    "RunState",
    "SweepSpec",
    "load_sweep",
    "plan_sweep",
    "run_state",
]
