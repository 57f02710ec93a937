"""Train any registered method from a recipe (the sweep's entry point; a recipe without
`method.name` trains `vanilla`):

    python -m common.train --recipe FILE [--out DIR] [key.sub=value ...]
    python -m common.train --resume DIR
"""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m common.train", default_method="vanilla"))
