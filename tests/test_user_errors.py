"""Every mistake a user can type ends in ONE line `error: ...` naming the value and the fix,
exit code 2, and loses nothing already saved.

One table: (entry point, arguments, a substring the line must contain). Arguments name the
test's files as `{placeholders}` (see `world`). Each entry point runs in-process: the shared
CLI through `common.cli.main(argv)`, the `tools/train_*.py` scripts and `python -m
<package>.train` through runpy (as the shell runs them), the other tools (`tools/demo.py` too)
through their `main(argv)`. A refused `--resume` must leave the run folder byte-for-byte as it
was; a refused new run must not create its `--out` folder (except where the mistake is met only
while training: an image file that turns out unreadable).
"""

from __future__ import annotations

import hashlib
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import tiny_recipe

from common.cli import main as train_main

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("tools/train_teacher.py", "tools/train_baseline.py")
MODULES = ("r2kd.train", "slkd.train", "cqkd.train")


@dataclass(frozen=True)
class Case:
    """One row: `entry` run with `args`; its single error line contains `expect`."""

    entry: str
    args: tuple[str, ...]
    expect: str
    env: dict[str, str] = field(default_factory=dict)
    no_gpu: bool = False  # pretend this machine has no CUDA GPU
    may_create_out: bool = False  # the mistake is met while training (the run folder exists)


def row(entry: str, args: str, expect: str, marks: tuple = (), **kw) -> pytest.param:
    """A table row; `args` is split on spaces (no argument of the table holds one)."""
    case = Case(entry, tuple(args.split()), expect, **kw)
    return pytest.param(case, id=f"{entry}: {args}", marks=marks)


NEW = "--recipe {recipe} --out {out}"  # a valid new run, to which a row adds one mistake
KD = "--recipe {kd_recipe} --out {out}"

