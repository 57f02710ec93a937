"""The sweep file: what a grid of runs is made of, read and checked in one place.

    out: runs/my_sweep                 # output root (relative to the sweep file)
    recipes:                           # paths or globs (relative to the sweep file) ...
      - ../recipes/kd/cifar100/*.yaml
      - {recipe: teacher.yaml, label: teacher, seeds: [0], inherit: false}  # ... or one entry
                                       # with its own seeds, label and set
    exclude: [../recipes/kd/cifar100/vgg*.yaml]   # files a glob above should not take
    seeds: [0, 1, 2]
    overrides: {method.temperature: [2, 4]}     # product of the lists
    zip: [{optim.lr: [0.1, 0.05], train.batch_size: [128, 64]}]  # lists moving together
    set: {train.epochs: 10, teacher.checkpoint: "{run:teacher/seed0}/final.pt"}
    resources: {nproc: 1, gpus: 1, cpus: 4, time_min: 60, partition: gpu, account: "",
                sbatch: ["--qos=normal"]}

`set` and the grid apply to every run (an entry's own `set` wins) except to an entry with
`inherit: false`, which takes only its own `set` (a teacher the students wait for). `{run:ID}`
in a value is the folder of the sweep's run ID (`label[/tag]/seedN`) and makes this run wait
for it. Recipe files whose name starts with `_` are bases and are skipped by globs.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.config.validate import nearest_key
from common.errors import ConfigError

TOP_KEYS = (
    "out", "recipes", "exclude", "seeds", "overrides", "zip", "set", "resources", "description",
)  # fmt: skip
ENTRY_KEYS = ("recipe", "label", "seeds", "set", "inherit")
RESOURCE_KEYS = ("nproc", "gpus", "cpus", "time_min", "partition", "account", "sbatch", "mem_gb")


@dataclass
class Resources:
    """What one run needs: processes (torchrun above 1), GPUs, CPUs, time; SLURM's options."""

    nproc: int = 1
    gpus: int = 0
    cpus: int = 0  # 0: the local launcher divides the machine's cores between its workers
    time_min: int = 60
    partition: str = ""
    account: str = ""
    mem_gb: int = 0  # 0: SLURM's default
    sbatch: list[str] = field(default_factory=list)


@dataclass
class RecipeEntry:
    """One item of `recipes:`: a file (or glob) and what it overrides of the sweep's defaults."""

    pattern: str
    label: str = ""
    seeds: list[int] | None = None
    set: dict[str, Any] = field(default_factory=dict)
    inherit: bool = True  # False: the sweep's `set` and grid are not applied, only its own set


@dataclass
class SweepSpec:
    """A parsed sweep file; `path` is where it was read from (paths are relative to it)."""

    path: Path
    out: Path
    entries: list[RecipeEntry]
    seeds: list[int]
    overrides: dict[str, list[Any]]
    zips: list[dict[str, list[Any]]]
    set: dict[str, Any]
    resources: Resources
    description: str = ""
    exclude: list[str] = field(default_factory=list)


def _unknown(key: str, known: tuple[str, ...], where: str) -> ConfigError:
    guess = nearest_key(key, list(known))
    hint = f"; did you mean '{guess}'?" if guess else ""
    return ConfigError(f"{where}: unknown key '{key}'{hint} (known: {', '.join(known)})")


def _seeds(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: 'seeds' must be a non-empty list of integers, got {value!r}")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value):
        raise ConfigError(f"{where}: 'seeds' must hold non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: 'seeds' repeats a seed: {value!r}")
    return list(value)


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping of dotted keys, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _grid(value: Any, key: str, where: str) -> dict[str, list[Any]]:
    grid = _mapping(value, key, where)
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: '{key}.{name}' must be a non-empty list of values, got {values!r}"
            )
    return grid


