"""The local launcher: `workers` runs at a time on this machine, each with its own devices.

On GPUs each run gets `CUDA_VISIBLE_DEVICES` (its `resources.gpus`, or one per process) from
the GPUs with the fewest runs on them, `runs_per_gpu` runs sharing one GPU at most; on the CPU
the cores are divided between the runs that will share them (`OMP_NUM_THREADS`; a run that
starts alone, a teacher the others wait for, gets every core) unless `resources.cpus` says. A
run's output goes to `<run>/sweep.log`; a failing run is marked (`sweep.failed`, its last error
line) and the others go on; runs waiting on a failed one are not started. SIGINT/SIGTERM stop
the runs (each saves its exact position) and the next call continues them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.sweep.command import train_command
from common.sweep.plan import PlannedRun
from common.sweep.spec import Resources
from common.sweep.state import (
    LOG_NAME,
    RunState,
    clear_failed,
    last_error_line,
    mark_failed,
    run_state,
)

STOP_GRACE_S = 60.0  # a stopped run's time to save its position before it is killed


def visible_gpus() -> list[str]:
    """The GPUs this process may use (CUDA_VISIBLE_DEVICES, else every one torch sees)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no CUDA build, no driver: no GPU
        return []


@dataclass
class Running:
    run: PlannedRun
    proc: subprocess.Popen
    gpus: list[str]
    started: float
    log: object


