"""What the writers behind optional extras (W&B, MLflow) share: their package or one `error:`
line naming the extra, the run's resolved config, its numbers, and the id of the tracker's
run kept in the run folder (so that `--resume` continues the same tracked run)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from common.errors import ConfigError

__all__ = ["flat", "import_extra", "numbers", "read_id", "run_config", "run_label", "write_id"]


def import_extra(module: str, writer: str, extra: str) -> ModuleType:
    """`module`, or ConfigError (one line) naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"log.writers has '{writer}' but {module} is not installed: "
            f"pip install -e '.[{extra}]' (or drop it from log.writers)"
        ) from None


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's `config.yaml` (the resolved recipe, written before the writers start);
    empty when there is none."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"train": {"epochs": 2}}` -> `{"train.epochs": 2}` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """The finite int and float entries of `values` (no bools, strings, lists or None)."""
    return {
        key: float(value)
        for key, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }


def run_label(config: dict[str, Any], run_dir: Path) -> str:
    """`<recipe name>/seed<N>`, the name the run gets in the tracker."""
    name = config.get("name") or Path(run_dir).name
    seed = (config.get("train") or {}).get("seed")
    return f"{name}/seed{seed}" if seed is not None else str(name)


def read_id(path: Path) -> str:
    """The tracked run's id saved in the run folder ('' when there is none)."""
    return path.read_text().strip() if path.is_file() else ""


def write_id(path: Path, run_id: str) -> None:
    """Save the tracked run's id in the run folder."""
    path.write_text(run_id + "\n")
