"""A stand-in for Colab's ``google.colab`` package, for ``make colab-check`` (scripts/colab_check.py).

Only what d2lstyle's notebooks and explorer use: that ``google.colab`` is imported when the kernel
starts (the set-up cells test ``"google.colab" in sys.modules``), ``files.upload()`` (the explorer's
advice for files too big for an upload widget) and ``output.enable_custom_widget_manager()``.
There is no browser here, so nothing is ever uploaded.
"""

from . import files, output  # noqa: F401

STANDIN = True  # Colab's real package has no such name
