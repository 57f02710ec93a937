"""Recipes: base inheritance, typed overrides, unknown keys with a suggestion, shipped recipes."""

import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Literal

import pytest

from common.config import ConfigError, RunConfig, load_recipe, load_saved_config, save_config
from common.config.loader import recipe_name
from common.config.validate import (
    at_least,
    build_dataclass,
    check_field,
    convert,
    matching,
    positive,
    ranged,
)

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    write(
        tmp_path / "base.yaml",
        "optim: {lr: 0.05, milestones: [150, 180, 210]}\ntrain: {epochs: 240, batch_size: 64}\n"
        "data: {name: cifar100}\n",
    )
    return write(
        tmp_path / "recipes" / "cifar100" / "a_b.yaml",
        "base: ../../base.yaml\nmethod: {name: kd, temperature: 2}\n"
        "teacher: {name: resnet56, checkpoint: t.pt}\nstudent: {name: resnet20}\n"
        "train: {epochs: 10}\noptim: {lr: 1e-3}\n",
    )


def test_base_inheritance_merges_nested_keys(recipe: Path) -> None:
    cfg = load_recipe(recipe)
    assert cfg.train.epochs == 10  # overridden by the child
    assert cfg.train.batch_size == 64  # inherited
    assert cfg.optim.milestones == [150, 180, 210]
    assert cfg.optim.lr == pytest.approx(1e-3)  # YAML's '1e-3' string converted to float
    assert cfg.method.name == "kd"
    assert cfg.method.options.temperature == 2.0
    assert cfg.method.options.kd_weight == 0.9  # method default


def test_overrides_are_typed_by_the_schema(recipe: Path) -> None:
    cfg = load_recipe(
        recipe,
        [
            "train.epochs=3",
            "optim.milestones=[1,2]",
            "data.flip=false",
            "method.temperature=8",
            "student.name=resnet8",
            "paper.top1=null",
        ],
    )
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.optim.milestones == [1, 2]
    assert cfg.data.flip is False
    assert cfg.method.options.temperature == 8.0
    assert cfg.student.name == "resnet8"
    assert cfg.paper.top1 is None


