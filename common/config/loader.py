"""Read YAML recipes: `base:` inheritance, `key.sub=value` overrides, schema validation.

A recipe may name one base recipe (or a list) with `base: path/relative/to/this/file.yaml`;
its keys are deep-merged over the base's. Overrides from the command line are applied last,
as raw strings converted by the type the schema gives the key.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from common.config.nested import check_nested_options
from common.config.schema import MethodConfig, RunConfig
from common.config.validate import (
    ConfigError,
    build_dataclass,
    nearest_key,
    to_plain,
    unknown_key_message,
)


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` merged over `base`; nested mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where (line, column)."""
    problem = getattr(err, "problem", None) or str(err).strip().splitlines()[-1]
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping in the YAML file `path` (`what` names it in messages: 'recipe', ...)."""
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory, not a YAML file (give the .yaml file)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {yaml_problem(err)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text (YAML) file") from None
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror or err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must be a mapping of keys, got {type(raw).__name__}")
    return raw


def read_recipe_tree(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at `path` with its bases merged in (bases first)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"recipe bases form a cycle: {chain}")
    if not path.exists():
        hint = f"named by base: in {_seen[-1]}" if _seen else "check the --recipe path"
        raise ConfigError(f"recipe not found: {path} ({hint})")
    raw = read_yaml_mapping(path, "recipe")
    bases = raw.pop("base", None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(
            f"recipe {path}: 'base' must be a file name or a list of them, got {bases!r}"
        )
    merged: dict[str, Any] = {}
    for base in bases:
        merged = deep_merge(merged, read_recipe_tree(path.parent / base, (*_seen, path)))
    return deep_merge(merged, raw)


def parse_override(text: str) -> tuple[list[str], str]:
    """'train.epochs=10' -> (['train', 'epochs'], '10')."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value (e.g. train.epochs=10)")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}' has an empty key")
    return parts, value.strip()


def apply_override(tree: dict[str, Any], parts: list[str], value: str) -> None:
    """Set tree[parts[0]][parts[1]]... = value, creating mappings on the way."""
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def recipe_name(path: Path) -> str:
    """Name a run after its recipe: the path below `recipes/`, prefixed by the method folder.

    `tools/recipes/kd/cifar100/a_b.yaml` -> `kd/cifar100/a_b`;
    `r2kd/recipes/cifar100/a_b.yaml` -> `r2kd/cifar100/a_b`.
    """
    parts = path.resolve().with_suffix("").parts
    if "recipes" not in parts:
        return path.stem
    idx = len(parts) - 1 - parts[::-1].index("recipes")
    owner = parts[idx - 1] if idx > 0 else ""
    prefix = [] if owner in ("tools", "") else [owner]
    return "/".join(prefix + list(parts[idx + 1 :]))


def _build_method(tree: dict[str, Any], default_method: str) -> MethodConfig:
    from common.methods.registry import get_method, method_names

    section = tree.pop("method", {}) or {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"key 'method' expects a mapping, got {section!r}: write method: {{name: {section}}} "
            f"in the recipe, or method.name={section} on the command line"
        )
    section = dict(section)
    name = str(section.pop("name", default_method))
    try:
        cls = get_method(name)
    except KeyError:
        names = method_names()
        guess = nearest_key(name, names)
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise ConfigError(
            f"unknown method.name '{name}'{hint} (known: {', '.join(names)})"
        ) from None
    nested = section.pop("options", None)
    if isinstance(nested, dict):
        section = {**nested, **section}
    elif nested is not None:
        raise ConfigError(f"key 'method.options' expects a mapping of options, got {nested!r}")
    try:
        options = build_dataclass(cls.Options, section, "method")
        check_nested_options(options, "method", lambda base: get_method(base).Options)
    except ConfigError as err:
        raise ConfigError(f"{err} [method '{name}']") from None
    return MethodConfig(name=name, options=options)


def build_config(tree: dict[str, Any], default_method: str = "vanilla") -> RunConfig:
    """A validated RunConfig from a merged recipe tree (`method.name` defaults to
    `default_method`: each entry point's own method)."""
    tree = copy.deepcopy(tree)
    method = _build_method(tree, default_method)
    for key in tree:
        if key not in RunConfig.__dataclass_fields__:
            raise ConfigError(unknown_key_message("", key, list(RunConfig.__dataclass_fields__)))
    cfg = build_dataclass(RunConfig, tree)
    cfg.method = method
    if not cfg.data.root:
        cfg.data.root = os.environ.get("DATA_ROOT", "")
    return cfg


def load_recipe(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    default_method: str = "vanilla",
) -> RunConfig:
    """Read, merge, override and validate the recipe at `path`; a recipe without `method.name`
    trains `default_method`."""
    path = Path(path)
    tree = read_recipe_tree(path)
    for text in overrides:
        parts, value = parse_override(text)
        if parts[0] == "base":
            raise ConfigError("'base' cannot be overridden on the command line")
        apply_override(tree, parts, value)
    cfg = build_config(tree, default_method)
    if not cfg.name:
        cfg.name = recipe_name(path)
    return cfg


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The resolved recipe as plain data; method options flattened next to `method.name`."""
    plain = to_plain(cfg)
    method = plain.pop("method")
    plain["method"] = {"name": method["name"], **(method["options"] or {})}
    return plain


def save_config(cfg: RunConfig, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write the resolved recipe as YAML (with `extra` such as the git commit on top)."""
    data = config_to_dict(cfg)
    if extra:
        data = {**extra, **data}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def load_saved_config(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Re-read a run directory's config.yaml (for --resume), with overrides."""
    if not path.is_file():
        raise ConfigError(f"no config.yaml in {path.parent}: is it a run directory?")
    tree = read_yaml_mapping(path, "run config")
    for meta in ("git_commit", "created"):
        tree.pop(meta, None)
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(tree, parts, value)
    return build_config(tree)
