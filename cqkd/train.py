"""CQKD's entry point: `python -m cqkd.train --recipe FILE [key=value ...]` (make cqkd)."""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m cqkd.train", default_method="cqkd"))
