"""Every params/FLOPs row of the four papers beside our models' counts (``actionrec tables``).

    python benchmarks/paper_tables.py [--source 'GST Table 2'] [--markdown FILE]

Counts are taken on the meta device (shapes only), so the whole table takes seconds.
"""

from __future__ import annotations

import sys

from actionrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["tables", *sys.argv[1:]]))
