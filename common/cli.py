"""The command line every `train.py` shares.

    python -m r2kd.train --recipe FILE [--out DIR] [key.sub=value ...]
    python -m r2kd.train --resume DIR [key.sub=value ...]

A mistake a user can make (unknown key, missing data, wrong checkpoint, NaN loss, a run folder
that already holds a run, a malformed command line) ends in one `error:` line naming the
problem and the fix, exit code 2. Everything is checked before the run folder is written: a
refused `--resume` leaves the run untouched, a refused new run creates no folder (a data file
that turns out unreadable during training is the exception: it is met only when read).

`--resume DIR` continues the run as it was configured; overrides may change only
`RESUME_SAFE_KEYS` (where the data lives, how many epochs, the device, logging), since anything
else would not be the run its last.pt belongs to.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

from common.config import RunConfig, config_to_dict, load_recipe, load_saved_config
from common.data.image_files import original_message
from common.engine.distributed import cleanup, init_distributed, world_size_from_env
from common.engine.run_builder import (
    COMMAND_LINE,
    RunPlan,
    build_run,
    check_resume_folder,
    plan_new,
    plan_resume,
)
from common.engine.trainer import TrainingInterrupted
from common.engine.writers import console_logger
from common.errors import ConfigError, ResumeError, UserError

# Keys a `--resume` may override: they change where the data is read from, how long the run
# goes on, the device or the logging, not the experiment its last.pt belongs to.
RESUME_SAFE_KEYS = (
    "train.epochs",
    "train.eval_every",
    "train.progress",
    "device",
    "out_root",
    "data.root",
    "data.cache_dir",
    "data.num_workers",
    "data.download",
    "data.val_batch_size",
    "teacher.checkpoint",
    "teacher.weights",
    "log",
    "paper",
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose command-line mistakes raise ConfigError (one `error:` line, exit 2)
    instead of printing the usage block and exiting."""

    def error(self, message: str) -> typing.NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def one_line(err: BaseException) -> str:
    """The message of `err` on one line: a worker's re-raised traceback gives its last line."""
    return " ".join(original_message(str(err), type(err).__name__).split())


def report(err: UserError, prefix: str = "error") -> int:
    """Print `prefix: <message>` on stderr, one line; return the exit code 2."""
    print(f"{prefix}: {one_line(err)}", file=sys.stderr)
    return 2


def parse_args(argv: list[str] | None, prog: str, default_method: str) -> argparse.Namespace:
    parser = ArgumentParser(
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
    if args.resume and args.out:
        parser.error(f"--out cannot be combined with --resume: the run continues in {args.resume}")
    args.default_method = default_method
    return args


def changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config trees."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(before) + [k for k in after if k not in before]
        found: list[str] = []
        for key in keys:
            found += changed_keys(before.get(key), after.get(key), f"{prefix}{key}.")
        return found
    return [] if before == after else [prefix.rstrip(".")]


def resume_safe(key: str) -> bool:
    """Whether a `--resume` may change `key` (see RESUME_SAFE_KEYS)."""
    return any(key == safe or key.startswith(safe + ".") for safe in RESUME_SAFE_KEYS)


def check_resume_overrides(run_dir: Path, saved: RunConfig, cfg: RunConfig) -> None:
    """Refuse overrides that would make the resumed run another experiment than last.pt's."""
    before, after = config_to_dict(saved), config_to_dict(cfg)
    refused = [k for k in changed_keys(before, after) if not resume_safe(k)]
    if refused:
        key = refused[0]
        old, new = _lookup(before, key), _lookup(after, key)
        more = f" (and {', '.join(refused[1:])})" if refused[1:] else ""
        raise ResumeError(
            f"cannot resume {run_dir} with {key}={new}{more}: the run was trained with "
            f"{key}={old}; drop the override, or start a new run with --recipe and --out. "
            f"A resume may change only: {', '.join(RESUME_SAFE_KEYS)}"
        )


def _lookup(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def resolve_run(args: argparse.Namespace) -> RunPlan:
    """The checked run the arguments ask for: a new one from the recipe, or the run in
    `--resume DIR` continued (its config.yaml with the overrides RESUME_SAFE_KEYS allow)."""
    world_size = world_size_from_env()
    if args.resume:
        run_dir = Path(args.resume)
        check_resume_folder(run_dir)
        if not (run_dir / "config.yaml").is_file():
            raise ResumeError(
                f"cannot resume: {run_dir} has no config.yaml, so it is not a run folder; "
                "give the folder that holds a run's config.yaml and last.pt"
            )
        cfg = load_saved_config(run_dir / "config.yaml", args.overrides)
        if args.overrides:
            check_resume_overrides(run_dir, load_saved_config(run_dir / "config.yaml"), cfg)
        return plan_resume(cfg, run_dir, COMMAND_LINE, world_size)
    cfg = load_recipe(args.recipe, args.overrides, getattr(args, "default_method", "vanilla"))
    run_dir = (
        Path(args.out) if args.out else Path(cfg.out_root) / cfg.name / f"seed{cfg.train.seed}"
    )
    return plan_new(cfg, run_dir, COMMAND_LINE, world_size)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build everything from the arguments (`common.engine.run_builder`) and train."""
    plan = resolve_run(args)
    info, device = init_distributed(plan.cfg.device)
    console_logger(info.is_main)  # methods' messages (R2KD's prune report) too
    try:
        return build_run(plan, info, device).fit(plan.checkpoint)
    finally:
        cleanup()


def main(
    argv: list[str] | None = None, prog: str = "train", default_method: str = "vanilla"
) -> int:
    """Parse, run, and turn a user's mistake into one clear line."""
    try:
        run(parse_args(argv, prog, default_method))
    except UserError as err:
        return report(err)
    except TrainingInterrupted:
        return 130
    return 0
