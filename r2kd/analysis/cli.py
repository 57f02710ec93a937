"""What the two analysis tools share: common options, run labels, one-line errors."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from common.cli import report
from common.config import RunConfig
from common.engine.distributed import check_device
from common.errors import UserError
from r2kd.analysis.runs import CHECKPOINTS, AnalysisError


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--labels, --checkpoint, --device, --out, --set, --teacher-name, --teacher-checkpoint."""
    parser.add_argument("--labels", nargs="+", help="a name per run (default: method names)")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default="best", help="student file")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--out", help="output folder (default: <first run>/analysis)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the runs' config, e.g. --set data.root=/data --set data.num_workers=2",
    )
    parser.add_argument("--teacher-name", default="", help="teacher architecture (default: run's)")
    parser.add_argument("--teacher-checkpoint", default="", help="teacher weights (default: run's)")


def run_labels(configs: Sequence[RunConfig], dirs: Sequence[Path], given: Sequence[str] | None):
    """The label of each run: `given`, else its method name, else (duplicates) its folder."""
    if given:
        if len(given) != len(configs):
            raise AnalysisError(f"--labels needs {len(configs)} names, got {len(given)}")
        labels = list(given)
    else:
        labels = [cfg.method.name for cfg in configs]
        if len(set(labels)) < len(labels):
            labels = [f"{cfg.method.name}:{d.name}" for cfg, d in zip(configs, dirs)]
    if len(set(labels)) < len(labels) or "teacher" in labels:
        raise AnalysisError(f"run labels must be distinct and not 'teacher', got {labels}")
    return labels


def file_safe(label: str) -> str:
    """`label` with anything but letters, digits, '.', '-' and '_' replaced by '_'."""
    return re.sub(r"[^\w.-]+", "_", label)


def output_folder(out: str | Path | None, default: Path) -> Path:
    """`out` (or `default`), created; one line when it is a file or cannot be created."""
    path = Path(out) if out else default
    if path.exists() and not path.is_dir():
        raise AnalysisError(f"--out {path} is a file; give a folder for the outputs")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AnalysisError(
            f"cannot create the output folder {path} ({err.strerror or err}); "
            "choose another with --out"
        ) from None
    return path


def guarded(
    body: Callable[[argparse.Namespace], object],
    args: argparse.Namespace | Callable[[], argparse.Namespace],
) -> int:
    """Run `body(args)`; a user's mistake becomes one `error:` line and exit code 2.

    `args` may be the parsing function itself, so that a malformed command line (the tools'
    parsers are `common.cli.ArgumentParser`s) is reported the same way; `--device` is checked
    against this machine before anything is read.
    """
    try:
        if callable(args):
            args = args()
        if getattr(args, "device", None):
            check_device(args.device)
        body(args)
    except UserError as err:
        return report(err)
    return 0
