"""A method's `method:` keys: key, type (choices, range), default, meaning.

    python tools/describe.py r2kd                 # a plain table
    python tools/describe.py r2kd --markdown      # the markdown table the READMEs hold
    python tools/describe.py --all [--markdown]   # every registered method
    python tools/describe.py --update [FILE ...]  # regenerate the READMEs' options blocks

The rows come from the method's `Options` dataclass (`common/config/describe.py`): meanings are
the fields' source comments. `--update` rewrites every `<!-- options:NAME -->` block of the
given files (default: `*/README.md` and `common/methods/README.md`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import ArgumentParser, report
from common.config.describe import (
    method_options,
    options_markdown,
    options_text,
    readme_paths,
    update_blocks,
)
from common.errors import ConfigError, UserError
from common.methods.registry import method_names

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; a malformed one raises ConfigError (one `error:` line)."""
    parser = ArgumentParser(prog="tools/describe.py", description=__doc__.splitlines()[0])
    parser.add_argument("method", nargs="?", help="a method name (method.name in a recipe)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--all", action="store_true", help="describe every registered method")
    parser.add_argument(
        "--update",
        nargs="*",
        metavar="FILE",
        help="regenerate the options blocks of FILE (default: every README)",
    )
    args = parser.parse_args(argv)
    given = sum((args.method is not None, args.all, args.update is not None))
    if given != 1:
        parser.error("give exactly one of METHOD, --all or --update [FILE ...]")
    return args


def describe(name: str, markdown: bool) -> str:
    """One method's table, under a heading naming its Options class."""
    cls = method_options(name)  # an unknown name stops here
    if markdown:
        return f"### {name}\n\n{options_markdown(name)}"
    return f"{name} ({cls.__module__}.{cls.__qualname__})\n{options_text(cls)}"


def update(files: list[str]) -> None:
    """Rewrite the options blocks of `files` (every README when empty); name the changed ones."""
    paths = [Path(f) for f in files] or readme_paths(REPO)
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"--update {path}: no such file")
        text = path.read_text()
        new = update_blocks(text)
        if new != text:
            path.write_text(new)
            print(f"updated {path}")


def run(args: argparse.Namespace) -> None:
    if args.update is not None:
        update(args.update)
        return
    names = method_names() if args.all else [args.method]
    print("\n".join(describe(name, args.markdown) for name in names), end="")


def main(argv: list[str] | None = None) -> int:
    """Describe; a user's mistake ends in one `error:` line (exit code 2)."""
    try:
        run(parse_args(argv))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
