"""The SLURM launcher on a real single-node cluster (tools/local_slurm.sh; nothing mocked): a
sweep's runs submitted as jobs, the students waiting on the teacher's job, all collected; a job
requeued mid-run resumes from last.pt and ends with the weights of an uninterrupted run; bad
input is one `error:` line with nothing submitted.

A session fixture starts the cluster when it is not up (and stops it afterwards). Without
slurm-wlm, munge or submitit the tests skip with one line, unless KD_REQUIRE_SLURM=1 (CI),
which makes them fail. Runs are the demo's synthetic recipes cut to tiny sizes, one CPU a job.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from common.sweep.cli import main as sweep_main
from common.sweep.plan import plan_sweep
from common.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tools" / "recipes" / "demo"
SCRIPT = REPO / "tools" / "local_slurm.sh"
CONF = Path(os.environ.get("KDZOO_SLURM_DIR") or "/tmp/kdzoo-slurm") / "slurm.conf"
TINY = {
    "device": "cpu",
    "data.synthetic.train_per_class": 8,
    "data.synthetic.val_per_class": 4,
    "data.synthetic.num_classes": 4,
    "data.synthetic.num_superclasses": 2,
    "train.batch_size": 16,
}


def slurm_required() -> bool:
    """Whether missing SLURM is a failure (CI) rather than a skip (a contributor)."""
    return os.environ.get("KD_REQUIRE_SLURM", "") not in ("", "0")


def missing_parts() -> str:
    """What this machine lacks for a local cluster and how to get it ('' when nothing)."""
    commands = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")
    missing = [c for c in commands if not (shutil.which(c) or Path(f"/usr/sbin/{c}").exists())]
    fixes = [f"{', '.join(missing)} (apt-get install -y slurm-wlm munge)"] if missing else []
    if importlib.util.find_spec("submitit") is None:
        fixes.append("submitit (pip install -e '.[slurm]')")
    return "; ".join(fixes)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """The local cluster's slurm.conf, the cluster up (started here if it was not)."""
    missing = missing_parts()
    if missing:
        message = f"SLURM tests need {missing}"
        if slurm_required():
            pytest.fail(f"{message} (KD_REQUIRE_SLURM is set)", pytrace=False)
        pytest.skip(message)
    started = subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode != 0
    if started:
        subprocess.run([str(SCRIPT), "start"], check=True, capture_output=True, timeout=60)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(CONF)
    try:
        yield CONF
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        if started:
            subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=120)


def write_sweep(folder: Path, **changes: object) -> Path:
    """The demo teacher (seed 0) and KD students waiting on it, one CPU a job."""
    sweep = {
        "out": "out",
        "seeds": [0, 1],
        "set": {**TINY, "train.epochs": 1, "teacher.checkpoint": "{run:teacher/seed0}/final.pt"},
        "recipes": [
            {
                "recipe": str(DEMO / "teacher.yaml"),
                "label": "teacher",
                "seeds": [0],
                "inherit": False,
                "set": {**TINY, "train.epochs": 1},
            },
            str(DEMO / "kd.yaml"),
        ],
        "resources": {"cpus": 1, "time_min": 10},
    }
    sweep.update(changes)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def sweep_cmd(path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "tools" / "sweep.py"),
        str(path),
        "--launcher",
        "slurm",
        *args,
    ]


def run_sweep(path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        sweep_cmd(path, *args),
        capture_output=True,
        text=True,
        env=env,
        cwd=path.parent,
        timeout=timeout,
    )


def recorded_jobs(out: Path) -> dict[str, str]:
    raw = json.loads((out / ".sweep" / "slurm_jobs.json").read_text())
    return {run_id: item["job_id"] for run_id, item in raw.items()}


def job_info(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True
    ).stdout


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state.get("model", state)


