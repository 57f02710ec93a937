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
Finished runs are kept (re-running continues where it stopped); the table is printed by
`tools/compare.py` (and written to `<out>/table.csv`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from common.bench.data_pipeline import default_root
from common.cli import ArgumentParser, report
from common.cli import main as train_main
from common.errors import ConfigError, UserError
from common.report.compare import main as compare_main

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


def train_once(argv: list[str], out: Path) -> None:
    """Train unless `out` holds a finished run; a half-written run starts again."""
    if (out / "summary.json").is_file():
        print(f"== {out}: done already, kept ==", flush=True)
        return
    if out.exists():
        shutil.rmtree(out)
    print(f"== {out} ==", flush=True)
    if train_main([*argv, "--out", str(out)]):
        raise ConfigError(f"the run {out} failed (its error is above)")


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


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    out = Path(args.out)
    base = short_overrides(args.epochs, args.subset, args.val_subset)
    runs = parse_runs(args.run)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    teacher = out / "teacher"
    teacher_args = [*short_overrides(3, args.subset, args.val_subset), "train.seed=0"]
    train_once(["--recipe", str(TEACHER_RECIPE), *teacher_args], teacher)
    for label, (recipe, overrides) in runs.items():
        for seed in seeds:
            argv = [
                "--recipe", str(recipe), *base, "teacher.name=resnet8",
                f"teacher.checkpoint={teacher / 'final.pt'}", f"train.seed={seed}",
                f"name={label}", *args.set, *overrides,
            ]  # fmt: skip
            train_once(argv, out / label / f"seed{seed}")
    folders = [str(out / label) for label in runs]
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
