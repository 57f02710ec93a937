"""The command line every `train.py` shares.

    python -m r2kd.train --recipe FILE [--out DIR] [key.sub=value ...]
    python -m r2kd.train --resume DIR [key.sub=value ...]

A mistake a user can make (unknown key, missing data, wrong checkpoint, NaN loss, a run folder
that already holds a run) ends in one `error:` line naming the problem and the fix, exit code 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common.config import RunConfig, load_recipe, load_saved_config, save_config
from common.data import build_data
from common.engine.build import build_distiller, seed_everything
from common.engine.checkpoint import load_run_checkpoint
from common.engine.distributed import barrier, cleanup, init_distributed
from common.engine.trainer import Trainer, TrainingInterrupted
from common.errors import ConfigError, ResumeError, UserError


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


def parse_args(argv: list[str] | None, prog: str, default_method: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            f"Train with a YAML recipe (a recipe without method.name trains '{default_method}')."
        ),
        epilog="Overrides: key.sub=value, e.g. train.epochs=10 data.root=/data/cifar",
    )
    parser.add_argument("--recipe", help="YAML recipe file")
    parser.add_argument("--out", help="run directory (default: runs/<recipe name>/seed<seed>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from last.pt")
    parser.add_argument("overrides", nargs="*", help="key.sub=value")
    args = parser.parse_intermixed_args(argv)  # flags may come after the overrides
    if bool(args.recipe) == bool(args.resume):
        parser.error("give exactly one of --recipe FILE or --resume DIR")
    args.default_method = default_method
    return args


def resolve_run(args: argparse.Namespace) -> tuple[RunConfig, Path, dict[str, Any] | None]:
    """The config, the run directory and (when resuming) the checkpoint to continue from."""
    if args.resume:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise ResumeError(f"cannot resume: {run_dir} is not a directory")
        cfg = load_saved_config(run_dir / "config.yaml", args.overrides)
        return cfg, run_dir, load_run_checkpoint(run_dir / "last.pt")
    cfg = load_recipe(args.recipe, args.overrides, getattr(args, "default_method", "vanilla"))
    run_dir = (
        Path(args.out) if args.out else Path(cfg.out_root) / cfg.name / f"seed{cfg.train.seed}"
    )
    if (run_dir / "last.pt").exists():
        raise ConfigError(
            f"{run_dir} already holds a run (last.pt); continue it with --resume {run_dir}, "
            "or choose another folder with --out (nothing was overwritten)"
        )
    return cfg, run_dir, None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build everything from the arguments and train."""
    cfg, run_dir, resume = resolve_run(args)
    info, device = init_distributed(cfg.device)
    try:
        seed_everything(cfg.train.seed)
        data = build_data(
            cfg.data,
            batch_size=cfg.train.batch_size,
            device=device,
            seed=cfg.train.seed,
            rank=info.rank,
            world_size=info.world_size,
        )
        distiller = build_distiller(cfg, data.spec)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if resume is None:
                meta = {"git_commit": git_commit(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
                save_config(cfg, run_dir / "config.yaml", meta)
                print(f"run {cfg.name} -> {run_dir}  ({device}, {info.world_size} process(es))")
        barrier()
        trainer = Trainer(cfg, distiller, data, run_dir, info, device)
        return trainer.fit(resume)
    finally:
        cleanup()


def main(
    argv: list[str] | None = None, prog: str = "train", default_method: str = "vanilla"
) -> int:
    """Parse, run, and turn a user's mistake into one clear line."""
    args = parse_args(argv, prog, default_method)
    try:
        run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted:
        return 130
    return 0
