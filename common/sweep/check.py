"""Every run of a sweep checked before the first starts: its recipe and overrides resolve and
pass the checks every run passes before it reads data (`run_builder.resolve_recipe`: the
schema, the data set's and models' names, the batch over the run's processes; the run named in
the message), and a folder that already holds a run holds this run (its saved config is the
same experiment), else both are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.config import config_to_dict, load_saved_config
from common.engine.run_builder import resolve_recipe
from common.errors import UserError
from common.report.grouping import experiment_config
from common.sweep.plan import PlannedRun

# Keys that may differ between a sweep's run and its folder's saved config without it being
# another experiment: where files are (the teacher's file is the sweep's own run) and logging.
SAME_RUN_KEYS = frozenset({"teacher.checkpoint", "teacher.weights", "data.val_batch_size"})


class SweepError(UserError):
    """A sweep that cannot start or go on; the message names the run and the fix."""


def run_folders(runs: list[PlannedRun]) -> dict[str, Path]:
    return {run.run_id: run.run_dir for run in runs}


def resolve_config(
    run: PlannedRun, folders: dict[str, Path], world_size: int = 1
) -> dict[str, Any]:
    """The run's resolved config as plain data, checked as the training command will check it
    for `world_size` processes (the run named in any refusal)."""
    try:
        cfg = resolve_recipe(run.recipe, run.resolved_overrides(folders), world_size=world_size)
    except UserError as err:
        raise SweepError(f"run {run.run_id} ({run.recipe}): {err}") from None
    return config_to_dict(cfg)


def _experiment(config: dict[str, Any]) -> dict[str, Any]:
    flat = experiment_config(config)
    return {k: v for k, v in flat.items() if k not in SAME_RUN_KEYS}


def differences(saved: dict[str, Any], planned: dict[str, Any]) -> list[str]:
    """`key: saved -> planned` for each experiment key that differs. A key the saved config
    lacks is an option added since the run was made, whose default keeps the old behaviour
    (the rule for adding options), so it is not a difference."""
    a, b = _experiment(saved), _experiment(planned)
    return [f"{k}: {a[k]!r} -> {b.get(k, 'unset')!r}" for k in sorted(a) if a[k] != b.get(k)]


def check_runs(runs: list[PlannedRun], world_size: int = 1) -> dict[str, dict[str, Any]]:
    """Resolve every run (each trained by `world_size` processes); refuse a folder holding
    another experiment. Returns the configs."""
    folders = run_folders(runs)
    configs = {}
    for run in runs:
        planned = resolve_config(run, folders, world_size)
        saved_file = run.run_dir / "config.yaml"
        if saved_file.is_file():
            try:
                saved = config_to_dict(load_saved_config(saved_file))
            except UserError as err:
                raise SweepError(f"run {run.run_id}: its folder's config.yaml: {err}") from None
            diff = differences(saved, planned)
            if diff:
                more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
                raise SweepError(
                    f"run {run.run_id}: its folder {run.run_dir} holds another experiment "
                    f"than the sweep's ({run.recipe} + overrides): {diff[0]}{more}; move the "
                    "folder away or change the sweep's out (nothing was started)"
                )
        configs[run.run_id] = planned
    return configs
