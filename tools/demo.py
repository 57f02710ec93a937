"""The offline demo: train a small teacher on `synthetic`, distil students, print one table.

    python tools/demo.py            (make demo)

Every recipe in tools/recipes/demo/ other than teacher.yaml and _base.yaml is a student run;
a method joins the demo by adding its recipe there. Output goes to runs/demo/ (replaced).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from common.cli import main as train_main
from common.report.compare import main as compare_main

REPO = Path(__file__).resolve().parents[1]
DEMO_RECIPES = REPO / "tools" / "recipes" / "demo"


def student_recipes() -> list[Path]:
    """The demo's student recipes, vanilla first."""
    found = [
        p
        for p in DEMO_RECIPES.glob("*.yaml")
        if p.stem not in ("teacher",) and not p.stem.startswith("_")
    ]
    return sorted(found, key=lambda p: (p.stem != "vanilla", p.stem))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="output folder (replaced)")
    parser.add_argument("overrides", nargs="*", help="key=value applied to every run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
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
        print(f"== demo: {recipe.stem} ==", flush=True)
        run_dir = out / recipe.stem
        code = train_main(
            [
                "--recipe",
                str(recipe),
                "--out",
                str(run_dir),
                f"teacher.checkpoint={teacher_dir / 'final.pt'}",
                *overrides,
            ]
        )
        if code:
            return code
        runs.append(str(run_dir))
    print(f"\n== demo results ({time.perf_counter() - start:.0f} s) ==")
    return compare_main([str(teacher_dir), *runs])


if __name__ == "__main__":
    sys.exit(main())
