"""Sweeps on the local launcher: run folders, states, checks before anything starts, failures
that do not stop the others, and a stopped sweep that continues bit-exactly on the next call.

Runs are the demo's synthetic recipes cut to one or two tiny epochs (a few seconds each).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from common.sweep.cli import main as sweep_main
from common.sweep.plan import plan_sweep
from common.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tools" / "recipes" / "demo"
TINY = {
    "device": "cpu",
    "data.synthetic.train_per_class": 8,
    "data.synthetic.val_per_class": 4,
    "data.synthetic.num_classes": 4,
    "data.synthetic.num_superclasses": 2,
    "train.batch_size": 16,
}


def write_sweep(folder: Path, **changes: object) -> Path:
    """A sweep: the demo teacher (seed 0), KD students waiting on it, two seeds."""
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
    }
    sweep.update(changes)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_plan_names_folders_from_recipe_grid_and_seed(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        overrides={"method.temperature": [2, 4]},
        zip=[{"optim.lr": [0.1, 0.05], "train.batch_size": [16, 8]}],
    )
    runs = plan_sweep(load_sweep(path))
    ids = [r.run_id for r in runs]
    assert ids[0] == "teacher/seed0"
    assert len(ids) == 1 + 2 * 2 * 2  # teacher + temperature x zip x seeds
    assert "kd/method.temperature=2__optim.lr=0.1__train.batch_size=16/seed1" in ids
    assert "kd/method.temperature=4__optim.lr=0.05__train.batch_size=8/seed0" in ids
    student = runs[1]
    assert student.needs == ["teacher/seed0"]
    assert student.run_dir == (tmp_path / "out" / student.run_id).resolve()
    folders = {r.run_id: r.run_dir for r in runs}
    resolved = student.resolved_overrides(folders)
    assert f"teacher.checkpoint={folders['teacher/seed0']}/final.pt" in resolved
    assert plan_sweep(load_sweep(path))[3].run_id == runs[3].run_id  # stable


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"recipes": ["nothing/*.yaml"]}, "matches no recipe file"),
        ({"recipes": ["missing.yaml"]}, "is not a file"),
        ({"seed": [0]}, "unknown key 'seed'; did you mean 'seeds'?"),
        ({"seeds": [0, 0]}, "repeats a seed"),
        ({"overrides": {"method.temperature": 2}}, "must be a non-empty list"),
        ({"zip": [{"optim.lr": [0.1], "train.epochs": [1, 2]}]}, "differ in length"),
        ({"overrides": {"method.temperatur": [2]}}, "run kd/method.temperatur=2/seed0"),
        ({"overrides": {"train.batch_size": [0]}}, "train.batch_size"),
        ({"set": {"teacher.checkpoint": "{run:nobody/seed0}/final.pt"}}, "not a run of this"),
        ({"resources": {"gpu": 1}}, "did you mean 'gpus'?"),
    ],
)
def test_a_bad_sweep_is_one_line_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, expect: str
) -> None:
    path = write_sweep(tmp_path, **change)
    assert sweep_main([str(path)]) == 2
    assert expect in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_cycle_and_an_output_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["recipes"][0]["set"]["teacher.checkpoint"] = "{run:kd/seed0}/final.pt"
    path.write_text(yaml.safe_dump(spec))
    assert sweep_main([str(path)]) == 2
    assert (
        "wait on each other: teacher/seed0 -> kd/seed0 -> teacher/seed0" in one_error_line(capsys)
        or "wait on each other" in capsys.readouterr().err
    )
    (tmp_path / "out").write_text("a file")
    path = write_sweep(tmp_path)
    assert sweep_main([str(path)]) == 2
    assert "is a file" in one_error_line(capsys)


def run_sweep(path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "tools" / "sweep.py"), str(path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=path.parent)


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state.get("model", state)


def test_sweep_runs_skips_done_and_refuses_another_experiment(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    first = run_sweep(path, "--workers", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "out"
    for run_id in ("teacher/seed0", "kd/seed0", "kd/seed1"):
        assert (out / run_id / "summary.json").is_file()
        assert (out / run_id / "sweep.log").is_file()
    dry = run_sweep(path, "--dry-run")
    assert "3 runs: 3 done" in dry.stdout
    again = run_sweep(path)  # everything done: nothing starts
    assert again.returncode == 0 and "start" not in again.stdout
    # the same folders, another experiment: refused, naming the run and the key
    spec = yaml.safe_load(path.read_text())
    spec["set"]["method.temperature"] = 2.0
    path.write_text(yaml.safe_dump(spec))
    refused = run_sweep(path)
    assert refused.returncode == 2
    assert "run kd/seed0" in refused.stderr and "method.temperature: 4.0 -> 2.0" in refused.stderr


def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["recipes"].append(
        {"recipe": str(DEMO / "dkd.yaml"), "seeds": [0], "set": {"teacher.checkpoint": "no.pt"}}
    )
    path.write_text(yaml.safe_dump(spec))
    result = run_sweep(path, "--workers", "2")
    assert result.returncode == 1
    assert "FAILED  dkd/seed0" in result.stdout and "no.pt" in result.stdout
    out = tmp_path / "out"
    assert (out / "kd" / "seed1" / "summary.json").is_file()
    assert "error:" in (out / "dkd" / "seed0" / "sweep.failed").read_text()
    dry = run_sweep(path, "--dry-run")
    assert "dkd/seed0" in dry.stdout and "failed" in dry.stdout


def test_a_stopped_sweep_continues_bit_exactly(tmp_path: Path) -> None:
    """SIGINT while the student trains; the next call resumes it from last.pt, and its final
    weights equal those of the same run trained without a stop."""
    path = write_sweep(tmp_path, seeds=[0])
    spec = yaml.safe_load(path.read_text())
    spec["set"]["train.epochs"] = 3
    spec["set"]["data.synthetic.train_per_class"] = 40
    spec["resources"] = {"cpus": 1}  # the reference below runs on one thread too
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "tools" / "sweep.py"), str(path)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    student = tmp_path / "out" / "kd" / "seed0"
    deadline = time.time() + 120
    while not (student / "last.pt").is_file() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert not (student / "summary.json").is_file()
    assert "partial" in run_sweep(path, "--dry-run").stdout
    resumed = run_sweep(path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "--resume" in (student / "sweep.log").read_text()
    # the same run without a stop
    ref = tmp_path / "ref"
    folders = {"teacher/seed0": tmp_path / "out" / "teacher" / "seed0"}
    run = [r for r in plan_sweep(load_sweep(path)) if r.run_id == "kd/seed0"][0]
    args = ["-m", "common.train", "--recipe", str(run.recipe), "--out", str(ref)]
    subprocess.run(
        [sys.executable, *args, *run.resolved_overrides(folders)], check=True, env=env, cwd=REPO
    )
    a, b = weights(student / "final.pt"), weights(ref / "final.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_threads_go_to_the_runs_that_share_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from common.sweep.local import LocalLauncher
    from common.sweep.spec import Resources

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    launcher = LocalLauncher([], Resources(), workers=4, gpus=[])
    assert launcher.threads(sharing=1) == 8  # a teacher the others wait for: every core
    assert launcher.threads(sharing=2) == 4
    assert launcher.threads(sharing=30) == 2  # never fewer than cores / workers
    pinned = LocalLauncher([], Resources(cpus=3), workers=4, gpus=[])
    assert pinned.threads(sharing=1) == 3  # resources.cpus wins
