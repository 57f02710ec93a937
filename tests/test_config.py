"""Recipes: base inheritance, typed overrides, unknown keys with a suggestion, shipped recipes."""

from pathlib import Path

import pytest

from common.config import ConfigError, load_recipe, load_saved_config, save_config
from common.config.loader import recipe_name

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
    if "demo" not in path.parts:
        assert cfg.paper.top1 is not None, "every recipe records the paper number for its row"
