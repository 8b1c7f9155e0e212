"""``python -m d2lstyle.benchmark``: see :mod:`d2lstyle.benchmark.harness`."""

import sys

from .harness import main

sys.exit(main())
