"""CQKD's resolution sweep (Fig. 2): baseline, DML, CQKD T=10 and T=20 at each student size.

    python tools/cqkd_sweep.py --preset cifar10 [--out DIR] [key=value ...]     (make cqkd-sweep)
    python tools/cqkd_sweep.py --recipe FILE --resolutions 24,16,8 [--teacher CKPT]

Without --teacher, the recipe's teacher architecture is first trained with cross-entropy at the
data's full resolution (into DIR/teacher; `--teacher-epochs` shortens it). Each run goes to
DIR/<method>/r<resolution>/ and is skipped when its summary.json exists (a partial run
continues from its last.pt: common/sweep's in-process runner), so an interrupted sweep
continues where it stopped. The table (DIR/fig2.md, also printed) and the figure (DIR/fig2.png,
needs matplotlib: pip install 'kd-zoo[plot]') come from `cqkd.fig2`. `key=value` overrides
apply to every run, the teacher's included.

Batch size on ImageNet: the released code (distillistic main.py) trains with batch 1024 below
120 px and 512 from 120 px up; the ImageNet template's runs get that per resolution
(`RELEASED_BATCH`), before the command line's overrides (so `train.batch_size=...` still wins).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.config import load_recipe
from common.sweep.inprocess import run_in_process
from common.sweep.plan import PlannedRun
from cqkd.fig2 import collect, markdown_table, plot

REPO = Path(__file__).resolve().parents[1]
BASES = REPO / "cqkd" / "recipes" / "base"
PRESETS = {
    "imagenet": (BASES / "imagenet" / "resnet50_resnet18.yaml", [224, 168, 112, 56, 42, 28]),
    "tiny_imagenet": (BASES / "tiny_imagenet" / "resnet32x4_resnet8x4.yaml", [32, 24, 16]),
    "cifar10": (BASES / "cifar10" / "resnet20_resnet8.yaml", [24, 16, 8]),
}


def released_imagenet_batch(resolution: int) -> int:
    """distillistic's `"batch_size": 1024 if scale < 120 else 512` (0 = full resolution)."""
    return 1024 if 0 < resolution < 120 else 512


# Per-resolution batch sizes of a template: {recipe file: resolution -> train.batch_size}.
RELEASED_BATCH = {PRESETS["imagenet"][0]: released_imagenet_batch}
METHOD_OVERRIDES = {
    "baseline": ["method.name=lowres"],
    "dml": ["method.name=dml"],
    "cqkd10": ["method.name=cqkd", "method.temperature=10"],
    "cqkd20": ["method.name=cqkd", "method.temperature=20"],
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="recipe and resolutions")
    parser.add_argument("--recipe", help="a CQKD recipe (instead of --preset)")
    parser.add_argument("--resolutions", help="comma-separated student sizes, e.g. 24,16,8")
    parser.add_argument("--methods", default=",".join(METHOD_OVERRIDES), help="comma-separated")
    parser.add_argument("--teacher", help="teacher checkpoint (default: train one first)")
    parser.add_argument("--teacher-epochs", type=int, default=0, help="0 = the recipe's")
    parser.add_argument("--out", help="sweep folder (default runs/cqkd_sweep/<preset|recipe>)")
    parser.add_argument("overrides", nargs="*", help="key=value applied to every run")
    args = parser.parse_args(argv)
    if bool(args.preset) == bool(args.recipe):
        parser.error("give exactly one of --preset NAME or --recipe FILE")
    if args.recipe and not args.resolutions:
        parser.error("--recipe needs --resolutions")
    unknown = set(args.methods.split(",")) - set(METHOD_OVERRIDES)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; known: {', '.join(METHOD_OVERRIDES)}")
    return args


def batch_overrides(recipe: Path, resolution: int) -> list[str]:
    """`train.batch_size=N` for a template whose batch follows the resolution, else []."""
    rule = RELEASED_BATCH.get(recipe.resolve())
    return [f"train.batch_size={rule(resolution)}"] if rule else []


def run_once(recipe: Path, run_dir: Path, overrides: list[str]) -> int:
    """Train one run unless it already finished; a partial one continues from its last.pt
    (the sweep machinery's in-process runner, common/sweep/inprocess.py)."""
    run = PlannedRun(str(run_dir), run_dir, recipe, 0, list(overrides))
    return run_in_process([run], say=lambda line: print(line, flush=True))


def train_teacher(recipe: Path, out: Path, epochs: int, overrides: list[str]) -> Path | None:
    """The recipe's teacher architecture trained with CE at full resolution; its final.pt."""
    teacher = load_recipe(recipe, overrides).teacher.name
    extra = ["method.name=vanilla", f"student.name={teacher}", "student.resolution=0"]
    if epochs:
        extra.append(f"train.epochs={epochs}")
    code = run_once(recipe, out / "teacher", [*batch_overrides(recipe, 0), *overrides, *extra])
    return None if code else out / "teacher" / "final.pt"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.preset:
        recipe, resolutions = PRESETS[args.preset]
    else:
        recipe, resolutions = Path(args.recipe), []
    if args.resolutions:
        resolutions = [int(r) for r in args.resolutions.split(",")]
    out = Path(args.out or f"runs/cqkd_sweep/{args.preset or Path(args.recipe).stem}")
    overrides = list(args.overrides)
    teacher = Path(args.teacher) if args.teacher else None
    if teacher is None:
        teacher = train_teacher(recipe, out, args.teacher_epochs, overrides)
        if teacher is None:
            return 2
    for resolution in resolutions:
        for method in args.methods.split(","):
            run_overrides = [
                *batch_overrides(recipe, resolution),
                *overrides,
                *METHOD_OVERRIDES[method],
                f"student.resolution={resolution}",
                f"teacher.checkpoint={teacher}",
            ]
            code = run_once(recipe, out / method / f"r{resolution}", run_overrides)
            if code:
                return code
    return report(out)


def report(out: Path) -> int:
    """Write and print the table; draw the figure when matplotlib is installed."""
    rows = collect(out)
    table = markdown_table(rows)
    (out / "fig2.md").write_text(table)
    print(f"\n== CQKD sweep ({out}) ==\n{table}")
    if plot(rows, out / "fig2.png", title=f"CQKD sweep: {out.name}"):
        print(f"figure: {out / 'fig2.png'}")
    else:
        print("figure skipped: matplotlib is not installed (pip install 'kd-zoo[plot]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
