"""``python -m actionrec`` (what ``torchrun -m actionrec`` starts)."""

import sys

from .cli import main

sys.exit(main())
