"""``python -m d2lstyle.feedforward``: see :mod:`d2lstyle.feedforward.command`."""

import sys

from .command import main

sys.exit(main())
