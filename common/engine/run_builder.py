"""The one way a run is put together, for the command line (`common.cli`), `fit()` and the
sweep's checks (`common.sweep.check`).

1. `plan_*`: the configuration, resolved and checked once (`check_settings`: the data set's and
   the models' names, the batch over the processes), and the run folder's rule (a new run, a
   resume from its `last.pt`, or an overwrite), all before anything is written;
2. `build_run`: the device policy resolved, the run seeded, data, distiller and `Trainer` built
   (each may still refuse), and only then the folder created and its `config.yaml` written: the
   resolved recipe with the meta keys `git_commit` and `created` (kept when a run resumes).

Each front end names its own options in the folder messages (`Wording`); the rules are here.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from common.config import RunConfig, config_to_dict, load_recipe
from common.data import build_data
from common.data.build import check_name
from common.data.sharding import per_rank_batch
from common.data.spec import DataBundle
from common.engine.build import build_distiller, seed_everything
from common.engine.checkpoint import load_run_checkpoint
from common.engine.device_policy import resolve_policy
from common.engine.distributed import DistInfo, barrier
from common.engine.trainer import Trainer
from common.engine.writers import console_logger
from common.errors import ConfigError, DataError, ResumeError
from common.methods.base import Distiller
from common.methods.registry import get_method
from common.models.registry import check_model_name

OWN_LOADERS = "dataloader"  # `data.name` of a run trained on the caller's loaders (fit())
META_KEYS = ("git_commit", "created")  # what config.yaml records besides the recipe
RUN_FILES = (
    "last.pt", "best.pt", "final.pt", "summary.json", "metrics.jsonl", "metrics.csv", "config.yaml",
)  # fmt: skip


@dataclass(frozen=True)
class Wording:
    """How a front end names its options in the run folder's messages."""

    taken: str  # what to do with a folder that holds a run; `{dir}` is the folder
    choose: str  # the option that names another folder


COMMAND_LINE = Wording(
    "continue it with --resume {dir}, or choose another folder with --out", "--out"
)
PYTHON = Wording(
    "pass resume=True to continue it, overwrite=True to start it again, or another out= folder",
    "out=",
)


@dataclass
class RunPlan:
    """A checked run, before anything is written: its config, folder and what it continues."""

    cfg: RunConfig
    run_dir: Path
    wording: Wording
    checkpoint: dict[str, Any] | None = None  # the last.pt a resumed run continues from
    overwrite: bool = False  # delete the folder's run files first
    meta: dict[str, Any] = field(default_factory=dict)  # a resumed run's saved git_commit, ...
    data_from_config: bool = True  # False: the caller's loaders, which `cfg.data` does not describe


def git_commit() -> str:
    """The checkout's commit (with '+dirty' when it has local changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_settings(cfg: RunConfig, world_size: int, names: bool = True) -> None:
    """What can be refused before any data is read: the split of the global batch over the
    processes and (`names`: a recipe's run) the data set's and the models' names."""
    if names:
        check_name(cfg.data.name)
        if cfg.student.name:
            check_model_name(cfg.student.name, "student.name")
        if cfg.teacher.name and get_method(cfg.method.name).needs_teacher:
            check_model_name(cfg.teacher.name, "teacher.name")
    try:
        per_rank_batch(cfg.train.batch_size, world_size)
    except ValueError as err:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size}: {err}") from None


def resolve_recipe(
    recipe: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    default_method: str = "vanilla",
    world_size: int = 1,
) -> RunConfig:
    """The recipe with its overrides, validated and checked for `world_size` processes."""
    cfg = load_recipe(recipe, overrides, default_method)
    check_settings(cfg, world_size)
    return cfg


