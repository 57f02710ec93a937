"""Compare runs in one markdown table (optionally also CSV and a top-1 plot).

    python tools/compare.py RUN_DIR [RUN_DIR ...] [--csv FILE] [--plot FILE.png]
                            [--metric top1|top1_best]

The logic lives in `common.report` (see `common.report.compare` for what the table shows).
"""

import sys

from common.report.compare import main

if __name__ == "__main__":
    sys.exit(main())
