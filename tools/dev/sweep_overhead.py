"""A launcher's own overhead per run: from submission (slurm) or spawn (local) to the run's
first step, and from its last step to the launcher noting it done; and, for scale, the same
run's first step when its command is started directly (Python, torch and data start-up).

    python tools/dev/sweep_overhead.py --launcher slurm [--repeat 3] [--out /tmp/overhead]

Each repeat is a fresh one-run sweep (the demo's vanilla recipe, tiny synthetic data, one
epoch, one thread). A run's first step is the end of its epoch (metrics.jsonl written) less
the epoch's training seconds; its last step is when summary.json is written (the tiny
validation and save in between take milliseconds). The SLURM launcher needs a cluster
(tools/local_slurm.sh start).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common.sweep.plan import plan_sweep  # noqa: E402
from common.sweep.spec import load_sweep  # noqa: E402

SWEEP = {
    "out": "out",
    "seeds": [0],
    "recipes": [str(REPO / "tools" / "recipes" / "demo" / "vanilla.yaml")],
    "set": {
        "device": "cpu",
        "train.epochs": 1,
        "train.batch_size": 16,
        "data.synthetic.train_per_class": 8,
        "data.synthetic.val_per_class": 4,
        "data.synthetic.num_classes": 4,
        "data.synthetic.num_superclasses": 2,
    },
    "resources": {"cpus": 1, "time_min": 10},
}


def first_and_last_step(run_dir: Path) -> tuple[float, float]:
    """When the run's first step began and its last ended (epoch seconds)."""
    metrics = run_dir / "metrics.jsonl"
    seconds = json.loads(metrics.read_text().splitlines()[0])["seconds"]
    return metrics.stat().st_mtime - seconds, (run_dir / "summary.json").stat().st_mtime


def one_run(folder: Path, launcher: str) -> tuple[float, float]:
    """(start -> first step, last step -> noted done) of a one-run sweep in `folder`."""
    import yaml

    folder.mkdir(parents=True)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    spec = load_sweep(path)
    runs = plan_sweep(spec)
    noted: dict[str, float] = {}

    def say(line: str) -> None:
        if line.startswith("done "):
            noted["done"] = time.time()
        print(f"  {line}", flush=True)

    if launcher == "slurm":
        from common.sweep.slurm import SlurmLauncher
        from common.sweep.slurm_queue import load_jobs

        slurm = SlurmLauncher(spec, runs, say=say)
        code = slurm.launch()
        started = next(iter(load_jobs(spec.out).values())).submitted
    else:
        from common.sweep.local import LocalLauncher

        started = time.time()
        code = LocalLauncher(runs, spec.resources, workers=1, say=say).launch(poll_s=0.1)
    if code:
        raise SystemExit(f"error: the sweep in {folder} failed (exit {code})")
    first, last = first_and_last_step(runs[0].run_dir)
    return first - started, noted["done"] - last


def direct(folder: Path) -> float:
    """Spawn -> first step of the same run's command started directly."""
    path = folder / "sweep.yaml"
    folder.mkdir(parents=True)
    import yaml

    path.write_text(yaml.safe_dump(SWEEP))
    run = plan_sweep(load_sweep(path))[0]
    cmd = [sys.executable, "-m", "common.train", "--recipe", str(run.recipe)]
    cmd += ["--out", str(run.run_dir), *run.overrides]
    started = time.time()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return first_and_last_step(run.run_dir)[0] - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--launcher", choices=("local", "slurm"), default="slurm")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="/tmp/kdzoo-overhead")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rows = []
    start = "submission" if args.launcher == "slurm" else "spawn"
    for i in range(args.repeat):
        print(f"repeat {i + 1}/{args.repeat}", flush=True)
        alone = direct(out / f"direct{i}")
        to_first, after_last = one_run(out / f"{args.launcher}{i}", args.launcher)
        rows.append((alone, to_first, after_last))
        print(
            f"  direct: spawn -> first step {alone:.2f} s; {args.launcher}: {start} -> first "
            f"step {to_first:.2f} s, last step -> noted done {after_last:.2f} s",
            flush=True,
        )
    cols = list(zip(*rows))
    mean = [statistics.mean(c) for c in cols]
    print(
        f"mean of {args.repeat}: direct spawn -> first step {mean[0]:.2f} s; {args.launcher} "
        f"{start} -> first step {mean[1]:.2f} s (launcher's own {mean[1] - mean[0]:.2f} s), "
        f"last step -> noted done {mean[2]:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
