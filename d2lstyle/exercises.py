"""Old name of :mod:`d2lstyle.course.exercises` (``python -m d2lstyle.exercises`` included), kept
for the 0.2 release only (removed in 0.3)."""

import sys
import warnings

from .course.exercises import *  # noqa: F401,F403
from .course.exercises import main

warnings.warn("d2lstyle.exercises is now d2lstyle.course.exercises; the old name goes in 0.3",
              DeprecationWarning, stacklevel=2)

if __name__ == "__main__":
    sys.exit(main())
