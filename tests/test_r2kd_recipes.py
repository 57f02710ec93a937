"""R2KD's recipes: every table row is there with the paper's number, the variants switch what
their names say, and the Tiny-ImageNet teachers (no paper number) validate and match the
checkpoints the distillation recipes expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import load_recipe
from common.models import model_names

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "r2kd" / "recipes"
TINY_TEACHERS = REPO / "tools" / "recipes" / "teachers" / "tiny_imagenet"

TABLE_I_II = [
    "wrn_40_2_wrn_16_2", "wrn_40_2_wrn_40_1", "resnet56_resnet20", "resnet110_resnet32",
    "resnet32x4_resnet8x4", "vgg13_vgg8", "wrn_40_2_ShuffleV1", "ResNet50_MobileNetV2",
    "resnet32x4_ShuffleV1", "resnet32x4_ShuffleV2", "vgg13_MobileNetV2",
]  # fmt: skip
TABLE_VI = [
    "wrn_40_2_wrn_16_2", "resnet56_resnet20", "resnet32x4_resnet8x4", "vgg13_vgg8",
    "vgg13_MobileNetV2", "ResNet50_vgg8", "resnet32x4_ShuffleV2",
]  # fmt: skip


def own_recipes() -> list[Path]:
    return sorted(
        p for d in ("cifar100", "imagenet", "tiny_imagenet") for p in (RECIPES / d).glob("*.yaml")
    )


def test_every_table_row_has_a_recipe() -> None:
    names = {p.relative_to(RECIPES).with_suffix("").as_posix() for p in own_recipes()}
    expected = {f"cifar100/{pair}{v}" for pair in TABLE_I_II for v in ("", "_cutmix")}
    expected |= {"cifar100/ResNet50_vgg8_cutmix"}  # Table V's extra pair
    expected |= {f"cifar100/{p}_{v}" for p in ("resnet56_resnet20", "resnet32x4_resnet8x4")
                 for v in ("value", "value_rank")}  # fmt: skip
    expected |= {f"imagenet/{p}{v}" for p in ("resnet34_resnet18", "resnet50_MobileNetV1")
                 for v in ("", "_prune_only")}  # fmt: skip
    expected |= {f"tiny_imagenet/{p}_cutmix{v}" for p in TABLE_VI for v in ("", "_64")}
    assert names == expected


@pytest.mark.parametrize("path", own_recipes(), ids=lambda p: p.stem)
def test_recipe_loads_and_says_what_its_name_says(path: Path) -> None:
    cfg = load_recipe(path)
    opts = cfg.method.options
    assert cfg.method.name == "r2kd"
    assert cfg.paper.top1 is not None and cfg.paper.table.startswith("R2KD Table")
    assert {cfg.teacher.name, cfg.student.name} <= set(model_names())
    assert path.stem.startswith(f"{cfg.teacher.name}_{cfg.student.name}")
    assert opts.augment == ("cutmix" if "_cutmix" in path.stem else "none")
    if path.stem.endswith("_value"):
        assert (opts.alpha, opts.beta, opts.prune) == (2.0, 0.0, "none")
    elif path.stem.endswith("_value_rank"):
        assert (opts.alpha, opts.beta, opts.prune) == (2.0, 2.0, "none")
    elif path.stem.endswith("_prune_only"):
        assert (opts.alpha, opts.beta, opts.kl_weight, opts.prune) == (0, 0, 0.5, "unstructured")
    else:
        assert (opts.temperature, opts.alpha, opts.prune, opts.teacher_mix) == (
            4.0, 2.0, "unstructured", 0.7,
        )  # fmt: skip
    dataset = path.parent.name
    assert cfg.data.name == dataset
    if dataset == "tiny_imagenet":
        size, pad = (0, 8) if path.stem.endswith("_64") else (32, 4)
        assert (cfg.data.image_size, cfg.data.crop_padding) == (size, pad)
        assert opts.cutout_length == 16
    if cfg.student.name in ("MobileNetV2", "ShuffleV1", "ShuffleV2") and dataset != "imagenet":
        assert cfg.optim.lr == 0.01
    if dataset in ("cifar100", "tiny_imagenet"):
        assert (cfg.train.epochs, cfg.train.batch_size, cfg.optim.milestones) == (
            240, 64, [150, 180, 210],
        )  # fmt: skip


def test_tiny_imagenet_teachers_match_the_distillation_recipes() -> None:
    teachers = sorted(TINY_TEACHERS.glob("_*.yaml"))
    runs = {}
    for path in teachers:
        cfg = load_recipe(path)
        assert cfg.method.name == "vanilla" and cfg.data.name == "tiny_imagenet"
        assert cfg.paper.top1 is None and "quotes no" in cfg.paper.note
        size = 0 if path.stem.endswith("_64") else 32
        assert cfg.data.image_size == size
        runs[f"runs/{cfg.name}/seed0/best.pt"] = cfg.student.name
    for path in (RECIPES / "tiny_imagenet").glob("*.yaml"):
        cfg = load_recipe(path)
        assert runs.get(cfg.teacher.checkpoint) == cfg.teacher.name, path.name
    assert len(teachers) == 10  # five teachers at 32x32 and at 64x64