def _entry(item: Any, where: str) -> RecipeEntry:
    if isinstance(item, str):
        return RecipeEntry(pattern=item)
    if not isinstance(item, dict) or "recipe" not in item:
        raise ConfigError(
            f"{where}: each item of 'recipes' is a path/glob or a mapping with 'recipe', "
            f"got {item!r}"
        )
    for key in item:
        if key not in ENTRY_KEYS:
            raise _unknown(str(key), ENTRY_KEYS, f"{where} (recipe {item['recipe']})")
    seeds = _seeds(item["seeds"], where) if "seeds" in item else None
    inherit = item.get("inherit", True)
    if not isinstance(inherit, bool):
        raise ConfigError(f"{where}: 'inherit' of recipe {item['recipe']} must be true or false")
    return RecipeEntry(
        pattern=str(item["recipe"]),
        label=str(item.get("label") or ""),
        seeds=seeds,
        set=_mapping(item.get("set"), "set", where),
        inherit=inherit,
    )


def _resources(value: Any, where: str) -> Resources:
    raw = _mapping(value, "resources", where)
    for key in raw:
        if key not in RESOURCE_KEYS:
            raise _unknown(key, RESOURCE_KEYS, f"{where} resources")
    res = Resources(**{k: v for k, v in raw.items() if k != "sbatch"})
    res.sbatch = [str(line) for line in raw.get("sbatch") or []]
    for name in ("nproc", "time_min"):
        if not isinstance(getattr(res, name), int) or getattr(res, name) < 1:
            raise ConfigError(f"{where}: resources.{name} must be an integer >= 1")
    for name in ("gpus", "cpus", "mem_gb"):
        if not isinstance(getattr(res, name), int) or getattr(res, name) < 0:
            raise ConfigError(f"{where}: resources.{name} must be an integer >= 0")
    return res


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check the sweep file at `path`; every mistake is one ConfigError line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} not found; give the path of a sweep YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"sweep file {path} is not valid YAML{at}") from None
    where = f"sweep file {path}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with at least out, recipes, seeds")
    for key in raw:
        if key not in TOP_KEYS:
            raise _unknown(str(key), TOP_KEYS, where)
    for key in ("out", "recipes", "seeds"):
        if key not in raw:
            raise ConfigError(f"{where} has no '{key}' (needed: out, recipes, seeds)")
    if not isinstance(raw["recipes"], list) or not raw["recipes"]:
        raise ConfigError(f"{where}: 'recipes' must be a non-empty list of paths or globs")
    zips = raw.get("zip") or []
    if not isinstance(zips, list):
        raise ConfigError(f"{where}: 'zip' must be a list of mappings of equal-length lists")
    zip_groups = [_grid(group, "zip", where) for group in zips]
    for group in zip_groups:
        lengths = {len(v) for v in group.values()}
        if len(lengths) > 1:
            raise ConfigError(f"{where}: the lists of a 'zip' group differ in length: {group}")
    out = (path.parent / str(raw["out"])).resolve()  # absolute: jobs may start elsewhere
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{where}: out {out} is a file; give a folder for the runs")
    return SweepSpec(
        path=path,
        out=out,
        entries=[_entry(item, where) for item in raw["recipes"]],
        seeds=_seeds(raw["seeds"], where),
        overrides=_grid(raw.get("overrides"), "overrides", where),
        zips=zip_groups,
        set=_mapping(raw.get("set"), "set", where),
        resources=_resources(raw.get("resources"), where),
        description=str(raw.get("description") or ""),
        exclude=[str(p) for p in raw.get("exclude") or []],
    )


def expand_pattern(spec: SweepSpec, entry: RecipeEntry) -> list[Path]:
    """The recipe files an entry names (a glob skips `_*.yaml` bases); none is an error."""
    pattern = entry.pattern
    full = pattern if Path(pattern).is_absolute() else str(spec.path.parent / pattern)
    if glob.has_magic(pattern):
        found = sorted(Path(p).resolve() for p in glob.glob(full, recursive=True))
        excluded = {
            Path(p).resolve()
            for pattern in spec.exclude
            for p in glob.glob(str(spec.path.parent / pattern), recursive=True)
        }
        found = [p for p in found if p.is_file() and not p.name.startswith("_")]
        found = [p for p in found if p not in excluded]
    else:
        found = [Path(full).resolve()] if Path(full).is_file() else []
    if not found:
        what = "matches no recipe file" if glob.has_magic(pattern) else "is not a file"
        raise ConfigError(f"sweep file {spec.path}: recipe '{pattern}' {what} (looked at {full})")
    return found
