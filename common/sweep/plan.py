"""A sweep file expanded into runs: each with a stable, readable folder, its overrides, and the
runs it waits for.

A run's folder is `<out>/<label>[/<tag>]/seed<N>`: `label` is the recipe's name (its file stem,
or its path below the recipes' common folder when two stems collide, or the entry's `label`),
`tag` names the grid's overrides (`method.temperature=2__train.epochs=5`). The same sweep file
gives the same folders on every machine, so a re-run finds what was done.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.errors import ConfigError
from common.sweep.spec import SweepSpec, expand_pattern

REFERENCE = re.compile(r"\{run:([^}]+)\}")


@dataclass
class PlannedRun:
    """One run of a sweep, before it is launched."""

    run_id: str  # `label[/tag]/seedN`, the folder below the sweep's out
    run_dir: Path
    recipe: Path
    seed: int
    overrides: list[str]  # key=value, `{run:ID}` references still in them
    needs: list[str] = field(default_factory=list)  # run ids this run waits for

    def resolved_overrides(self, folders: dict[str, Path]) -> list[str]:
        """The overrides with each `{run:ID}` replaced by that run's folder."""
        return [REFERENCE.sub(lambda m: str(folders[m.group(1)]), text) for text in self.overrides]


def override_text(key: str, value: Any) -> str:
    """`key=value` as the recipe loader reads it (YAML flow form for non-strings)."""
    if isinstance(value, str):
        return f"{key}={value}"
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def _tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True)
    text = str(text).strip().removesuffix("...").strip()
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "empty"


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the `overrides` product and the `zip` groups (one point if none)."""
    axes: list[list[dict[str, Any]]] = []
    for key, values in spec.overrides.items():
        axes.append([{key: v} for v in values])
    for group in spec.zips:
        keys = list(group)
        axes.append([dict(zip(keys, vals)) for vals in zip(*group.values())])
    return [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*axes)]


def _labels(files: list[Path]) -> dict[Path, str]:
    """Stems, or paths below the files' common folder where two stems collide."""
    stems = [f.stem for f in files]
    if len(set(stems)) == len(stems):
        return {f: f.stem for f in files}
    root = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    return {f: f.resolve().with_suffix("").relative_to(root).as_posix() for f in files}


def plan_sweep(spec: SweepSpec) -> list[PlannedRun]:
    """Every run of the sweep, in file order; duplicates, bad references and cycles refused."""
    listed = [(entry, path) for entry in spec.entries for path in expand_pattern(spec, entry)]
    labels = _labels(sorted({path.resolve() for _, path in listed}))
    runs: list[PlannedRun] = []
    seen: dict[str, str] = {}
    for entry, path in listed:
        label = entry.label or labels[path.resolve()]
        points = grid_points(spec) if entry.inherit else [{}]
        for point in points:
            tag = "__".join(f"{k}={_tag_value(v)}" for k, v in point.items())
            fixed = {**(spec.set if entry.inherit else {}), **entry.set, **point}
            for seed in entry.seeds or spec.seeds:
                run_id = "/".join(part for part in (label, tag, f"seed{seed}") if part)
                if run_id in seen:
                    raise ConfigError(
                        f"sweep file {spec.path}: two runs share the folder {run_id} "
                        f"({seen[run_id]} and {path}); give one an entry `label:`"
                    )
                seen[run_id] = str(path)
                overrides = [f"train.seed={seed}"]
                overrides += [override_text(k, v) for k, v in fixed.items()]
                needs = sorted({m for o in overrides for m in REFERENCE.findall(o)})
                runs.append(PlannedRun(run_id, spec.out / run_id, path, seed, overrides, needs))
    check_references(spec, runs)
    return runs


def check_references(spec: SweepSpec, runs: list[PlannedRun]) -> None:
    """Every `{run:ID}` names a run of the sweep, and no run waits on itself through others."""
    by_id = {run.run_id: run for run in runs}
    for run in runs:
        for need in run.needs:
            if need not in by_id:
                raise ConfigError(
                    f"sweep file {spec.path}: run {run.run_id} refers to {{run:{need}}}, which "
                    f"is not a run of this sweep (runs look like {runs[0].run_id})"
                )
    state: dict[str, int] = {}  # 1 = on the path being walked, 2 = checked

    def walk(run_id: str, path: list[str]) -> None:
        if state.get(run_id) == 2:
            return
        if state.get(run_id) == 1:
            cycle = " -> ".join([*path[path.index(run_id) :], run_id])
            raise ConfigError(f"sweep file {spec.path}: runs wait on each other: {cycle}")
        state[run_id] = 1
        for need in by_id[run_id].needs:
            walk(need, [*path, run_id])
        state[run_id] = 2

    for run in runs:
        walk(run.run_id, [])
