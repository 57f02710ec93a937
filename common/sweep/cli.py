"""`tools/sweep.py`: run a sweep file's grid of runs, resumably.

    python tools/sweep.py SWEEP.yaml [--launcher local|slurm] [--workers N] [--runs-per-gpu K]
    python tools/sweep.py SWEEP.yaml --dry-run      # every run and its state; starts nothing
    python tools/sweep.py SWEEP.yaml --status       # the same, with SLURM jobs' states
    python tools/sweep.py SWEEP.yaml --launcher slurm [--no-wait]   # one SLURM job per run

Every run is checked before the first starts (a bad key or value names the run); a finished
run (summary.json) is skipped, a partial one (last.pt) continues, a failed one is tried again.
Exit code: 0 when every run is done, 1 when some failed, 2 on a user's mistake, 130 if stopped.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from common.cli import ArgumentParser, report
from common.errors import UserError
from common.sweep.check import check_runs
from common.sweep.plan import PlannedRun, plan_sweep
from common.sweep.spec import SweepSpec, load_sweep
from common.sweep.state import RunState, failure_line, run_state

PROG = "tools/sweep.py"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("sweep", help="the sweep YAML file")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local")
    p.add_argument("--workers", type=int, default=0, help="runs at a time (local; default: "
                   "one per GPU x --runs-per-gpu, else 1)")  # fmt: skip
    p.add_argument("--runs-per-gpu", type=int, default=1, help="runs packed on one GPU")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their states")
    p.add_argument("--status", action="store_true", help="states, with SLURM jobs' states")
    p.add_argument("--no-wait", action="store_true", help="slurm: submit, then return "
                   "(default: follow the jobs until they end)")  # fmt: skip
    p.add_argument("--out", help="the output root instead of the sweep file's `out`")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for every run (e.g. data.root=/data/cifar10)")  # fmt: skip
    return p


def with_extra(spec: SweepSpec, extra: list[str]) -> SweepSpec:
    for text in extra:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UserError(f"--set {text!r} must look like key.sub=value")
        spec.set[key] = value
    return spec


def state_table(runs: list[PlannedRun], jobs: dict[str, str] | None = None) -> str:
    """One line per run: its state (and SLURM job state), what it waits for, why it failed."""
    lines = []
    width = max(len(r.run_id) for r in runs)
    for run in runs:
        state = run_state(run.run_dir).value
        extra = f"  job {jobs[run.run_id]}" if jobs and run.run_id in jobs else ""
        needs = f"  after {', '.join(run.needs)}" if run.needs else ""
        why = f"  {failure_line(run.run_dir)}" if state == RunState.FAILED.value else ""
        lines.append(f"{run.run_id:<{width}}  {state:<8}{extra}{needs}{why}")
    counts = Counter(run_state(r.run_dir).value for r in runs)
    total = ", ".join(f"{counts[s.value]} {s.value}" for s in RunState if counts[s.value])
    lines.append(f"{len(runs)} runs: {total}")
    return "\n".join(lines)


def write_expected(spec: SweepSpec, runs: list[PlannedRun]) -> Path:
    """`<out>/expected.json`: every run folder of the sweep (relative to out), for
    `tools/results.py --expect`, which counts the runs that have no folder yet as missing."""
    path = spec.out / "expected.json"
    path.write_text(json.dumps([run.run_id for run in runs], indent=1) + "\n")
    return path


def run(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workers < 0 or args.runs_per_gpu < 1:
        raise UserError("--workers must be >= 0 and --runs-per-gpu >= 1")
    spec = with_extra(load_sweep(args.sweep), args.set)
    if args.out:
        spec.out = Path(args.out).resolve()
        if spec.out.exists() and not spec.out.is_dir():
            raise UserError(f"--out {spec.out} is a file; give a folder for the runs")
    runs = plan_sweep(spec)
    check_runs(runs, spec.resources.nproc)
    if args.dry_run or (args.status and args.launcher == "local"):
        print(state_table(runs))
        return 0
    if args.launcher == "slurm":
        from common.sweep.slurm import SlurmLauncher

        launcher = SlurmLauncher(spec, runs)
        if args.status:
            print(state_table(runs, launcher.job_states()))
            return 0
        spec.out.mkdir(parents=True, exist_ok=True)
        write_expected(spec, runs)
        return launcher.launch(wait=not args.no_wait)
    from common.sweep.local import LocalLauncher

    spec.out.mkdir(parents=True, exist_ok=True)
    write_expected(spec, runs)
    print(f"sweep {spec.path}: {len(runs)} runs -> {Path(spec.out)}", flush=True)
    local = LocalLauncher(
        runs, spec.resources, args.workers, args.runs_per_gpu,
        say=lambda line: print(line, flush=True),
    )  # fmt: skip
    return local.launch()


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UserError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
