"""Train with SoKD: `python -m sokd.train --recipe sokd/recipes/<dataset>/<pair>_<base>.yaml`.

The recipe names `method.name: sokd` and its `method.base` (fitnet, at, crd, reviewkd); see
sokd/README.md for the recipes of each table. Also `--resume DIR` and `key.sub=value`.
"""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m sokd.train", default_method="sokd"))
