"""Grouping finished runs into rows: one row per experiment, the seeds pooled.

Two runs are seeds of one experiment when their resolved configurations are equal once the keys
that do not change the experiment are left out (`IGNORED_KEYS`, `IGNORED_SECTIONS`). Runs with
one recipe name but another configuration (an override such as ``method.temperature=2``) become
rows of their own, labelled with what differs.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.report.runs import METRICS, SUMMARY, Run, cfg_get, number

__all__ = [
    "IGNORED_KEYS",
    "IGNORED_SECTIONS",
    "METRIC_CHOICES",
    "Row",
    "experiment_config",
    "flatten",
    "format_value",
    "run_warnings",
    "summarise",
    "unfinished_description",
]

METRIC_CHOICES = ("top1", "top1_best")

# Dotted keys that say where or how a run ran, not what it ran.
IGNORED_KEYS = frozenset(
    {
        "train.seed",
        "out_root",
        "git_commit",
        "created",
        "data.root",
        "data.cache_dir",
        "data.num_workers",
        "data.download",
        "train.progress",
        "device",
    }
)
# A key with one of these components is ignored: `log` (logging), `paper` (what we compare to).
IGNORED_SECTIONS = frozenset({"log", "paper"})

MAX_LABEL_KEYS = 3  # a row label names at most this many differing keys, then "+N more"
UNSET = "unset"
_MISSING = object()  # a key one group of a name has and another lacks


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The leaves of a nested dict under dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``).

    An empty dict is a leaf; lists are leaves.
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, prefix=dotted + "."))
        else:
            flat[dotted] = value
    return flat


def experiment_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened configuration without the keys that do not change the experiment."""
    return {
        key: value
        for key, value in flatten(config).items()
        if key not in IGNORED_KEYS and not IGNORED_SECTIONS.intersection(key.split("."))
    }


def _canon(value: Any) -> str:
    """A hashable form of a config value in which ``4`` and ``4.0`` are equal."""

    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        return str(v)

    return json.dumps(norm(value), sort_keys=True)


def format_value(value: Any) -> str:
    """A config value, short: ``2.0`` -> ``2``, ``True`` -> ``true``, lists as ``[1,2]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (bool, list, tuple, dict)) or value is None:
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _seed_key(seed: Any) -> str:
    """The seed as shown and as compared (``0`` and ``0.0`` are one seed; None is ``?``)."""
    return "?" if seed is None else format_value(seed)


def _seed_sort(seed: str) -> tuple[int, float, str]:
    """Numeric seeds in numeric order, then the others."""
    try:
        return (0, float(seed), "")
    except ValueError:
        return (1, 0.0, seed)


@dataclass
class Row:
    """One experiment: the seeds that ran it, summarised (None where no run gave a value).

    Statistics are over distinct seeds: runs that repeat a seed are averaged into that seed
    first, so a repeated seed is not counted twice (`run_warnings` reports it).
    """

    recipe: str  # the recipe name
    label: str  # the name, plus ``[key=value, ...]`` when other rows share the name
    method: str
    teacher: str
    student: str
    data: str
    n: int  # distinct seeds
    n_runs: int
    top1_mean: float | None
    top1_std: float | None  # sample std over seeds (n - 1); None when n == 1
    top1_best_mean: float | None
    top1_best_std: float | None
    top5_mean: float | None
    paper_top1: float | None
    paper_top5: float | None
    paper_table: str
    paper_note: str
    gap: float | None  # our mean (of the chosen metric) minus the paper's top-1
    ece_mean: float | None  # fraction
    train_seconds_mean: float | None
    seeds: list[str] = field(default_factory=list)  # distinct seeds, sorted
    seed_runs: dict[str, list[Path]] = field(default_factory=dict)  # seed -> its run folders
    differs: dict[str, Any] = field(default_factory=dict)  # the keys named in the label
    runs: list[Run] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        """The row's run folders."""
        return [r.path for r in self.runs]

    @property
    def repeated_seeds(self) -> dict[str, list[Path]]:
        """Seeds that more than one run of this row used, with those runs' folders."""
        return {s: p for s, p in self.seed_runs.items() if len(p) > 1}


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values that are not None."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) > 1 else None
    return mean, std


def _per_seed(by_seed: dict[str, list[Run]], key: str) -> list[float | None]:
    """One value of summary ``key`` per seed: the mean over that seed's runs that report it."""
    values: list[float | None] = []
    for members in by_seed.values():
        mean, _ = _mean_std([number((m.summary or {}).get(key)) for m in members])
        values.append(mean)
    return values


def _first(members: Sequence[Run], key: str) -> Any:
    """The first non-empty value of config ``key`` among the runs (None when none has one)."""
    for m in members:
        value = cfg_get(m.config, key)
        if value not in (None, ""):
            return value
    return None


def _label(name: str, differs: dict[str, Any]) -> str:
    """``name [k=v, ...]`` with at most `MAX_LABEL_KEYS` keys; just ``name`` without any."""
    if not differs:
        return name
    items = [f"{k}={UNSET if v is _MISSING else format_value(v)}" for k, v in differs.items()]
    shown = items[:MAX_LABEL_KEYS]
    if len(items) > MAX_LABEL_KEYS:
        shown.append(f"+{len(items) - MAX_LABEL_KEYS} more")
    return f"{name} [{', '.join(shown)}]"


