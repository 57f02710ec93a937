"""The offline demo: train a small teacher on `synthetic`, distil students, print one table.

    python tools/demo.py                  (make demo; three seeds a student)
    python tools/demo.py --seeds 0        (one seed: about a third of the time)

Every recipe in tools/recipes/demo/ other than teacher.yaml and _base.yaml is a student run;
a method joins the demo by adding its recipe there; each student is trained once per seed
(one teacher for all), and the table gives the mean and spread over the seeds: on a data set
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
from common.cli import main as train_main
from common.config import load_recipe
from common.config.loader import parse_override
from common.errors import ConfigError, UserError
from common.report.compare import main as compare_main

REPO = Path(__file__).resolve().parents[1]
DEMO_RECIPES = REPO / "tools" / "recipes" / "demo"
MARKER = ".kdzoo-demo"  # written into the output folder: only such a folder is ever replaced
DEFAULT_SEEDS = "0,1,2"


def student_recipes() -> list[Path]:
    """The demo's student recipes, vanilla first."""
    found = [
        p
        for p in DEMO_RECIPES.glob("*.yaml")
        if p.stem not in ("teacher",) and not p.stem.startswith("_")
    ]
    return sorted(found, key=lambda p: (p.stem != "vanilla", p.stem))


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
    for recipe in [DEMO_RECIPES / "teacher.yaml", *student_recipes()]:
        load_recipe(recipe, args.overrides)  # a bad override stops before anything is written
    if any(parse_override(o)[0] == ["train", "seed"] for o in args.overrides):
        raise ConfigError("train.seed=... is set by the demo for each run: use --seeds instead")
    fresh_output(out)
    start = time.perf_counter()
    teacher_dir = out / "teacher"
    overrides = list(args.overrides)
    print("== demo: teacher ==", flush=True)
    code = train_main(
        ["--recipe", str(DEMO_RECIPES / "teacher.yaml"), "--out", str(teacher_dir), *overrides]
    )
    if code:
        return code
    runs = []
    for recipe in student_recipes():
        for seed in seeds:
            print(f"== demo: {recipe.stem}, seed {seed} ==", flush=True)
            run_dir = out / recipe.stem / f"seed{seed}"
            code = train_main(
                [
                    "--recipe",
                    str(recipe),
                    "--out",
                    str(run_dir),
                    f"teacher.checkpoint={teacher_dir / 'final.pt'}",
                    f"train.seed={seed}",
                    *overrides,
                ]
            )
            if code:
                return code
            runs.append(str(run_dir))
    print(f"\n== demo results ({time.perf_counter() - start:.0f} s) ==")
    code = compare_main([str(teacher_dir), *runs])
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