CASES = [
    # ------------------------------------------------------------ the command line itself
    row("train", "", "give exactly one of --recipe FILE or --resume DIR"),
    row("train", "--recipe {recipe} --resume {run}", "give exactly one of --recipe"),
    row("train", "--recpie {recipe}", "unrecognized arguments: --recpie"),
    row("train", f"{NEW} train.epochs", "override 'train.epochs' must look like key.sub=value"),
    row("train", f"{NEW} =3", "has an empty key"),
    row("train", f"{NEW} base=other.yaml", "'base' cannot be overridden"),
    # ------------------------------------------------------------ the recipe file
    row("train", "--recipe {tmp} --out {out}", "is a directory, not a YAML file"),
    row("train", "--recipe {tmp}/nope.yaml --out {out}", "recipe not found"),
    row("train", "--recipe {bad_yaml} --out {out}", "is not valid YAML"),
    row("train", "--recipe {binary} --out {out}", "is not a text (YAML) file"),
    row("train", "--recipe {list_yaml} --out {out}", "must be a mapping of keys, got list"),
    row("train", "--recipe {base_missing} --out {out}", "named by base: in"),
    row("train", "--recipe {base_number} --out {out}", "'base' must be a file name"),
    row("train", "--recipe {method_str} --out {out}", "key 'method' expects a mapping"),
    # ------------------------------------------------------------ keys, types, choices, ranges
    row("train", f"{NEW} train.epohcs=2", "did you mean 'train.epochs'"),
    row("train", f"{NEW} train.batch_size=abc", "key 'train.batch_size' expects int, got 'abc'"),
    row("train", f"{NEW} train.epochs=2.5", "key 'train.epochs' expects int, got '2.5'"),
    row("train", f"{NEW} data.flip=maybe", "key 'data.flip' expects bool"),
    row("train", f"{NEW} paper.top1=high", "key 'paper.top1' expects float or null"),
    row("train", f"{NEW} train=5", "key 'train' expects a mapping"),
    row("train", f"{NEW} train.batch_size=0", "train.batch_size 0 is out of range: must be >= 1"),
    row("train", f"{NEW} train.epochs=0", "train.epochs 0 is out of range: must be >= 1 (a run"),
    row("train", f"{NEW} data.subset=-5", "data.subset -5 is out of range: must be >= 0"),
    row("train", f"{NEW} data.num_workers=-1", "data.num_workers -1 is out of range"),
    row("train", f"{NEW} optim.lr=-0.1", "optim.lr -0.1 is out of range: must be >= 0"),
    row(
        "train", f"{NEW} optim.momentum=1", "optim.momentum 1.0 is out of range: must be in [0, 1)"
    ),
    row("train", f"{NEW} optim.milestones=[5,-1]", "optim.milestones[1] -1 is out of range"),
    row("train", f"{NEW} train.amp=fp32", "train.amp 'fp32' is not one of: auto, none, bf16, fp16"),
    row(
        "train", f"{NEW} train.progress=yes", "train.progress 'yes' is not one of: auto, bar, none"
    ),
    row("train", f"{NEW} optim.name=adam", "optim.name 'adam' is not one of: sgd, adamw"),
    row("train", f"{NEW} optim.schedule=step", "optim.schedule 'step' is not one of: multistep"),
    row("train", f"{NEW} optim.nesterov=true optim.momentum=0", "optim.nesterov=true needs a"),
    row("train", f"{NEW} method.name=kdd", "unknown method.name 'kdd'; did you mean"),
    row("train", f"{NEW} method=kd", "key 'method' expects a mapping"),
    row("train", f"{KD} method.temprature=3", "did you mean 'method.temperature'"),
    row(
        "train", f"{KD} method.temperature=0", "method.temperature 0.0 is out of range: must be > 0"
    ),
    row("train", f"{NEW} method.name=dml method.cohort=1", "method.cohort 1 is out of range"),
    row("train", f"{NEW} data.synthetic.num_superclasses=9", "num_superclasses=9 must be between"),
    # ------------------------------------------------------------ models and checkpoints
    row("train", f"{NEW} student.name=resnet9", "student.name 'resnet9'. Did you mean 'resnet8'"),
    row("train", f"{NEW} student.name=", "student.name is empty"),
    row("train", f"{KD} teacher.name=resnet200", "teacher.name 'resnet200'. Did you mean"),
    row("train", KD, "set teacher.checkpoint=PATH"),
    row("train", f"{KD} teacher.checkpoint={{tmp}}/nope.pt", "nope.pt"),
    row("train", f"{KD} teacher.checkpoint={{a_file}}", "is not a PyTorch weights file"),
    row(
        "train",
        f"{KD} teacher.checkpoint={{run}}/best.pt data.synthetic.num_classes=4",
        "8 classes",
    ),
    # ------------------------------------------------------------ the device
    row("train", f"{NEW} device=gpu", "device 'gpu' is not valid: expected auto, cpu, cuda"),
    row("train", f"{NEW} device=cuda", "use device=cpu, or device=auto", no_gpu=True),
    row("train", f"{NEW} device=cuda:1", "no CUDA GPU is visible", no_gpu=True),
    # ------------------------------------------------------------ the data
    row("train", f"{NEW} data.name=cifar1000", "unknown data set data.name='cifar1000'"),
    row("train", f"{NEW} data.name=imagefolder data.root={{a_file}}", "is a file, not a folder"),
    row("train", f"{NEW} data.name=imagefolder data.root={{tmp}}/none", "does not exist"),
    row("train", f"{NEW} data.name=imagefolder data.root={{empty}}", "no train/<class>/ folders"),
    row("train", f"{NEW} data.name=imagefolder data.root={{noval}}", "no image files below"),
    row("train", f"{NEW} data.name=imagefolder data.root={{small}}", "zz_bad.jpg"),
    row("train", f"{NEW} data.name=cifar100 data.root={{cifar}}", "cannot be read"),
    row("train", f"{NEW} train.batch_size=1000", "fewer than one global batch"),
    row(
        "train",
        f"{NEW} data.name=imagenet data.root={{large}} data.num_workers=1 data.image_size=32 "
        "train.batch_size=4 data.val_batch_size=4 train.epochs=1",
        "bad.jpg",
        may_create_out=True,
    ),
    row("train", f"{NEW} train.batch_size=33", "not divisible", env={"WORLD_SIZE": "2"}),
    # ------------------------------------------------------------ the run folder
    row("train", "--recipe {recipe} --out {a_file}", "is a file; choose a folder with --out"),
    row("train", "--recipe {recipe} --out {run}", "already holds a run"),
    row("train", "--resume {tmp}/never_ran", "cannot resume"),
    row("train", "--resume {a_file}", "is not a directory"),
    row("train", "--resume {empty}", "has no config.yaml, so it is not a run folder"),
    row("train", "--resume {run} --out {out}", "--out cannot be combined with --resume"),
    row("train", "--resume {run}", "has already trained 1 epoch(s)"),
    row("train", "--resume {run} train.epochs=2 student.name=resnet14", "student.name=resnet14"),
    row("train", "--resume {run} train.epochs=2 optim.lr=1", "the run was trained with optim.lr"),
    row("train", "--resume {run} train.epochs=2 train.amp=fp32", "train.amp 'fp32' is not one of"),
    row("train", "--resume {no_last}", "does not exist"),
    row("train", "--resume {bad_last}", "is not a readable checkpoint"),
    row("train", "--resume {bad_config}", "is not valid YAML"),
    # ------------------------------------------------------------ the other entry points
    row("tools/train_teacher.py", f"{NEW} train.batch_size=0", "train.batch_size 0 is out of"),
    row("tools/train_baseline.py", "", "give exactly one of --recipe"),
    row("r2kd.train", f"{NEW} student.name=resnet9", "Did you mean 'resnet8'"),
    row("slkd.train", f"{NEW} train.amp=fp32", "train.amp 'fp32'"),
    row("cqkd.train", f"{NEW} device=gpu", "device 'gpu' is not valid"),
    row("entropy", "{tmp}/missing {run}", "has no config.yaml"),
    row("entropy", "{run} {run} --labels a b --fraction 2", "--fraction must be in (0, 1]"),
    row("entropy", "{run} {run} --labels a b --checkpoint worst", "invalid choice: 'worst'"),
    row("entropy", "{run} {run} --labels a b --out {a_file}", "is a file; give a folder"),
    row("entropy", "{run} {run} --labels a b --device cuda", "no CUDA GPU", no_gpu=True),
    row("entropy", "{run} {run} --labels a", "--labels needs 2 names, got 1"),
    row("corr", "{run} --scale 0", "--scale must be >= 1"),
    row("corr", "{run} --set train.batch_size=0", "train.batch_size 0 is out of range"),
    row("corr", "{run} --set data.root", "must look like key.sub=value"),
    row(
        "corr",
        "{run} --out {out} --teacher-name resnet9 --teacher-checkpoint x",
        "unknown model 'resnet9'",
        may_create_out=True,
    ),
    row("demo", "--out {out} train.amp=fp32", "train.amp 'fp32' is not one of"),
    row("demo", "--out {a_file}", "is a file"),
    row("demo", "--out {run}", "holds files the demo did not write"),
    row("demo", "--out {out} --seeds 0,x", "is not a list of distinct non-negative integers"),
    row("demo", "--out {out} --seeds 1,1", "is not a list of distinct non-negative integers"),
    row("demo", "--out {out} train.seed=3", "use --seeds instead"),
    row("bench_data", "--root {empty}", "no CIFAR-10 ImageFolder tree"),
    row("bench_data", "--root {empty} --steps 0", "--steps must be >= 1, got 0"),
    row("bench_data", "--root {empty} --device cuda", "no CUDA GPU", no_gpu=True),
]


