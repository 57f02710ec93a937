"""The SLURM launcher (`tools/sweep.py SWEEP --launcher slurm`): one job per run, through
submitit (the `.[slurm]` extra).

`launch()` submits every run that is not done and has no job queued or running already (the
jobs file, `<out>/.sweep/slurm_jobs.json`, remembers them; submitit's files are in
`<out>/.sweep/submitit/`), runs waiting on another as `afterok:<its job>` (none when that run
is done), prints the job ids and how to follow them, then, unless `wait=False`, follows the
jobs with the local launcher's lines (start / done / FAILED and a progress line) until every
job has ended: exit 0 when every run is done, 1 otherwise. Ctrl-C stops following, not the
jobs (exit 130). A job that ends without its run done marks the run failed (its last error
line, or the job's state: TIMEOUT, CANCELLED...), and the jobs waiting on it are cancelled.
`job_states()` is what `--status` shows: each run's job id and SLURM state.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable

from common.sweep.check import SweepError
from common.sweep.inprocess import dependency_order
from common.sweep.local import fmt_seconds
from common.sweep.plan import PlannedRun
from common.sweep.slurm_options import slurm_parameters
from common.sweep.slurm_queue import (
    JobRecord,
    cancel,
    is_active,
    jobs_file,
    load_jobs,
    query_states,
    require_slurm,
    require_submitit,
    save_jobs,
)
from common.sweep.spec import SweepSpec
from common.sweep.state import (
    LOG_NAME,
    RunState,
    clear_failed,
    failure_line,
    last_error_line,
    mark_failed,
    run_state,
)

MAX_TIMEOUTS = 50  # requeues at the time limit before submitit gives a run up


def job_name(spec: SweepSpec, run: PlannedRun) -> str:
    """`<sweep file stem>/<run id>`, shell-safe (what squeue shows)."""
    return re.sub(r"[^A-Za-z0-9._/=+:,-]", "_", f"{spec.path.stem}/{run.run_id}")


class SlurmLauncher:
    """Submits a sweep's runs as SLURM jobs and follows them."""

    def __init__(
        self,
        spec: SweepSpec,
        runs: list[PlannedRun],
        python: str = sys.executable,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
    ) -> None:
        require_submitit()
        require_slurm()
        self.spec = spec
        self.runs = runs
        self.by_id = {run.run_id: run for run in runs}
        self.folders = {run.run_id: run.run_dir for run in runs}
        self.python = python
        self.say = say
        self.stop_following = False

    # -- reading back ---------------------------------------------------------------------
    def job_states(self) -> dict[str, str]:
        """`<job id> <SLURM state>` of each run that has a recorded job."""
        jobs = load_jobs(self.spec.out)
        states = query_states(jobs)
        return {run_id: f"{jobs[run_id].job_id} {states[run_id]}" for run_id in jobs}

    # -- submitting -----------------------------------------------------------------------
    def _executor(self):  # noqa: ANN202 - submitit's type, imported lazily
        import submitit

        folder = self.spec.out / ".sweep" / "submitit" / "%j"
        return submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_TIMEOUTS)

    def _submit(self, run: PlannedRun, after: list[str]) -> str:
        """Submit one run's job (a fresh executor: submitit's parameters accumulate)."""
        from common.sweep.slurm_job import TrainJob

        res = self.spec.resources
        params = slurm_parameters(res, job_name(self.spec, run))
        if after:
            params["dependency"] = "afterok:" + ":".join(after)
        job = TrainJob(
            run, self.folders, res.nproc, self.python, res.cpus, jobs_file(self.spec.out)
        )
        quiet = io.StringIO()  # submitit prints sbatch's stderr itself; we say it in one line
        try:
            with contextlib.redirect_stderr(quiet):
                executor = self._executor()
                executor.update_parameters(**params)
                return str(executor.submit(job).job_id)
        except ValueError as err:  # a parameter submitit does not know
            raise SweepError(f"resources.sbatch: {str(err).splitlines()[0]}") from None
        except Exception as err:  # noqa: BLE001 - sbatch refused the job: its own message
            lines = [line for line in str(err).splitlines() if line.strip()]
            why = next((line for line in lines if "error" in line.lower()), lines[-1:] or [""])
            raise SweepError(f"sbatch refused run {run.run_id}: {str(why).strip()}") from None

    def submit(self) -> tuple[dict[str, JobRecord], set[str]]:
        """Submit what is not done and not already queued: every recorded job, and the runs
        whose jobs are to follow (those submitted and those queued already)."""
        jobs = load_jobs(self.spec.out)
        states = query_states(jobs)
        queued = {run_id for run_id, state in states.items() if is_active(state)}
        todo = [
            run
            for run in dependency_order(self.runs)
            if run_state(run.run_dir) is not RunState.DONE and run.run_id not in queued
        ]
        done = sum(run_state(r.run_dir) is RunState.DONE for r in self.runs)
        self.say(
            f"sweep {self.spec.path}: {len(self.runs)} runs -> {self.spec.out}; {done} done, "
            f"{len(queued & set(self.by_id))} queued already, {len(todo)} to submit"
        )
        tracked = {run.run_id for run in todo} | (queued & set(self.by_id))
        if not todo:
            return jobs, tracked
        for run in todo:
            after = [
                jobs[need].job_id
                for need in run.needs
                if run_state(self.folders[need]) is not RunState.DONE and need in jobs
            ]
            clear_failed(run.run_dir)
            name = job_name(self.spec, run)
            job_id = self._submit(run, after)
            jobs[run.run_id] = JobRecord(job_id, name, time.time())
            save_jobs(self.spec.out, jobs)
            wait = f" after {', '.join(after)}" if after else ""
            self.say(f"submitted {run.run_id}: job {job_id}{wait}")
        return jobs, tracked

    def _clean_refused(self, fresh: bool) -> None:
        """After sbatch refused a job: submitit's files of it, and an output root this call
        made when nothing was submitted (a refused sweep leaves nothing behind)."""
        folder = self.spec.out / ".sweep" / "submitit"
        for leftover in [*folder.glob("*.pkl"), *folder.glob(".submission_file_*")]:
            leftover.unlink(missing_ok=True)
        if fresh and not jobs_file(self.spec.out).exists():
            shutil.rmtree(self.spec.out, ignore_errors=True)

    def _follow_hint(self, jobs: dict[str, JobRecord]) -> None:
        ids = " ".join(sorted({jobs[r].job_id for r in jobs if r in self.by_id}, key=int))
        self.say(
            f"follow: python tools/sweep.py {self.spec.path} --launcher slurm --status "
            f"(or squeue; each run's output is in <run>/{LOG_NAME}); stop: scancel {ids}"
        )

    # -- following ------------------------------------------------------------------------
    def _stop(self, *_: object) -> None:
        self.stop_following = True

    def _progress(
        self, seen: dict[str, str], failed: set[str], skipped: set[str], started: float
    ) -> str:
        done = sum(run_state(r.run_dir) is RunState.DONE for r in self.runs)
        live = [state for run_id, state in seen.items() if run_id not in failed | skipped]
        running = sum(state == "RUNNING" for state in live)
        pending = sum(is_active(state) and state != "RUNNING" for state in live)
        more = f"  skipped {len(skipped)}" if skipped else ""
        return (
            f"[sweep] done {done}/{len(self.runs)}  running {running}  failed {len(failed)}"
            f"{more}  pending {pending}  elapsed {fmt_seconds(time.time() - started)}"
        )

    def _ended(self, run_id: str, job: JobRecord, state: str) -> str:
        """Mark a run whose job ended without it done; its failure line."""
        run = self.by_id[run_id]
        line = failure_line(run.run_dir)
        if not line:
            log_line = last_error_line(run.run_dir / LOG_NAME)
            line = f"job {job.job_id} ended {state}: {log_line}"
            mark_failed(run.run_dir, line)
        return line

    def _cancel_waiting(self, failed: set[str], skipped: set[str], jobs: dict[str, JobRecord]):
        """Cancel the jobs of runs waiting (through others) on a failed run; the skipped."""
        changed = True
        while changed:
            changed = False
            for run in self.runs:
                if run.run_id in skipped or run.run_id in failed:
                    continue
                if any(need in failed or need in skipped for need in run.needs):
                    skipped.add(run.run_id)
                    changed = True
                    if run.run_id in jobs:
                        cancel([jobs[run.run_id].job_id])
                    self.say(f"skipped {run.run_id}: a run it waits for failed")

    def _look(
        self,
        jobs: dict[str, JobRecord],
        states: dict[str, str],
        seen: dict[str, str],
        ended: dict[str, int],
        query: int,
    ) -> set[str]:
        """One look at the runs (their folders) and their jobs (SLURM's `states` from query
        number `query`): say what started or finished; the runs whose jobs have ended without
        them done at two queries in a row (not a shared file system's lag)."""
        lost = set()
        for run_id, job in jobs.items():
            state = states.get(run_id, "PENDING")
            if state == "RUNNING" and seen.get(run_id) not in ("RUNNING", "done"):
                self.say(f"start   {run_id} (job {job.job_id})")
            if run_state(self.folders[run_id]) is RunState.DONE:
                if seen.get(run_id) != "done":
                    took = fmt_seconds(time.time() - job.submitted)
                    self.say(f"done    {run_id} ({took} since submission)")
                state = "done"
            elif not is_active(state):
                ended.setdefault(run_id, query)
                marked = run_state(self.folders[run_id]) is RunState.FAILED  # by the job itself
                if marked or query > ended[run_id]:
                    lost.add(run_id)
            seen[run_id] = state
        return lost

    def follow(
        self,
        jobs: dict[str, JobRecord],
        poll_s: float = 0.5,
        queue_every_s: float = 10.0,
        report_every_s: float = 60.0,
    ) -> int:
        """Follow the jobs until each has ended (run folders looked at every `poll_s`, SLURM
        asked every `queue_every_s`, or 2 s after a job ended without its run done, to confirm);
        0 if every run is done, 1 if not, 130 if stopped following (the jobs go on)."""
        started = time.time()
        seen: dict[str, str] = {}
        states: dict[str, str] = {}
        ended: dict[str, int] = {}  # run -> the query that first saw its job ended
        failed: set[str] = set()
        skipped: set[str] = set()
        last_report = last_query = time.time()
        query = 0
        handlers = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stop_following:
                following = {r: j for r, j in jobs.items() if r not in failed | skipped}
                confirm = any(r in ended for r in following if seen.get(r) != "done")
                every = min(queue_every_s, 2.0) if confirm else queue_every_s  # a job just ended
                if query == 0 or time.time() - last_query >= every:
                    states, query, last_query = query_states(following), query + 1, time.time()
                for run_id in sorted(self._look(following, states, seen, ended, query)):
                    run = self.by_id[run_id]
                    if any(run_state(self.folders[n]) is not RunState.DONE for n in run.needs):
                        continue  # waits on a run that failed: skipped below
                    failed.add(run_id)
                    job = jobs[run_id]
                    line = self._ended(run_id, job, seen[run_id])
                    self.say(f"FAILED  {run_id} (job {job.job_id} {seen[run_id]}): {line}")
                self._cancel_waiting(failed, skipped, jobs)
                left = [r for r in jobs if r not in failed | skipped and seen.get(r) != "done"]
                if time.time() - last_report > report_every_s:
                    self.say(self._progress(seen, failed, skipped, started))
                    last_report = time.time()
                if not left:
                    break
                time.sleep(poll_s)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if self.stop_following:
            self.say("stopped following; the jobs go on (--status shows them)")
            return 130
        self.say(self._progress(seen, failed, skipped, started))
        every_done = all(run_state(r.run_dir) is RunState.DONE for r in self.runs)
        return 0 if every_done else 1

    def launch(self, wait: bool = True) -> int:
        """Submit (see the module's doc), then follow the jobs unless `wait` is False."""
        fresh = not self.spec.out.exists()
        try:
            jobs, tracked = self.submit()
        except SweepError:
            self._clean_refused(fresh)
            raise
        if all(run_state(r.run_dir) is RunState.DONE for r in self.runs):
            self.say("every run is done; nothing submitted")
            return 0
        self._follow_hint(jobs)
        if not wait:
            return 0
        mine = {r: jobs[r] for r in self.by_id if r in jobs and r in tracked}
        return self.follow(mine)