def test_unknown_key_names_the_nearest_valid_key(recipe: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown key 'train.epoch'.*did you mean 'train.epochs'"
    ):
        load_recipe(recipe, ["train.epoch=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'taecher'.*did you mean 'teacher'"):
        load_recipe(recipe, ["taecher.name=x"])
    with pytest.raises(ConfigError, match=r"unknown key 'method.temprature'.*'method.temperature'"):
        load_recipe(recipe, ["method.temprature=3"])


def test_wrong_type_names_key_and_expected_type(recipe: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'train.epochs' expects int, got 'ten'"):
        load_recipe(recipe, ["train.epochs=ten"])
    with pytest.raises(ConfigError, match=r"key 'data.flip' expects bool"):
        load_recipe(recipe, ["data.flip=maybe"])


def test_unknown_method_is_refused_with_a_suggestion(recipe: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown method.name 'kdd'.*did you mean"):
        load_recipe(recipe, ["method.name=kdd"])


def test_missing_recipe_and_base_cycle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_data_root_falls_back_to_environment(recipe: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_ROOT", "/somewhere")
    assert load_recipe(recipe).data.root == "/somewhere"
    assert load_recipe(recipe, ["data.root=/else"]).data.root == "/else"


def test_recipe_names() -> None:
    assert recipe_name(Path("tools/recipes/kd/cifar100/a_b.yaml")) == "kd/cifar100/a_b"
    assert recipe_name(Path("r2kd/recipes/cifar100/a_b.yaml")) == "r2kd/cifar100/a_b"


def test_saved_config_round_trips(recipe: Path, tmp_path: Path) -> None:
    cfg = load_recipe(recipe)
    save_config(cfg, tmp_path / "config.yaml", {"git_commit": "abc"})
    again = load_saved_config(tmp_path / "config.yaml", ["train.epochs=12"])
    assert again.method.options == cfg.method.options
    assert again.name == cfg.name and again.train.epochs == 12


SHIPPED = sorted(
    p
    for p in REPO.glob("*/recipes/**/*.yaml")
    if "base" not in p.parts and not p.name.startswith("_")
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_recipe_validates(path: Path) -> None:
    from common.models import model_names

    cfg = load_recipe(path)
    names = set(model_names())
    assert cfg.student.name in names
    if cfg.teacher.name:
        assert cfg.teacher.name in names
    if "demo" not in path.parts:  # the paper's number for the row, or why there is none
        assert cfg.paper.top1 is not None or "no number" in cfg.paper.note, path


# ---------------------------------------------------------------- choices (Literal) and ranges


@dataclass
class Choices:
    """A schema exercising every declaration the validator understands."""

    mode: Literal["soft", "hard"] = "soft"
    sizes: list[Literal[4, 8]] = field(default_factory=lambda: [4])
    policy: Literal["none", "auto"] | None = None
    count: int = at_least(1, 3)
    rate: float = positive(0.5)
    share: float = ranged(0.5, ge=0, lt=1)
    ceiling: int = ranged(2, le=5)
    open_both: float = ranged(0.5, gt=0, lt=1, why="a probability strictly inside")
    steps: list[int] = at_least(0, [1, 2])
    weight: float | None = at_least(0, None)
    device: str = matching(r"cpu|cuda(:\d+)?", "cpu", "cpu or cuda:N")


def test_literal_choices_are_accepted_and_converted_from_override_strings() -> None:
    got = build_dataclass(Choices, {"mode": "hard", "sizes": "[8,4]", "policy": "auto"})
    assert got.mode == "hard" and got.sizes == [8, 4] and got.policy == "auto"
    assert all(type(s) is int for s in got.sizes)  # '8' from the command line -> the int 8
    assert build_dataclass(Choices, {"sizes": [8]}).sizes == [8]  # YAML ints as they are


def test_literal_outside_the_choices_names_key_and_choices() -> None:
    with pytest.raises(ConfigError, match=r"^mode 'medium' is not one of: soft, hard$"):
        build_dataclass(Choices, {"mode": "medium"})
    with pytest.raises(ConfigError, match=r"sizes\[1\] '16' is not one of: 4, 8"):
        build_dataclass(Choices, {"sizes": "4,16"})
    with pytest.raises(ConfigError, match=r"mode 'sfot' is not one of: soft, hard; did you mean"):
        build_dataclass(Choices, {"mode": "sfot"})


def test_optional_literal_takes_null_and_keeps_a_choice_spelt_none() -> None:
    assert build_dataclass(Choices, {"policy": None}).policy is None
    assert build_dataclass(Choices, {"policy": "null"}).policy is None
    assert build_dataclass(Choices, {"policy": "none"}).policy == "none"  # a choice, not null
    with pytest.raises(ConfigError, match=r"policy 'always' is not one of: none, auto, null"):
        build_dataclass(Choices, {"policy": "always"})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("count", "0", r"count 0 is out of range: must be >= 1$"),
        ("rate", "0", r"rate 0.0 is out of range: must be > 0"),
        ("rate", "-1e-3", r"rate -0.001 is out of range: must be > 0"),
        ("share", 1, r"share 1.0 is out of range: must be in \[0, 1\)"),
        ("share", "-0.5", r"share -0.5 is out of range: must be in \[0, 1\)"),
        ("ceiling", "6", r"ceiling 6 is out of range: must be <= 5"),
        ("open_both", "0", r"open_both 0.0 .* in \(0, 1\) \(a probability strictly inside\)"),
        ("open_both", "nan", r"open_both nan is out of range"),
        ("steps", "[3,-1]", r"steps\[1\] -1 is out of range: must be >= 0"),
        ("weight", "-2", r"weight -2.0 is out of range: must be >= 0"),
        ("device", "gpu", r"device 'gpu' is not valid: expected cpu or cuda:N"),
    ],
)
def test_values_out_of_range_name_key_value_and_range(key: str, value, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_dataclass(Choices, {key: value})


def test_bounds_are_inclusive_or_exclusive_as_declared() -> None:
    got = build_dataclass(
        Choices,
        {"count": "1", "share": "0", "ceiling": 5, "open_both": "0.999", "steps": "[0]"},
    )
    assert (got.count, got.share, got.ceiling, got.open_both, got.steps) == (1, 0.0, 5, 0.999, [0])
    assert build_dataclass(Choices, {"weight": "null"}).weight is None  # a range skips null
    assert build_dataclass(Choices, {"device": "cuda:1"}).device == "cuda:1"
    assert Choices().steps is not Choices().steps  # a list default is copied per instance


def test_recipe_keys_are_typed_with_choices_and_ranges(recipe: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"train.amp 'fp32' is not one of: auto, none, bf16, fp16"
    ):
        load_recipe(recipe, ["train.amp=fp32"])
    with pytest.raises(ConfigError, match=r"train.epochs 0 is out of range: must be >= 1 \(a run"):
        load_recipe(recipe, ["train.epochs=0"])
    with pytest.raises(ConfigError, match=r"optim.momentum 1.0 .* in \[0, 1\)"):
        load_recipe(recipe, ["optim.momentum=1.0"])
    with pytest.raises(ConfigError, match=r"method.temperature -1.0 .* > 0 \[method 'kd'\]"):
        load_recipe(recipe, ["method.temperature=-1"])
    with pytest.raises(ConfigError, match=r"device 'cuda0' is not valid"):
        load_recipe(recipe, ["device=cuda0"])
    cfg = load_recipe(recipe, ["optim.name=adamw", "train.progress=none", "device=cuda:1"])
    assert (cfg.optim.name, cfg.train.progress, cfg.device) == ("adamw", "none", "cuda:1")


def schema_classes() -> list[type]:
    """Every dataclass a recipe fills: the run schema and each method's Options."""
    from common.methods.registry import all_methods

    found, todo = [], [RunConfig, *(cls.Options for cls in all_methods().values())]
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.append(cls)
            hints = typing.get_type_hints(cls)
            todo += [hints[f.name] for f in fields(cls) if is_dataclass(hints[f.name])]
    return found


@pytest.mark.parametrize("cls", schema_classes(), ids=lambda c: c.__qualname__)
def test_every_default_satisfies_its_own_declaration(cls: type) -> None:
    instance = cls()
    for f in fields(cls):
        value = getattr(instance, f.name)
        if not is_dataclass(value):
            check_field(f, value, f.name)
            hint = typing.get_type_hints(cls)[f.name]
            assert convert(value, hint, f.name) == value, f.name
