"""Entry point: `python -m slkd.train --recipe slkd/recipes/cifar100/<teacher>_<student>.yaml`.

Also `--resume DIR` and `key.sub=value` overrides (see `common.cli`). SLKD* (sequential) is two
runs: a `mode: sequential_sl_teachers` recipe, then a `mode: sequential_student` recipe that
reads its last.pt (slkd/README.md).
"""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m slkd.train", default_method="slkd"))
