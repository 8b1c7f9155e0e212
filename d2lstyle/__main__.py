"""``python -m d2lstyle``: the command line, as the ``d2lstyle`` script runs it."""

from .cli import main

raise SystemExit(main())
