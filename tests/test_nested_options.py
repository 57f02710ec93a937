"""Options holding another method's options (`options_of`, SoKD's `base_options`) are checked
when the recipe is read, with the same one-line message as a key one level up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.config import ConfigError, load_recipe, load_saved_config, save_config
from common.config.nested import check_nested_options, nested_fields, options_of
from common.config.validate import at_least, build_dataclass

REPO = Path(__file__).resolve().parents[1]
SOKD_RECIPES = sorted((REPO / "sokd" / "recipes").rglob("*.yaml"))
FITNET_SOKD = REPO / "sokd" / "recipes" / "cifar100" / "resnet56_resnet20_fitnet.yaml"


@dataclass
class Leaf:
    """A method with plain options."""

    depth: int = at_least(1, 3)
    width: float = 1.0


@dataclass
class Wrapper:
    """A method over another method (as SoKD is), itself wrappable."""

    inner: str = "leaf"
    inner_options: dict[str, Any] = options_of("inner")
    alpha: float = 1.0


OPTIONS = {"leaf": Leaf, "wrapper": Wrapper}


def check(values: dict[str, Any]) -> None:
    options = build_dataclass(Wrapper, values, "method")
    check_nested_options(options, "method", lambda name: OPTIONS[name])


def test_the_mark_names_the_sibling_and_defaults_to_an_empty_mapping() -> None:
    assert nested_fields(Wrapper) == {"inner_options": "inner"}
    assert nested_fields(Leaf) == {}
    assert Wrapper().inner_options == {} and Wrapper().inner_options is not Wrapper().inner_options


def test_a_misspelt_nested_key_names_its_path_and_the_nearest_key() -> None:
    with pytest.raises(ConfigError) as err:
        check({"inner_options": {"dept": 2}})
    message = str(err.value)
    assert "unknown key 'method.inner_options.dept'" in message
    assert "did you mean 'method.inner_options.depth'?" in message
    assert "[method.inner 'leaf']" in message and "\n" not in message


def test_nested_types_and_ranges_are_checked_as_at_the_top() -> None:
    with pytest.raises(ConfigError, match=r"key 'method.inner_options.width' expects float"):
        check({"inner_options": {"width": "wide"}})
    with pytest.raises(ConfigError, match=r"method.inner_options.depth 0 is out of range"):
        check({"inner_options": {"depth": 0}})
    check({"inner_options": {"depth": "2", "width": 3}})  # an override's strings convert


def test_marks_are_followed_to_any_depth() -> None:
    nested = {"inner": "wrapper", "inner_options": {"inner_options": {"depht": 2}}}
    with pytest.raises(ConfigError) as err:
        check(nested)
    assert "unknown key 'method.inner_options.inner_options.depht'" in str(err.value)
    assert "did you mean 'method.inner_options.inner_options.depth'" in str(err.value)
    check({"inner": "wrapper", "inner_options": {"inner_options": {"depth": 2}}})


def test_a_sibling_naming_no_method_is_one_line() -> None:
    options = build_dataclass(Wrapper, {"inner": "nothing", "inner_options": {"a": 1}}, "method")
    with pytest.raises(ConfigError, match=r"method.inner 'nothing' names no method"):
        check_nested_options(options, "method", lambda name: OPTIONS[name])


def test_sokd_base_options_typo_is_refused_by_the_recipe_loader() -> None:
    """The issue's case: refused at load (no data, no model built), nearest key named."""
    with pytest.raises(ConfigError) as err:
        load_recipe(FITNET_SOKD, ["method.base_options.hint_layr=2"])
    message = str(err.value)
    assert "unknown key 'method.base_options.hint_layr'" in message
    assert "did you mean 'method.base_options.hint_layer'?" in message
    assert "[method.base 'fitnet']" in message and "[method 'sokd']" in message


@pytest.mark.parametrize(
    ("base", "overrides", "expect"),
    [
        ("fitnet", ["method.base=at"], "'method.base_options.hint_layer' (valid keys here: "),
        ("crd", ["method.base_options.momentum=1"], "momentum 1.0 is out of range"),
        ("crd", ["method.base_options.mode=soft"], "'soft' is not one of: exact"),
        ("at", ["method.base_options.stage_pairng=first"], "mean 'method.base_options.stage_"),
    ],
)
def test_the_check_follows_the_base_the_recipe_names(
    base: str, overrides: list[str], expect: str
) -> None:
    """A FitNet key under an AT base is refused; each base's own keys are checked."""
    recipe = FITNET_SOKD.parent / f"resnet56_resnet20_{base}.yaml"
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe, overrides)
    assert expect in str(err.value)


def test_a_good_nested_override_is_kept_as_written() -> None:
    cfg = load_recipe(FITNET_SOKD, ["method.base_options.hint_layer=3"])
    assert cfg.method.options.base_options["hint_layer"] == "3"  # typed by the method's build


@pytest.mark.parametrize("path", SOKD_RECIPES, ids=lambda p: p.stem)
def test_every_shipped_sokd_recipe_loads(path: Path) -> None:
    cfg = load_recipe(path)
    assert cfg.method.name == "sokd"


def test_a_saved_config_with_nested_options_is_read_back_and_checked(tmp_path: Path) -> None:
    cfg = load_recipe(FITNET_SOKD, ["method.base_options.hint_layer=1"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_saved_config(tmp_path / "config.yaml")
    assert again.method.options.base_options == cfg.method.options.base_options
    with pytest.raises(ConfigError, match="did you mean 'method.base_options.feat_weight'"):
        load_saved_config(tmp_path / "config.yaml", ["method.base_options.feat_weigth=1"])
