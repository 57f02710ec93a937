"""What the SLURM launcher asks of SLURM and remembers: whether a cluster is reachable (and
submitit installed), the jobs a sweep submitted (`<out>/.sweep/slurm_jobs.json`), and those
jobs' states (squeue while SLURM holds them, then sacct where accounting is on).

A job is matched by its id and its name, so a recorded id that a restarted cluster gave to
another job is not taken for the sweep's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from common.sweep.check import SweepError

JOBS_FILE = "slurm_jobs.json"
LOCAL_CLUSTER_CONF = Path(os.environ.get("KDZOO_SLURM_DIR") or "/tmp/kdzoo-slurm") / "slurm.conf"
# States in which a job is still SLURM's to run (it may start, run, or come back after a
# requeue). PREEMPTED is not: it is final where preemption cancels (a requeued job shows REQUEUED).
ACTIVE = frozenset(
    {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED"}
    | {"STOPPED", "SIGNALING", "STAGE_OUT", "CONFIGURING", "COMPLETING", "RESV_DEL_HOLD"}
    | {"POWER_UP_NODE"}
)
GONE = "GONE"  # neither squeue nor sacct knows the job any more


@dataclass
class JobRecord:
    """One submitted job: its id, its SLURM name, and when it was submitted (epoch seconds)."""

    job_id: str
    name: str
    submitted: float


def jobs_file(out: Path) -> Path:
    return out / ".sweep" / JOBS_FILE


def load_jobs(out: Path) -> dict[str, JobRecord]:
    """The jobs recorded for a sweep, by run id ({} when none were submitted)."""
    path = jobs_file(out)
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {run_id: JobRecord(**item) for run_id, item in raw.items()}
    except (ValueError, TypeError) as err:
        raise SweepError(f"{path} is not a jobs file ({err}); move it away") from None


def save_jobs(out: Path, jobs: dict[str, JobRecord]) -> None:
    """Write the records atomically (a launcher stopped mid-way keeps what it submitted)."""
    path = jobs_file(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: asdict(v) for k, v in sorted(jobs.items())}, indent=1) + "\n")
    tmp.replace(path)


def require_submitit() -> None:
    """submitit imports, else the extra to install, as one line."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise SweepError(
            "the SLURM launcher needs submitit, which is not installed: "
            "pip install -e '.[slurm]' (or pip install 'submitit>=1.5')"
        ) from None


def _sinfo() -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def require_slurm() -> None:
    """sbatch, srun and squeue exist and the controller answers `sinfo`; without SLURM_CONF
    and with no system cluster answering, the local cluster of tools/local_slurm.sh is used
    (SLURM_CONF is then set here, so the jobs' own scontrol calls find it too)."""
    missing = [cmd for cmd in ("sbatch", "srun", "squeue", "sinfo") if not shutil.which(cmd)]
    if missing:
        raise SweepError(
            f"SLURM is not reachable: {', '.join(missing)} not found; on a machine without a "
            "cluster, apt-get install -y slurm-wlm munge and start one with "
            "tools/local_slurm.sh start"
        )
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():  # sinfo would retry for a minute
        raise SweepError(
            f"SLURM is not reachable: SLURM_CONF={conf} is not a file; point it at the "
            "cluster's slurm.conf, or start a local cluster with tools/local_slurm.sh start"
        )
    result = _sinfo()
    failing = result is None or result.returncode
    if failing and "SLURM_CONF" not in os.environ and LOCAL_CLUSTER_CONF.is_file():
        os.environ["SLURM_CONF"] = str(LOCAL_CLUSTER_CONF)
        result = _sinfo()
        if result is None or result.returncode:
            del os.environ["SLURM_CONF"]
    if result is None or result.returncode:
        why = "no answer in 30 s" if result is None else _last_line(result.stderr)
        conf = os.environ.get("SLURM_CONF", "unset")
        raise SweepError(
            f"SLURM is not reachable: sinfo failed ({why}); start a local cluster with "
            f"tools/local_slurm.sh start, or check SLURM_CONF (now {conf})"
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _query(cmd: list[str]) -> list[list[str]]:
    """Rows of a `|`-separated SLURM listing ([] when the command fails)."""
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode:
        return []
    return [line.split("|") for line in result.stdout.splitlines() if line.strip()]


def query_states(jobs: dict[str, JobRecord]) -> dict[str, str]:
    """SLURM's state of each recorded job, by run id (`GONE` when SLURM no longer knows it,
    or knows that id as another job's)."""
    if not jobs:
        return {}
    ids = ",".join(sorted({record.job_id for record in jobs.values()}))
    found: dict[str, tuple[str, str]] = {}
    for job_id, state, name in _query(["squeue", "-h", "-t", "all", "-j", ids, "-o", "%i|%T|%j"]):
        found[job_id] = (state, name)
    missing = [r.job_id for r in jobs.values() if r.job_id not in found]
    if missing and shutil.which("sacct"):
        cmd = ["sacct", "-n", "-P", "-X", "-j", ",".join(missing), "-o", "JobID,State,JobName"]
        for job_id, state, name in _query(cmd):
            found.setdefault(job_id, (state.split()[0] if state else GONE, name))
    states = {}
    for run_id, record in jobs.items():
        state, name = found.get(record.job_id, (GONE, record.name))
        states[run_id] = state if name == record.name else GONE
    return states


def is_active(state: str) -> bool:
    return state in ACTIVE


def cancel(job_ids: list[str]) -> None:
    """scancel the jobs (quietly: one already ended is no error)."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)
