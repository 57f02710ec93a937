"""Every shipped recipe builds its method (issue 16, item 1).

`tests/test_config.py` validates the recipes' keys; this test goes one step further and builds
each recipe's student, teacher and method the way `common.engine.build.build_distiller` does,
with random weights in place of the teacher's checkpoint and a small fake data spec in place of
the data files (no data, no checkpoint is read). That is where a pair a method cannot match
shows up (AT's stage counts, SoKD's maps, CRD's last stages), which validation alone misses.

Tiny inputs: the data set's own image size up to 64 px (ImageNet-size recipes are built at 64
px, where every map SoKD masks is still at least 2 x 2), and a training set of 8 images for
CRD's banks. Every file under the recipe folders is covered, `_`-named ones included (they load
alone); the only files not built are partial bases that name no student (`base/` folders):
they cannot build alone, and the test checks that each is the `base:` of another recipe.
Build only (no forward): the whole test stays under a minute on one CPU thread.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from common.config import load_recipe
from common.config.loader import read_yaml_mapping
from common.data import DataSpec
from common.methods.registry import get_method
from common.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("tools/recipes", "r2kd/recipes", "slkd/recipes", "sokd/recipes", "cqkd/recipes")
RECIPES = sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.yaml"))
CLASSES = {"cifar100": 100, "cifar10": 10, "tiny_imagenet": 200, "imagenet": 1000,
           "cub200": 200, "stanford_dogs": 120, "mit67": 67, "stanford40": 40}  # fmt: skip
NATIVE = {"cifar100": 32, "cifar10": 32, "tiny_imagenet": 64}  # else the recipe's image_size
LARGEST = 64  # px: ImageNet-size recipes are built at this size


def default_method(path: Path) -> str:
    """The method of a recipe without `method.name`: its entry point's (`python -m sokd.train`
    for sokd/recipes, ...; tools/recipes: `tools/train_teacher.py`'s vanilla)."""
    owner = path.relative_to(REPO).parts[0]
    return "vanilla" if owner == "tools" else owner


def bases_named() -> set[Path]:
    """Every file some recipe names as its `base:`."""
    named = set()
    for path in RECIPES:
        bases = read_yaml_mapping(path, "recipe").get("base") or []
        for base in [bases] if isinstance(bases, str) else bases:
            named.add((path.parent / base).resolve())
    return named


@functools.cache
def network(name: str, classes: int, role: str) -> nn.Module:
    """One random-weight network per (name, classes, role), shared by the recipes (building
    a method reads its networks, never changes their weights)."""
    torch.manual_seed(0)
    return build_model(name, classes)


def fake_spec(cfg) -> DataSpec:
    """What a method asks of the data, without the data: classes, a tiny image size, 8 labels."""
    if cfg.data.name == "synthetic":
        classes, size = cfg.data.synthetic.num_classes, cfg.data.synthetic.image_size
    else:
        classes = CLASSES[cfg.data.name]
        size = min(cfg.data.image_size or NATIVE[cfg.data.name], LARGEST)
    targets = torch.arange(8) % classes
    names = [str(c) for c in range(classes)]
    return DataSpec(classes, size, (0.5,) * 3, (0.25,) * 3, 8, 4, names, targets)


def sl_teacher_checkpoint(tmp: Path, cfg, classes: int) -> str:
    """A stage-1 SLKD* last.pt (random SL-teachers) for a `sequential_student` recipe."""
    from slkd.sl_teachers import PREFIX, build_sl_teachers

    opts = cfg.method.options
    nets = build_sl_teachers(
        opts.sl_teacher_arch or cfg.teacher.name, opts.num_sl_teachers, classes
    )
    state = {
        f"{PREFIX}{i}.{k}": v for i, net in enumerate(nets) for k, v in net.state_dict().items()
    }
    path = tmp / "sl_teachers_last.pt"
    torch.save({"method": state}, path)
    return str(path)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_recipe_builds_its_method(path: Path, tmp_path: Path) -> None:
    cfg = load_recipe(path, default_method=default_method(path))
    if not cfg.student.name:  # a partial base: it cannot build alone
        assert path.resolve() in bases_named(), f"{path} names no student and is no one's base"
        return
    spec = fake_spec(cfg)
    native = cfg.data.image_size or NATIVE.get(cfg.data.name, spec.image_size)
    if cfg.student.resolution > spec.image_size:  # CQKD: the same fraction of the smaller image
        cfg.student.resolution = cfg.student.resolution * spec.image_size // native
    if getattr(cfg.method.options, "mode", "") == "sequential_student":
        cfg.method.options.sl_teacher_checkpoint = sl_teacher_checkpoint(
            tmp_path, cfg, spec.num_classes
        )
    cls = get_method(cfg.method.name)
    student = network(cfg.student.name, spec.num_classes, "student").requires_grad_(True)
    teacher = None
    if cls.needs_teacher:
        teacher = network(cfg.teacher.name, spec.num_classes, "teacher")
        teacher.eval().requires_grad_(False)
    method = cls.from_config(cfg, student, teacher, spec)
    assert method.student is student
