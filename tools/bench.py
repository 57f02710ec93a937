"""Speed and memory benchmarks (`make bench`); the figures in the READMEs come from here.

    python tools/bench.py                       # every section, on CUDA when present
    python tools/bench.py --sections kd_step --steps 20 --device cpu --json out.json
    python tools/bench.py --list                # the sections and what each measures

The shared sections (`data`, `kd_step`, ...) live in `common/bench/`; each method package
registers its own (`r2kd_step`, `slkd_step`, `cqkd_step`, ...) as `kdzoo.bench` entry points.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from common.bench import get_section, section_names
from common.bench.sections import section_doc
from common.cli import ArgumentParser, report
from common.engine.distributed import check_device
from common.errors import ConfigError, UserError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; a malformed one raises ConfigError (one `error:` line)."""
    parser = ArgumentParser(prog="tools/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="", help="comma-separated (default: all)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return args


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
    results = {}
    for name, section in sections.items():
        print(f"== {name} ==", flush=True)
        results[name] = section(device, args.steps)
        for key, value in results[name].items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"  {key}: {shown}")
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
