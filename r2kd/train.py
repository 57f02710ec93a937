"""Train with R2KD: `python -m r2kd.train --recipe r2kd/recipes/<dataset>/<pair>.yaml [k=v ...]`.

The recipe names `method.name: r2kd`; see r2kd/README.md for the recipes of each table.
"""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m r2kd.train", default_method="r2kd"))