def _group(runs: Iterable[Run]) -> list[tuple[str, dict[str, Any], list[Run]]]:
    """Finished runs grouped by (name, experiment configuration), with each group's label keys.

    The label keys of a group are the keys whose values are not the same in all groups of its
    name (empty when the name has one group).
    """
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[Run]] = {}
    configs: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    for run in runs:
        if not run.finished:
            continue
        exp = experiment_config(run.config)
        key = (run.name, tuple(sorted((k, _canon(v)) for k, v in exp.items())))
        groups.setdefault(key, []).append(run)
        configs.setdefault(key, exp)
    by_name: dict[str, list[tuple[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]]]] = {}
    for key, exp in configs.items():
        by_name.setdefault(key[0], []).append((key, exp))
    out: list[tuple[str, dict[str, Any], list[Run]]] = []
    for name, entries in by_name.items():
        differing: list[str] = []
        if len(entries) > 1:
            keys = sorted({k for _, exp in entries for k in exp})
            for k in keys:
                values = {_canon(exp[k]) if k in exp else None for _, exp in entries}
                if len(values) > 1:
                    differing.append(k)
        for key, exp in entries:
            out.append((name, {k: exp.get(k, _MISSING) for k in differing}, groups[key]))
    return out


def summarise(runs: Iterable[Run], metric: str = "top1") -> list[Row]:
    """Group finished runs into rows, sorted by data, teacher, student, method, label.

    Unfinished runs are left out. ``metric`` (``top1`` or ``top1_best``) is the number whose
    mean the ``gap`` column compares with ``paper.top1``.
    """
    if metric not in METRIC_CHOICES:
        raise ValueError(f"metric must be one of {METRIC_CHOICES}, got {metric!r}")
    rows: list[Row] = []
    for name, differs, members in _group(runs):
        first = members[0].config
        by_seed: dict[str, list[Run]] = {}
        for m in members:
            by_seed.setdefault(_seed_key(m.seed), []).append(m)
        by_seed = dict(sorted(by_seed.items(), key=lambda kv: _seed_sort(kv[0])))
        top1_mean, top1_std = _mean_std(_per_seed(by_seed, "top1"))
        best_mean, best_std = _mean_std(_per_seed(by_seed, "top1_best"))
        top5_mean, _ = _mean_std(_per_seed(by_seed, "top5"))
        ece_mean, _ = _mean_std(_per_seed(by_seed, "ece"))
        time_mean, _ = _mean_std(_per_seed(by_seed, "train_seconds"))
        paper = number(_first(members, "paper.top1"))
        ours = top1_mean if metric == "top1" else best_mean
        rows.append(
            Row(
                recipe=name,
                label=_label(name, differs),
                method=str(cfg_get(first, "method.name") or ""),
                teacher=str(cfg_get(first, "teacher.name") or ""),
                student=str(cfg_get(first, "student.name") or ""),
                data=str(cfg_get(first, "data.name") or ""),
                n=len(by_seed),
                n_runs=len(members),
                top1_mean=top1_mean,
                top1_std=top1_std,
                top1_best_mean=best_mean,
                top1_best_std=best_std,
                top5_mean=top5_mean,
                paper_top1=paper,
                paper_top5=number(_first(members, "paper.top5")),
                paper_table=str(_first(members, "paper.table") or ""),
                paper_note=str(_first(members, "paper.note") or "").strip(),
                gap=None if ours is None or paper is None else ours - paper,
                ece_mean=ece_mean,
                train_seconds_mean=time_mean,
                seeds=list(by_seed),
                seed_runs={s: [m.path for m in ms] for s, ms in by_seed.items()},
                differs={k: (None if v is _MISSING else v) for k, v in differs.items()},
                runs=list(members),
            )
        )
    rows.sort(key=lambda r: (r.data, r.teacher, r.student, r.method, r.recipe, r.label))
    return rows


def unfinished_description(run: Run) -> str:
    """``DIR (epoch k of N)`` for a run without summary."""
    if run.epochs_done is None:
        progress = f"no {METRICS} yet"
    else:
        total = "?" if run.epochs_total is None else str(run.epochs_total)
        progress = f"epoch {run.epochs_done} of {total}"
    return f"{run.path} ({progress})"


def run_warnings(rows: Sequence[Row], unfinished: Sequence[Run] = ()) -> list[str]:
    """One ``warning: ...`` line per repeated seed of a row and per unfinished run."""
    lines: list[str] = []
    for row in rows:
        for seed, paths in row.repeated_seeds.items():
            folders = ", ".join(str(p) for p in paths)
            lines.append(
                f"warning: {row.label}: seed {seed} ran {len(paths)} times ({folders}); "
                "it counts as one seed, its runs averaged"
            )
    for run in unfinished:
        lines.append(
            f"warning: unfinished run (no {SUMMARY}), left out of the table: "
            + unfinished_description(run)
        )
    return lines
