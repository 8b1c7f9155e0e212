"""Course tooling, apart from the chapter's code: :mod:`~d2lstyle.course.checks` (checks of the
notebooks' coding exercises) and :mod:`~d2lstyle.course.exercises` (student versions without the
solutions: ``python -m d2lstyle.course.exercises``)."""