def test_a_sweep_of_jobs_finishes_and_is_collected(slurm_cluster: Path, tmp_path: Path) -> None:
    """Submitted without waiting, submitted again (nothing twice), followed to the end; the
    students' jobs wait on the teacher's (afterok); --status shows every run done."""
    path = write_sweep(tmp_path)
    first = run_sweep(path, "--no-wait")
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "out"
    jobs = recorded_jobs(out)
    assert sorted(jobs) == ["kd/seed0", "kd/seed1", "teacher/seed0"]
    for student in ("kd/seed0", "kd/seed1"):
        script = (out / ".sweep" / "submitit" / jobs[student]).glob("*_submission.sh")
        assert f"--dependency=afterok:{jobs['teacher/seed0']}" in next(script).read_text()
    assert "NumCPUs=1 " in job_info(jobs["kd/seed0"])  # resources.cpus: one CPU a job
    second = run_sweep(path)  # the jobs are queued or running: none is submitted again
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 to submit" in second.stdout
    assert not any(line.startswith("submitted ") for line in second.stdout.splitlines())
    assert recorded_jobs(out) == jobs
    for run_id in jobs:
        assert (out / run_id / "summary.json").is_file()
        assert "slurm job" in (out / run_id / "sweep.log").read_text()
    status = run_sweep(path, "--status")
    assert status.returncode == 0 and "3 runs: 3 done" in status.stdout, status.stdout
    lines = status.stdout.splitlines()
    for run_id, job_id in jobs.items():
        line = next(line for line in lines if line.startswith(run_id + " "))
        assert "done" in line and f"job {job_id} COMPLETED" in line, line
    again = run_sweep(path)
    assert again.returncode == 0 and "nothing submitted" in again.stdout


def test_a_requeued_job_resumes_to_the_same_weights(slurm_cluster: Path, tmp_path: Path) -> None:
    """`scontrol requeue` once last.pt exists: the training saves its position, the job comes
    back and continues with --resume, and final.pt equals that of a run never stopped."""
    tiny = {**TINY, "data.synthetic.train_per_class": 40, "train.epochs": 8}
    path = write_sweep(
        tmp_path,
        seeds=[0],
        set=tiny,
        recipes=[{"recipe": str(DEMO / "vanilla.yaml"), "label": "vanilla"}],
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(
        sweep_cmd(path),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run_dir = tmp_path / "out" / "vanilla" / "seed0"
    deadline = time.time() + 120
    while not (run_dir / "last.pt").is_file() and time.time() < deadline:
        time.sleep(0.05)
    job_id = recorded_jobs(tmp_path / "out")["vanilla/seed0"]
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    # SLURM holds a requeued job for two minutes (BeginTime); a user in a hurry releases it
    while "JobState=PENDING" not in job_info(job_id) and time.time() < deadline:
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    out, _ = launcher.communicate(timeout=180)
    assert launcher.returncode == 0, out
    log = (run_dir / "sweep.log").read_text()
    assert "interrupted at epoch" in log and "--resume" in log, log
    assert "restart 1" in log
    # the same run, trained locally without a stop
    ref = tmp_path / "ref"
    run = plan_sweep(load_sweep(path))[0]
    args = ["-m", "common.train", "--recipe", str(run.recipe), "--out", str(ref)]
    subprocess.run([sys.executable, *args, *run.overrides], check=True, env=env, cwd=REPO)
    a, b = weights(run_dir / "final.pt"), weights(ref / "final.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_refused_job_is_one_line_and_submits_nothing(
    slurm_cluster: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, resources={"cpus": 1, "partition": "nosuchpartition"})
    assert sweep_main([str(path), "--launcher", "slurm"]) == 2
    line = one_error_line(capsys)
    assert "sbatch refused run teacher/seed0" in line and "partition" in line
    assert not (tmp_path / "out" / ".sweep" / "slurm_jobs.json").exists()


def test_no_submitit_is_one_line_naming_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` fails
    path = write_sweep(tmp_path)
    assert sweep_main([str(path), "--launcher", "slurm"]) == 2
    assert "pip install -e '.[slurm]'" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"PATH": "/nonexistent"}, "sbatch, srun, squeue, sinfo not found"),
        ({"SLURM_CONF": "/nonexistent/slurm.conf"}, "tools/local_slurm.sh start"),
    ],
)
def test_slurm_not_reachable_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expect: str,
) -> None:
    if importlib.util.find_spec("submitit") is None and not slurm_required():
        pytest.skip("needs submitit (pip install -e '.[slurm]')")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = write_sweep(tmp_path)
    assert sweep_main([str(path), "--launcher", "slurm"]) == 2
    assert expect in one_error_line(capsys)
    assert not (tmp_path / "out").exists()
