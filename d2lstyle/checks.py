"""Old name of :mod:`d2lstyle.course.checks`, kept for the 0.2 release only (removed in 0.3)."""

import warnings

from .course.checks import *  # noqa: F401,F403

warnings.warn("d2lstyle.checks is now d2lstyle.course.checks; the old name goes in 0.3",
              DeprecationWarning, stacklevel=2)
