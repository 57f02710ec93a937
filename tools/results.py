"""The results page: tables (markdown, README blocks) and one HTML page from folders of runs.

    python tools/results.py RUN_DIR [RUN_DIR ...] [--expect FILE.json] [--markdown FILE]
                            [--readme FILE --marker NAME] [--html FILE] [--figure FILE.png]

The logic lives in `common.report` (see `common.report.results` for what the table shows).
"""

import sys

from common.report.results import main

if __name__ == "__main__":
    sys.exit(main())
