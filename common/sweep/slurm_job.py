"""What a SLURM job of a sweep runs: one run's training command, built when the job starts
(`--resume` from last.pt when the folder holds one), as a subprocess logging to the run's
sweep.log.

It is a submitit `Checkpointable`: at the time limit (SLURM's USR2, `signal_delay_s` before it)
submitit calls `checkpoint()`, which asks the training to save its exact position (SIGTERM),
and requeues the job, which then continues from last.pt. A requeue or preemption by SLURM
itself (`scontrol requeue`, SIGTERM to every process of the job) has the same effect: the
training saves and stops, the job ends without marking the run failed, and when SLURM starts
it again it resumes. A training that fails marks the run (`sweep.failed`, its last error line)
and fails the job, so the runs waiting on it (`afterok`) never start.

A job trains only if the sweep's jobs file names it as the run's job, so a job that SLURM
brings back after the launcher submitted another for the same run does not train beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from submitit.helpers import Checkpointable, DelayedSubmission

from common.sweep.command import train_command
from common.sweep.plan import PlannedRun
from common.sweep.state import LOG_NAME, RunState, clear_failed, last_error_line, mark_failed
from common.sweep.state import run_state as state_of

STOP_GRACE_S = 120.0  # the training's time to save its position once asked to stop
RECORD_WAIT_S = 30.0  # how long a job waits for the launcher to record its id
_child: subprocess.Popen | None = None  # the training of this job (not pickled with the job)
_stopped = False  # SIGTERM arrived: SLURM is requeueing, preempting or cancelling the job


def _ignore_usr2() -> None:
    """In the training process: SLURM's time-limit warning (USR2) is for submitit, not it."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _on_sigterm(signum: int, frame: object) -> None:
    global _stopped
    _stopped = True
    _signal_child(signal.SIGTERM)


def _signal_child(sig: int) -> None:
    if _child is not None and _child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(_child.pid, sig)


def _stop_child() -> None:
    """Ask the training to save and stop; kill it if it does not within STOP_GRACE_S."""
    if _child is None:
        return
    _signal_child(signal.SIGTERM)
    try:
        _child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        _signal_child(signal.SIGKILL)
        _child.wait()


class TrainJob(Checkpointable):
    """Train (or continue) one planned run inside a SLURM job."""

    def __init__(
        self,
        run: PlannedRun,
        folders: dict[str, Path],
        nproc: int,
        python: str,
        threads: int,
        jobs_path: Path,
    ) -> None:
        self.run = run
        self.folders = folders
        self.nproc = nproc
        self.python = python
        self.threads = threads
        self.jobs_path = jobs_path

    # -- is this job the run's job? ------------------------------------------------------
    def _recorded_id(self) -> str | None:
        try:
            record = json.loads(self.jobs_path.read_text()).get(self.run.run_id)
        except (OSError, ValueError):
            return None
        return str(record["job_id"]) if record else None

    def _superseded_by(self, job_id: str) -> str | None:
        """The run's recorded job when it is another one (None: this job may train)."""
        deadline = time.time() + RECORD_WAIT_S
        while True:
            recorded = self._recorded_id()
            if recorded == job_id or (recorded is None and time.time() > deadline):
                return None
            if recorded is not None and recorded != job_id and time.time() > deadline:
                return recorded
            time.sleep(1.0)

    # -- the job ------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        cpus = int(env.get("SLURM_CPUS_PER_TASK") or self.threads or 1)
        threads = str(max(1, cpus // max(1, self.nproc)))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        return env

    def __call__(self) -> str:
        global _child
        run_dir = self.run.run_dir
        job_id = os.environ.get("SLURM_JOB_ID", "?")
        other = self._superseded_by(job_id)
        if other is not None:
            return f"job {job_id} not run: the sweep submitted job {other} for {self.run.run_id}"
        if state_of(run_dir) is RunState.DONE:
            return str(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        clear_failed(run_dir)
        cmd = train_command(self.run, self.folders, self.nproc, self.python)
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        signal.signal(signal.SIGTERM, _on_sigterm)
        with open(run_dir / LOG_NAME, "a") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n== {stamp} slurm job {job_id} (restart {restarts}) {' '.join(cmd)}\n")
            log.flush()
            _child = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                preexec_fn=_ignore_usr2, start_new_session=True,
            )  # fmt: skip
            try:
                while _child.poll() is None:
                    time.sleep(0.5)
            except BaseException:  # submitit's requeue at the time limit exits through here
                _stop_child()
                raise
            code = _child.returncode
        if _stopped:  # SLURM ends or requeues the job; the position is in last.pt
            sys.exit(143)
        if code == 0 and state_of(run_dir) is RunState.DONE:
            return str(run_dir)
        line = last_error_line(run_dir / LOG_NAME)
        mark_failed(run_dir, line)
        raise RuntimeError(f"run {self.run.run_id} failed (exit {code}): {line}")

    def checkpoint(self, *args: object, **kwargs: object) -> DelayedSubmission:
        """At the time limit: the training saves its position; the requeued job resumes it."""
        _signal_child(signal.SIGTERM)
        return DelayedSubmission(
            TrainJob(self.run, self.folders, self.nproc, self.python, self.threads,
                     self.jobs_path)
        )  # fmt: skip
