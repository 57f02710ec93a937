"""Short real-data runs on the CPU: the methods' READMEs' "CPU-scale check" tables come from here.

    python tools/short_runs.py --out runs/short \\
        --run vanilla=tools/recipes/teachers/cifar100/resnet56.yaml \\
        --run fitnet=tools/recipes/fitnet/cifar100/resnet56_resnet20.yaml \\
        --seeds 0,1,2 [--epochs 2] [--subset 4000] [--set method.n_negatives=256]

The setting of the end-to-end tests: the real CIFAR-10 archive (`../shared/data`, unpacked
once into ~/.cache/kdzoo/shared), a resnet8 teacher trained 3 epochs on the first 4,000
training images (the `cifar10_teacher` fixture of tests/conftest.py, seed 0), then each
`--run LABEL=RECIPE` (a CIFAR-100 protocol recipe) as a resnet8 student for `--epochs` epochs
per seed, one CPU thread, cosine schedule, batch 64, validated on 2,000 images. A `--run` may
add overrides after the recipe, separated by commas: `cutmix=r2kd/...yaml,method.augment=cutmix`.
It is a sweep built in code (common/sweep: the teacher in <out>/teacher/seed0, each label's
runs in <out>/<label>/seed<N>, every run checked before the first starts), trained in this
process; finished runs are kept, a partial one continues from its last.pt; the table is printed by
`tools/compare.py` (and written to `<out>/table.csv`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from common.bench.data_pipeline import default_root
from common.cli import ArgumentParser, report
from common.config.loader import parse_override
from common.errors import ConfigError, UserError
from common.report.compare import main as compare_main
from common.sweep.check import check_runs
from common.sweep.inprocess import run_in_process
from common.sweep.plan import plan_sweep
from common.sweep.spec import RecipeEntry, Resources, SweepSpec

REPO = Path(__file__).resolve().parents[1]
TEACHER_RECIPE = REPO / "tools" / "recipes" / "teachers" / "cifar100" / "resnet56.yaml"
CACHE = Path("~/.cache/kdzoo/shared").expanduser()


def short_overrides(epochs: int, subset: int, val_subset: int) -> list[str]:
    """A CIFAR-100 protocol recipe turned into a short CPU run on real CIFAR-10."""
    return [
        "data.name=cifar10", f"data.root={default_root()}", f"data.cache_dir={CACHE}",
        f"data.subset={subset}", f"data.val_subset={val_subset}", "device=cpu",
        f"train.epochs={epochs}", "train.batch_size=64", "train.progress=none",
        "optim.schedule=cosine", "student.name=resnet8",
        "paper.top1=null", "paper.top5=null", "paper.table=",  # CIFAR-100 numbers: not these
    ]  # fmt: skip


def parse_runs(specs: list[str]) -> dict[str, tuple[Path, list[str]]]:
    """`LABEL=RECIPE[,key=value...]` -> {label: (recipe, overrides)}."""
    runs = {}
    for spec in specs:
        label, sep, rest = spec.partition("=")
        recipe, *overrides = rest.split(",")
        if not sep or not label or not recipe:
            raise ConfigError(f"--run {spec!r} must look like LABEL=RECIPE[,key=value...]")
        if not Path(recipe).is_file():
            raise ConfigError(f"--run {label}: recipe {recipe} not found")
        runs[label] = (Path(recipe), overrides)
    return runs


def as_set(overrides: list[str]) -> dict[str, str]:
    """`["a.b=1", ...]` -> `{"a.b": "1", ...}` (a sweep's `set`)."""
    pairs = (parse_override(text) for text in overrides)
    return {".".join(parts): value for parts, value in pairs}


def short_sweep(args: argparse.Namespace, out: Path) -> SweepSpec:
    """The teacher, then every `--run` on every seed, as a sweep (runs wait on the teacher)."""
    base = short_overrides(args.epochs, args.subset, args.val_subset)
    teacher = RecipeEntry(
        str(TEACHER_RECIPE), label="teacher", seeds=[0], inherit=False,
        set=as_set([*short_overrides(3, args.subset, args.val_subset), "train.seed=0"]),
    )  # fmt: skip
    students = [
        RecipeEntry(
            str(recipe.resolve()), label=label, set=as_set([f"name={label}", *args.set, *extra])
        )
        for label, (recipe, extra) in parse_runs(args.run).items()
    ]
    common_set = as_set(
        [*base, "teacher.name=resnet8", "teacher.checkpoint={run:teacher/seed0}/final.pt"]
    )
    return SweepSpec(
        path=REPO / "tools" / "short_runs.py", out=out.resolve(), entries=[teacher, *students],
        seeds=[int(s) for s in args.seeds.split(",") if s], overrides={}, zips=[],
        set=common_set, resources=Resources(cpus=1),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    out = Path(args.out)
    runs = plan_sweep(short_sweep(args, out))
    check_runs(runs)
    code = run_in_process(runs, say=lambda line: print(line, flush=True))
    if code:
        raise ConfigError("a run failed (its error is above); the next call continues")
    teacher = out / "teacher" / "seed0"
    folders = [str(out / label) for label in dict.fromkeys(r.run_id.split("/")[0] for r in runs)]
    folders = [f for f in folders if Path(f) != out / "teacher"]
    return compare_main([str(teacher), *folders, "--csv", str(out / "table.csv")])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="tools/short_runs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/short", help="output folder (runs are kept)")
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=RECIPE[,k=v...]")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--val-subset", type=int, default=2000)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every student run")  # fmt: skip
    try:
        args = parser.parse_args(argv)
        if not args.run:
            parser.error("give at least one --run LABEL=RECIPE")
        return run(args)
    except UserError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
