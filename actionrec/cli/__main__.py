"""``python -m actionrec.cli``."""

import sys

from . import main

sys.exit(main())