def fmt_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LocalLauncher:
    """Runs a sweep's runs as subprocesses, `workers` at a time, dependencies first."""

    def __init__(
        self,
        runs: list[PlannedRun],
        resources: Resources,
        workers: int = 0,
        runs_per_gpu: int = 1,
        python: str = sys.executable,
        say: Callable[[str], None] = print,
        gpus: list[str] | None = None,
    ) -> None:
        self.runs = runs
        self.folders = {run.run_id: run.run_dir for run in runs}
        self.resources = resources
        self.gpus = visible_gpus() if gpus is None else gpus
        self.runs_per_gpu = max(1, runs_per_gpu)
        per_run = max(resources.gpus, resources.nproc) if self.gpus else 0
        slots = len(self.gpus) * self.runs_per_gpu // max(per_run, 1) if self.gpus else 1
        self.workers = workers or max(1, slots)
        self.python = python
        self.say = say
        self.gpu_load = {g: 0 for g in self.gpus}
        self.running: dict[str, Running] = {}
        self.failed: dict[str, str] = {}
        self.blocked: set[str] = set()
        self.done_times: list[float] = []
        self.stopping = False

    # -- devices ------------------------------------------------------------------------
    def threads(self, sharing: int) -> int:
        """Threads for a run that starts now: `resources.cpus`, else the machine's cores divided
        between the runs that will share them (`sharing`, at most `workers`), so that a run
        that starts alone, like a teacher the others wait for, gets every core."""
        if self.resources.cpus:
            return self.resources.cpus
        return max(1, (os.cpu_count() or 1) // max(1, min(self.workers, sharing)))

    def _take_gpus(self) -> list[str] | None:
        """GPUs for one run (None: none free now); [] on a CPU-only machine."""
        if not self.gpus:
            return []
        need = max(self.resources.gpus, self.resources.nproc)
        free = sorted((load, g) for g, load in self.gpu_load.items() if load < self.runs_per_gpu)
        if len(free) < need:
            return None
        chosen = [g for _, g in free[:need]]
        for g in chosen:
            self.gpu_load[g] += 1
        return chosen

    def _env(self, gpus: list[str], sharing: int) -> dict[str, str]:
        env = dict(os.environ)
        threads = str(self.threads(sharing))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        return env

    # -- scheduling ---------------------------------------------------------------------
    def _state(self, run: PlannedRun) -> RunState:
        return run_state(run.run_dir)

    def _ready(self, run: PlannedRun) -> bool:
        for need in run.needs:
            if need in self.failed or need in self.blocked:
                self.blocked.add(run.run_id)
                return False
            if run_state(self.folders[need]) is not RunState.DONE:
                return False
        return True

    def _start(self, run: PlannedRun, gpus: list[str], sharing: int) -> None:
        clear_failed(run.run_dir)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        cmd = train_command(run, self.folders, self.resources.nproc, self.python)
        log = open(run.run_dir / LOG_NAME, "a")  # noqa: SIM115 - closed when the run ends
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(gpus, sharing),
            start_new_session=True,
        )
        self.running[run.run_id] = Running(run, proc, gpus, time.time(), log)

    def _finish(self, item: Running, code: int) -> None:
        item.log.close()
        for g in item.gpus:
            self.gpu_load[g] -= 1
        del self.running[item.run.run_id]
        if self.stopping:
            return
        if code == 0 and run_state(item.run.run_dir) is RunState.DONE:
            self.done_times.append(time.time() - item.started)
            self.say(f"done    {item.run.run_id} ({fmt_seconds(time.time() - item.started)})")
            return
        line = last_error_line(item.run.run_dir / LOG_NAME)
        mark_failed(item.run.run_dir, line)
        self.failed[item.run.run_id] = line
        self.say(f"FAILED  {item.run.run_id} (exit {code}): {line}")

    def stop(self, *_: object) -> None:
        """Ask every run to save and stop (SIGTERM to its process group), then wait."""
        if self.stopping:
            return
        self.stopping = True
        self.say(f"stopping {len(self.running)} run(s); the next call continues them")
        for item in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(item.proc.pid, signal.SIGTERM)

    def _progress(self, todo: list[PlannedRun], started: float) -> str:
        running = set(self.running)
        done = sum(
            r.run_id not in running and run_state(r.run_dir) is RunState.DONE for r in self.runs
        )
        eta = ""
        if self.done_times:
            per = sum(self.done_times) / len(self.done_times)
            left = len(todo) + len(self.running)
            eta = f"  eta {fmt_seconds(per * left / self.workers)}"
        return (
            f"[sweep] done {done}/{len(self.runs)}  running {len(self.running)}  "
            f"failed {len(self.failed)}  pending {len(todo)}  "
            f"elapsed {fmt_seconds(time.time() - started)}{eta}"
        )

    def launch(self, poll_s: float = 0.5, report_every_s: float = 60.0) -> int:
        """Run every run that is not done; 0 if all end done, 1 if any failed, 130 if stopped."""
        started = time.time()
        # seed-major: every row's first seed before any row's second (a stopped sweep has a
        # table with one seed a row rather than some rows complete and others missing)
        order = sorted(self.runs, key=lambda r: r.seed)
        todo = [r for r in order if run_state(r.run_dir) is not RunState.DONE]
        handlers = {s: signal.signal(s, self.stop) for s in (signal.SIGINT, signal.SIGTERM)}
        last_report = 0.0
        try:
            while (todo or self.running) and not self.stopping:
                for item in list(self.running.values()):
                    code = item.proc.poll()
                    if code is not None:
                        self._finish(item, code)
                        last_report = 0.0
                ready = [r for r in todo if r.run_id not in self.blocked and self._ready(r)]
                sharing = len(self.running) + len(ready)
                for run in ready:
                    if len(self.running) >= self.workers:
                        break
                    gpus = self._take_gpus()
                    if gpus is None:
                        break
                    todo.remove(run)
                    self._start(run, gpus, sharing)
                    self.say(f"start   {run.run_id}")
                    last_report = 0.0
                todo = [r for r in todo if r.run_id not in self.blocked]
                if not self.running and todo:  # nothing can start: all wait on failures
                    self.blocked.update(r.run_id for r in todo)
                    todo = []
                if time.time() - last_report > report_every_s:
                    self.say(self._progress(todo, started))
                    last_report = time.time()
                time.sleep(poll_s)
            if self.stopping:
                deadline = time.time() + STOP_GRACE_S
                while self.running and time.time() < deadline:
                    for item in list(self.running.values()):
                        if item.proc.poll() is not None:
                            self._finish(item, item.proc.returncode)
                    time.sleep(poll_s)
                for item in list(self.running.values()):
                    os.killpg(item.proc.pid, signal.SIGKILL)
                    item.proc.wait()
                    self._finish(item, -9)
                return 130
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        for run_id in sorted(self.blocked):
            self.say(f"skipped {run_id}: a run it waits for failed")
        self.say(self._progress([], started))
        return 1 if self.failed or self.blocked else 0