def write_images(folder: Path, count: int, size: int, seed: int) -> None:
    """`count` random RGB PNGs of `size` x `size` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")


def image_tree(root: Path, size: int, corrupt: str = "", val_images: int = 2) -> Path:
    """`root/{train,val}/{a,b}/` of random images; `corrupt` names a random-bytes .jpg added to
    train/b/."""
    for split, count in (("train", 3), ("val", val_images)):
        for k, name in enumerate("ab"):
            write_images(root / split / name, count, size, seed=len(split) * 10 + k)
    if corrupt:
        (root / "train" / "b" / corrupt).write_bytes(np.random.default_rng(0).bytes(2000))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file the table names: recipes (good and broken), a finished run, data trees."""
    tmp = tmp_path_factory.mktemp("user_errors")
    paths = {"tmp": tmp, "recipe": tiny_recipe(tmp)}
    kd = "method: {name: kd}\nteacher: {name: resnet8}\n"
    paths["kd_recipe"] = tiny_recipe(tmp, kd, "kd.yaml")
    files = {
        "bad_yaml": "train: {epochs: 3\n",
        "list_yaml": "- a\n- b\n",
        "base_missing": "base: nope.yaml\n",
        "base_number": "base: 5\n",
        "a_file": "not a checkpoint, not a folder\n",
    }
    for name, text in files.items():
        paths[name] = tmp / f"{name}.yaml"
        paths[name].write_text(text)
    paths["binary"] = tmp / "binary.yaml"
    paths["binary"].write_bytes(bytes(range(128, 256)) * 4)
    paths["method_str"] = tiny_recipe(tmp, "method: kd\n", "method_str.yaml")
    paths["empty"] = tmp / "empty"
    paths["empty"].mkdir()

    run = paths["run"] = tmp / "run"
    assert train_main(["--recipe", str(paths["recipe"]), "--out", str(run), "train.epochs=1"]) == 0
    for name, last in (("no_last", None), ("bad_last", b"garbage"), ("bad_config", None)):
        folder = paths[name] = tmp / name
        folder.mkdir()
        config = (run / "config.yaml").read_text()
        (folder / "config.yaml").write_text(config if name != "bad_config" else config + "]:\n")
        if last is not None:
            (folder / "last.pt").write_bytes(last)
    paths["small"] = image_tree(tmp / "small", 16, corrupt="zz_bad.jpg")
    paths["noval"] = image_tree(tmp / "noval", 16, val_images=0)
    paths["large"] = image_tree(tmp / "large", 80, corrupt="bad.jpg")
    cifar = paths["cifar"] = tmp / "cifar"
    (cifar / "cifar-100-python").mkdir(parents=True)
    for name in ("train", "test", "meta"):
        (cifar / "cifar-100-python" / name).write_bytes(b"not a pickle")
    return paths


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` with the digest of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def invoke(entry: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run `entry` in-process with `argv`; its exit code."""
    if entry == "train":
        return train_main(argv)
    if entry == "entropy":
        from tools.r2kd_entropy import main

        return main(argv)
    if entry == "corr":
        from tools.r2kd_corr_disparity import main

        return main(argv)
    if entry == "bench_data":
        from tools.bench_data import main

        return main(argv)
    if entry == "demo":
        from tools.demo import main

        return main(argv)
    monkeypatch.setattr(sys, "argv", [entry, *argv])
    with pytest.raises(SystemExit) as stop:
        if entry in SCRIPTS:
            runpy.run_path(str(REPO / entry), run_name="__main__")
        else:
            assert entry in MODULES, entry
            runpy.run_module(entry, run_name="__main__", alter_sys=False)
    return stop.value.code


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_ends_in_one_error_line(
    case: Case, world: dict[str, Path], tmp_path: Path, capsys, monkeypatch
) -> None:
    out = tmp_path / "out"
    argv = [arg.format(**world, out=out) for arg in case.args]
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    if case.no_gpu:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("DATA_ROOT", "")
    monkeypatch.setenv("HOME", str(tmp_path))  # the decode cache of the image-tree rows
    before = snapshot(world["run"])
    capsys.readouterr()

    code = invoke(case.entry, argv, monkeypatch)

    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines[0]
    assert case.expect in lines[0], lines[0]
    assert snapshot(world["run"]) == before, "a refused command changed a saved run"
    if not case.may_create_out:
        assert not out.exists(), f"a refused run left {out} behind"


def test_every_entry_point_is_in_the_table() -> None:
    entries = {param.values[0].entry for param in CASES}
    assert {"train", *SCRIPTS, *MODULES, "entropy", "corr", "bench_data", "demo"} <= entries
