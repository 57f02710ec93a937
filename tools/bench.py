"""Speed and memory benchmarks (`make bench`); the figures in the READMEs come from here.

    python tools/bench.py                       # every section, on CUDA when present
    python tools/bench.py --sections kd_step --steps 20 --device cpu --json out.json
    python tools/bench.py --list                # the sections and what each measures

Every share ("outside the networks") and ratio ("x its base") is measured fairly: the
candidates in interleaved repeats (`--repeats`, blocks of `--steps` calls), on the CPU with one
thread and timed by the thread's CPU time; each is printed as the median of the per-repeat
values with its `*_spread` [min, max].

The shared sections (`data`, `kd_step`, ...) live in `common/bench/`; each method package
registers its own (`r2kd_step`, `slkd_step`, `cqkd_step`, ...) as `kdzoo.bench` entry points.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from common.bench import get_section, section_names, timing
from common.bench.sections import section_doc
from common.cli import ArgumentParser, report
from common.engine.distributed import check_device
from common.errors import ConfigError, UserError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; a malformed one raises ConfigError (one `error:` line)."""
    parser = ArgumentParser(prog="tools/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="", help="comma-separated (default: all)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument(
        "--repeats", type=int, default=timing.DEFAULT_REPEATS,
        help="interleaved repeats of every compared measurement (median [min, max] shown)",
    )  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def shown(value: object) -> object:
    """A figure as printed: floats to 4 significant digits, a spread as [lo, hi]."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return value


def bench(args: argparse.Namespace) -> None:
    """Run the chosen sections, print their figures, write the JSON file."""
    if args.list:
        for name in section_names():
            print(f"{name:<20} {section_doc(name)}")
        return
    names = [n for n in args.sections.split(",") if n] or section_names()
    sections = {name: get_section(name) for name in names}  # an unknown name stops here
    if args.json and Path(args.json).is_dir():
        raise ConfigError(f"--json {args.json} is a folder: give a file name")
    device = check_device(args.device)
    torch.backends.cudnn.benchmark = True
    timing.DEFAULT_REPEATS = args.repeats
    results = {}
    for name, section in sections.items():
        print(f"== {name} ==", flush=True)
        results[name] = section(device, args.steps)
        for key, value in results[name].items():
            print(f"  {key}: {shown(value)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Parse and measure; a user's mistake ends in one `error:` line (exit code 2)."""
    try:
        bench(parse_args(argv))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
