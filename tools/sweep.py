"""Run a sweep file (recipes x seeds x overrides) on local workers or SLURM; see
common/sweep/cli.py and README.md, "Sweeps".

    python tools/sweep.py tools/studies/cifar10/cpu.yaml --workers 2
"""

import sys

from common.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
