"""Train a shared baseline (vanilla, KD, DKD, ...) from a recipe.

python tools/train_baseline.py --recipe tools/recipes/kd/cifar100/resnet32x4_resnet8x4.yaml
"""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="tools/train_baseline.py", default_method="kd"))
