"""Train a teacher (or any network) with plain cross-entropy from a recipe.

    python tools/train_teacher.py --recipe tools/recipes/teachers/cifar100/resnet32x4.yaml
    torchrun --nproc_per_node 4 tools/train_teacher.py --recipe ... train.batch_size=256

The trained network is the recipe's `student.name`; its final.pt (the last epoch, which the
papers distil from) loads as `teacher.checkpoint`.
"""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="tools/train_teacher.py", default_method="vanilla"))
