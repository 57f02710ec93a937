"""Reading run folders: find them below the paths given, and load each one's three files.

A run folder holds ``config.yaml`` (the resolved recipe, with the meta keys ``git_commit`` and
``created`` on top), ``metrics.jsonl`` (one JSON object per epoch) and, once the run finished,
``summary.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.errors import UserError

__all__ = [
    "CONFIG",
    "METRICS",
    "SUMMARY",
    "CompareError",
    "Run",
    "cfg_get",
    "find_runs",
    "load_run",
    "number",
]

SUMMARY = "summary.json"
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"


class CompareError(UserError):
    """A problem with the inputs that ends compare with one error line (exit code 2)."""


@dataclass
class Run:
    """One run folder, finished (``summary`` is a dict) or not (``summary`` is None)."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    epochs_done: int | None = None  # from metrics.jsonl; None when the file is absent
    epochs_total: int | None = None  # train.epochs of the recipe
    top1_curve: dict[int, float] = field(default_factory=dict)  # epoch (from 1) -> top-1

    @property
    def finished(self) -> bool:
        """Whether the run wrote its summary."""
        return self.summary is not None

    @property
    def name(self) -> str:
        """The recipe name (the folder's name when the config has none)."""
        name = cfg_get(self.config, "name")
        return str(name) if name else self.path.name

    @property
    def seed(self) -> Any:
        """``train.seed`` of the run (None when the config does not say)."""
        return cfg_get(self.config, "train.seed")


def cfg_get(config: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """Look up ``a.b.c`` in a nested dict (a flat key ``"a.b.c"`` is accepted too)."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (booleans and non-numbers are None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _is_run_dir(path: Path, extra_markers: Iterable[str] = ()) -> bool:
    """A run folder is one holding a summary, a resolved recipe or an epoch log (or a marker)."""
    return any((path / f).is_file() for f in (SUMMARY, CONFIG, METRICS, *extra_markers))


def find_runs(
    paths: Iterable[str | os.PathLike[str]], extra_markers: Iterable[str] = ()
) -> list[Path]:
    """Every run folder named by, or found below, ``paths`` (sorted, without duplicates).

    A folder is a run folder when it contains ``summary.json``, ``config.yaml`` or
    ``metrics.jsonl`` (or one of the file names in ``extra_markers``: the results page adds
    ``last.pt`` and the sweep launcher's ``sweep.failed``, so that a run that failed before
    writing its config is found); the search does not descend into run folders. A folder given
    on the command line with no run folder at or below it is returned as is (it is then
    reported as an unfinished run that has not written anything yet). A file named
    ``summary.json`` stands for its folder.

    Raises:
        CompareError: a path does not exist or is a file other than ``summary.json``.
    """
    markers = tuple(extra_markers)
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CompareError(f"no such file or directory: {raw}")
        if path.is_file():
            if path.name != SUMMARY:
                raise CompareError(f"not a run directory: {raw}")
            path = path.parent
        if _is_run_dir(path, markers):
            found.setdefault(path, None)
            continue
        below: list[Path] = []
        for root, dirs, _files in os.walk(path):
            dirs.sort()
            here = Path(root)
            if here != path and _is_run_dir(here, markers):
                below.append(here)
                dirs[:] = []  # do not look inside a run (checkpoints, logs, ...)
        for run in below or [path]:
            found.setdefault(run, None)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return sorted(unique.values(), key=lambda p: str(p))


def _read_metrics(path: Path) -> tuple[int | None, dict[int, float]]:
    """Finished epochs and the top-1 of each evaluated epoch, from ``metrics.jsonl``.

    The epoch count is None when the file is absent. Epochs are counted from 1 (a log whose
    epochs start at 0 is shifted by one); records without ``epoch`` are numbered by position.
    Epochs without a numeric ``top1`` are left out of the curve. Lines that do not parse (a
    record cut short by a crash) are skipped.
    """
    file = path / METRICS
    if not file.is_file():
        return None, {}
    records: list[tuple[int, dict[str, Any]]] = []
    for line in file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        epoch = record.get("epoch")
        if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
            records.append((int(epoch), record))
        else:
            records.append((len(records) + 1, record))
    if not records:
        return 0, {}
    shift = 1 if min(e for e, _ in records) == 0 else 0
    curve: dict[int, float] = {}
    for epoch, record in records:
        top1 = number(record.get("top1"))
        if top1 is not None:
            curve[epoch + shift] = top1
    return max(e for e, _ in records) + shift, curve


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: ``line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read one run folder's ``config.yaml``, ``summary.json`` and ``metrics.jsonl``.

    Missing files are tolerated (an empty config, ``summary=None``, no curve).

    Raises:
        CompareError: ``config.yaml`` or ``summary.json`` exists but does not parse.
    """
    path = Path(path)
    config: dict[str, Any] = {}
    cfg_file = path / CONFIG
    if cfg_file.is_file():
        try:
            loaded = yaml.safe_load(cfg_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CompareError(f"cannot parse {cfg_file}: {_yaml_problem(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise CompareError(f"{cfg_file} is not a mapping")
        config = loaded or {}
    summary: dict[str, Any] | None = None
    sum_file = path / SUMMARY
    if sum_file.is_file():
        try:
            loaded = json.loads(sum_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CompareError(f"cannot parse {sum_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CompareError(f"{sum_file} is not a JSON object")
        summary = loaded
    total = cfg_get(config, "train.epochs")
    epochs_done, curve = _read_metrics(path)
    return Run(
        path=path,
        config=config,
        summary=summary,
        epochs_done=epochs_done,
        epochs_total=int(total) if number(total) is not None else None,
        top1_curve=curve,
    )
