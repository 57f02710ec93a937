"""The offline demo: train a small teacher on `synthetic`, distil students, print one table.

    python tools/demo.py                  (make demo; three seeds a student)
    python tools/demo.py --seeds 0        (one seed: about a third of the time)

It runs the sweep tools/sweeps/demo.yaml in this process: every recipe in tools/recipes/demo/
other than teacher.yaml and _base.yaml is a student run; a method joins the demo by adding its
recipe there; each student is trained once per seed (one teacher for all, in
<out>/teacher/seed0), and the table gives the mean and spread over the seeds: on a data set
this small, one seed's ranking of close methods is noise. Output goes to runs/demo/, replaced
on the next run: the demo only ever deletes a folder it wrote itself (one holding its marker
file).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from common.cli import ArgumentParser, report
from common.config.loader import parse_override
from common.errors import ConfigError, UserError
from common.report.compare import main as compare_main
from common.sweep.check import check_runs
from common.sweep.inprocess import run_in_process
from common.sweep.plan import PlannedRun, plan_sweep
from common.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
DEMO_RECIPES = REPO / "tools" / "recipes" / "demo"
DEMO_SWEEP = REPO / "tools" / "sweeps" / "demo.yaml"  # the teacher, then each student recipe
MARKER = ".kdzoo-demo"  # written into the output folder: only such a folder is ever replaced
DEFAULT_SEEDS = "0,1,2"


def fresh_output(out: Path) -> None:
    """An empty `out`: a previous demo's folder is replaced; anything else is refused."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the demo's runs")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ConfigError(
                f"--out {out} holds files the demo did not write (no {MARKER} in it); "
                "give an empty or new folder (nothing was deleted)"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by tools/demo.py; the next demo replaces this folder\n")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; anything else is a user's mistake."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"--seeds {text!r} is not a list of distinct non-negative integers; "
            "write e.g. --seeds 0,1,2"
        )
    return seeds


def main(argv: list[str] | None = None) -> int:
    """Teacher, students, table; a user's mistake ends in one `error:` line (exit code 2)."""
    try:
        return run(argv)
    except UserError as err:
        return report(err)


def demo_runs(out: Path, seeds: list[int], overrides: list[str]) -> list[PlannedRun]:
    """The demo's sweep (tools/sweeps/demo.yaml) into `out` on `seeds`, `overrides` on every
    run (the teacher's too); every run resolved, so a bad override stops before any write."""
    spec = load_sweep(DEMO_SWEEP)
    spec.out, spec.seeds = out.resolve(), seeds
    extra = {}
    for text in overrides:
        parts, value = parse_override(text)
        extra[".".join(parts)] = value
    spec.set.update(extra)
    for entry in spec.entries:
        entry.set.update(extra)
    runs = plan_sweep(spec)
    check_runs(runs)
    return runs


def run(argv: list[str] | None) -> int:
    parser = ArgumentParser(prog="tools/demo.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="output folder (a demo's: replaced)")
    parser.add_argument(
        "--seeds",
        default=DEFAULT_SEEDS,
        help=f"train.seed of the students' runs, comma-separated (default {DEFAULT_SEEDS})",
    )
    parser.add_argument("overrides", nargs="*", help="key=value applied to every run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    seeds = parse_seeds(args.seeds)
    if any(parse_override(o)[0] == ["train", "seed"] for o in args.overrides):
        raise ConfigError("train.seed=... is set by the demo for each run: use --seeds instead")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the demo's runs")
    runs = demo_runs(out, seeds, list(args.overrides))
    fresh_output(out)
    start = time.perf_counter()
    code = run_in_process(runs, say=lambda line: print(line, flush=True), prog="tools/demo.py")
    if code:
        return code
    print(f"\n== demo results ({time.perf_counter() - start:.0f} s) ==")
    teacher = next(r for r in runs if r.run_id.startswith("teacher/"))
    labels = [r.run_id.split("/")[0] for r in runs if r is not teacher]
    ordered = sorted(dict.fromkeys(labels), key=lambda label: (label != "vanilla", label))
    code = compare_main([str(teacher.run_dir), *(str(out / label) for label in ordered)])
    if len(seeds) > 1:
        print(
            f"top-1 is the mean ± std over seeds {args.seeds} (one teacher for all); "
            "read two rows as different only where they differ by more than their spread"
        )
    else:
        print("one seed a row: on this small data set, close rows may swap on another seed")
    return code


if __name__ == "__main__":
    sys.exit(main())