def check_new_folder(run_dir: Path, wording: Wording, overwrite: bool = False) -> None:
    """Refuse a run folder that is a file, or (unless `overwrite`) one holding a run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(
            f"the run folder {run_dir} is a file; choose a folder with {wording.choose}"
        )
    if (run_dir / "last.pt").exists() and not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run (last.pt); {wording.taken.format(dir=run_dir)} "
            "(nothing was overwritten)"
        )


def plan_new(
    cfg: RunConfig,
    run_dir: Path,
    wording: Wording,
    world_size: int,
    *,
    names: bool = True,
    overwrite: bool = False,
    data_from_config: bool = True,
) -> RunPlan:
    """A new run of `cfg` in `run_dir` (`overwrite`: in place of the run there); `names=False`
    for data and models given as objects (fit())."""
    check_new_folder(run_dir, wording, overwrite)
    check_settings(cfg, world_size, names)
    return RunPlan(cfg, run_dir, wording, overwrite=overwrite, data_from_config=data_from_config)


def check_resume_folder(run_dir: Path) -> None:
    """Refuse a `--resume` target that is not a folder."""
    if not run_dir.is_dir():
        raise ResumeError(f"cannot resume: {run_dir} is not a directory")


def plan_resume(
    cfg: RunConfig,
    run_dir: Path,
    wording: Wording,
    world_size: int,
    *,
    names: bool = True,
    data_from_config: bool = True,
) -> RunPlan:
    """Continue the run in `run_dir` from its last.pt, configured as `cfg`."""
    check_resume_folder(run_dir)
    check_settings(cfg, world_size, names)
    checkpoint = load_run_checkpoint(run_dir / "last.pt")
    check_resume_state(run_dir, checkpoint, cfg)
    meta = saved_meta(run_dir)
    return RunPlan(cfg, run_dir, wording, checkpoint, meta=meta, data_from_config=data_from_config)


def check_resume_state(run_dir: Path, ckpt: Any, cfg: RunConfig) -> None:
    """Refuse a last.pt that is not a run checkpoint, or a run with no epoch left to train."""
    state = ckpt.get("state") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "method" not in ckpt or "epoch" not in state:
        raise ResumeError(
            f"cannot resume: {run_dir / 'last.pt'} is not a run checkpoint of this project "
            "(no training state in it)"
        )
    done = int(state["epoch"])  # epochs completed (a SIGTERM'd run is inside the next one)
    if done >= cfg.train.epochs:
        raise ResumeError(
            f"cannot resume {run_dir}: it has already trained {done} epoch(s) and "
            f"train.epochs={cfg.train.epochs}; to train it longer pass train.epochs=N "
            f"with N > {done}"
        )


def saved_tree(run_dir: Path) -> dict[str, Any]:
    """The plain contents of the run's config.yaml ({} when it has none)."""
    path = run_dir / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def saved_meta(run_dir: Path) -> dict[str, Any]:
    """The commit and creation time the run's config.yaml was written with."""
    saved = saved_tree(run_dir)
    return {key: saved[key] for key in META_KEYS if key in saved}


def config_record(plan: RunPlan) -> dict[str, Any]:
    """What config.yaml says of the run: the resolved recipe; of data only what was used."""
    record = config_to_dict(plan.cfg)
    if not plan.data_from_config:
        record["data"] = {"name": plan.cfg.data.name}
    return record


def write_config(run_dir: Path, meta: dict[str, Any], record: dict[str, Any]) -> None:
    """config.yaml: the meta keys on top, then the record."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**meta, **record}, sort_keys=False))


def write_run_folder(plan: RunPlan, device: torch.device, world_size: int) -> None:
    """Create the folder (emptied of a run's files on overwrite) and write its config.yaml: a new
    run's with this commit, a resumed run's when its config changed (the saved meta kept)."""
    run_dir = plan.run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot create the run folder {run_dir} ({err.strerror or err}); "
            f"choose another with {plan.wording.choose}"
        ) from None
    if plan.overwrite:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    record = config_record(plan)
    if plan.checkpoint is None:
        meta = {"git_commit": git_commit(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_config(run_dir, meta, record)
        console_logger().info(
            f"run {plan.cfg.name} -> {run_dir}  ({device}, {world_size} process(es))"
        )
    elif {k: v for k, v in saved_tree(run_dir).items() if k not in META_KEYS} != record:
        write_config(run_dir, plan.meta, record)  # what the run is now: train.epochs=N, ...


def check_batches(data: DataBundle, batch_size: int) -> None:
    """Refuse training data that gives no batch (an epoch would have no step)."""
    if len(data.train) == 0:  # type: ignore[arg-type]
        raise DataError(
            f"the training set ({data.spec.train_size} images) gives no batch of {batch_size}: "
            "lower the batch size or train on more images"
        )


def build_run(
    plan: RunPlan,
    info: DistInfo,
    device: torch.device,
    distiller: Distiller | None = None,
    data: DataBundle | None = None,
) -> Trainer:
    """The `Trainer` of `plan` on `device`, its folder written; `data` and `distiller` are built
    from the config unless given. Everything that can refuse does so before the folder is
    touched."""
    cfg = plan.cfg
    policy = resolve_policy(cfg.train, device)
    seed_everything(cfg.train.seed)
    if data is None:
        data = build_data(
            cfg.data,
            batch_size=cfg.train.batch_size,
            device=device,
            seed=cfg.train.seed,
            rank=info.rank,
            world_size=info.world_size,
        )
    check_batches(data, cfg.train.batch_size)
    if distiller is None:
        distiller = build_distiller(cfg, data.spec)
    trainer = Trainer(cfg, distiller, data, plan.run_dir, info, device, policy)
    if info.is_main:
        write_run_folder(plan, device, info.world_size)
    barrier()
    return trainer


__all__ = [
    "COMMAND_LINE",
    "PYTHON",
    "RunPlan",
    "Wording",
    "build_run",
    "check_settings",
    "git_commit",
    "plan_new",
    "plan_resume",
    "resolve_recipe",
]
