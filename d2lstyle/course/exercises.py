"""Student versions of the notebooks: solutions cut out, outputs cleared.

A coding exercise marks its solution the way nbgrader does::

    def gram_by_hand(X):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

``python -m d2lstyle.course.exercises student SRC_DIR OUT_DIR`` writes, for every notebook in SRC_DIR,
a copy in OUT_DIR where each such region is replaced by ``# YOUR CODE HERE`` and
``raise NotImplementedError()`` at the indentation of the markers (as nbgrader's
``ClearSolutions`` does; in a markdown cell the region becomes ``YOUR ANSWER HERE``), every output
and execution count is cleared, and everything else is left as it is. Nothing is written unless
every notebook is valid and its markers balanced; existing files are kept unless ``--force``.
``python -m d2lstyle.course.exercises list SRC_DIR`` lists the exercises (notebook, cell, function,
check, points).

The cells carry nbgrader's metadata, and the student version treats them as nbgrader's
``generate_assignment`` does (``ClearSolutions``, ``LockCells``, ``ClearOutput``): each exercise is
a solution cell (``solution: true``) followed by a read-only test cell (``grade: true``,
``locked: true``, ``points``) that calls the check; a solution cell without markers is replaced
whole by the stub; test and other locked cells become non-editable and non-deletable, solution
cells non-deletable; the open-ended exercises' model answers sit in markdown solution cells
(``solution`` and ``grade`` with 0 points: nbgrader's "manually graded answer"). Only
:mod:`nbformat` is needed; nbgrader's own ``generate_assignment`` gives the same sources and lock
flags (``tests/test_exercises.py`` compares them where nbgrader is installed).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)


class ExerciseError(ValueError):
    """A problem with the command's input; the message names the notebook and cell."""


def strip_solutions(source: str, stub: tuple[str, ...] = CODE_STUB, where: str = "cell") -> tuple[str, int]:
    """``source`` with every solution region replaced by ``stub`` at the markers' indentation.

    Returns ``(new_source, number_of_regions)``. Raises :class:`ExerciseError` naming ``where``
    for a marker without its partner, nested markers, or a marker that shares its line with code.
    """
    lines, regions, begin_line = [], 0, None
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        is_begin, is_end = stripped == BEGIN, stripped == END
        if not (is_begin or is_end) and ("BEGIN SOLUTION" in line or "END SOLUTION" in line):
            raise ExerciseError(f"{where}, line {number}: a solution marker must be alone on its "
                                f"line, as {BEGIN!r} or {END!r}")
        if is_begin:
            if begin_line is not None:
                raise ExerciseError(f"{where}, line {number}: {BEGIN!r} inside the region opened "
                                    f"at line {begin_line}")
            begin_line = number
            indent = line[:len(line) - len(line.lstrip())]
            lines += [indent + text for text in stub]
        elif is_end:
            if begin_line is None:
                raise ExerciseError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it")
            begin_line = None
            regions += 1
        elif begin_line is None:
            lines.append(line)
    if begin_line is not None:
        raise ExerciseError(f"{where}, line {begin_line}: {BEGIN!r} without a matching {END!r}")
    return "\n".join(lines), regions


def _grading(cell) -> dict:
    """The cell's nbgrader metadata (empty for an ordinary cell)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(_grading(cell).get("solution"))


def is_test(cell) -> bool:
    """A read-only test cell: graded by running it, not written by the learner."""
    meta = _grading(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def lock(cell) -> None:
    """Lock flags as nbgrader's ``LockCells`` sets them (JupyterLab honours both)."""
    meta = _grading(cell)
    if meta.get("solution"):
        cell.metadata["deletable"] = False
    elif meta.get("grade") or meta.get("locked"):
        cell.metadata["deletable"] = False
        cell.metadata["editable"] = False


def student_notebook(nb, name: str = "notebook"):
    """A student copy of the nbformat notebook ``nb`` (not modified) and its number of regions."""
    import copy

    nb = copy.deepcopy(nb)
    regions = 0
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}" + (f" (id {cell['id']})" if cell.get("id") else "")
        if cell.cell_type in ("code", "markdown"):
            stub = CODE_STUB if cell.cell_type == "code" else MARKDOWN_STUB
            cell.source, found = strip_solutions(cell.source, stub, where)
            if is_solution(cell) and not found:  # a solution cell without markers: all of it goes
                cell.source = "\n".join(stub)
                found = 1
            regions += found
        lock(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb, regions


def exercises(nb, name: str = "notebook") -> list[dict]:
    """The coding exercises of a notebook: one dict per code cell with a solution region, with the
    function it defines, the test cell after it (``test_cell``, ``None`` where there is none), the
    check that calls and its ``points``."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        _, regions = strip_solutions(cell.source, where=f"{name}, cell {index}")
        defined = re.findall(r"^def\s+(\w+)", cell.source, re.M)
        after = nb.cells[index + 1] if index + 1 < len(nb.cells) else None
        test = index + 1 if after is not None and is_test(after) else None
        checks = re.findall(r"checks\.(check_\w+)\(\s*(\w+)", nb.cells[test].source if test else "")
        found.append({"notebook": name, "cell": index, "regions": regions,
                      "function": checks[0][1] if checks else (defined[0] if defined else None),
                      "test_cell": test, "check": checks[0][0] if checks else None,
                      "points": _grading(nb.cells[test]).get("points") if test else None})
    return found


def _notebooks(src: Path) -> list[Path]:
    return sorted(path for path in src.glob("*.ipynb") if path.is_file())


def _read(path: Path):
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except (OSError, ValueError, nbformat.ValidationError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExerciseError(f"{path}: not a valid notebook ({first})") from None
    return nb


def _check_dirs(src: Path, out: Path) -> None:
    if not src.exists():
        raise ExerciseError(f"{src}: no such folder")
    if not src.is_dir():
        raise ExerciseError(f"{src}: not a folder")
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise ExerciseError(f"{out}: the output folder must lie outside the source folder {src}, "
                            "or the student versions would mix with the solutions")
    if out.exists() and not out.is_dir():
        raise ExerciseError(f"{out}: exists and is not a folder")


def write_student(src, out, force: bool = False) -> list[tuple[Path, int]]:
    """Write the student version of every notebook in ``src`` into ``out``.

    Every notebook is read, stripped and validated before anything is written; each file is
    written under a temporary name and renamed, so a failure leaves no half-written notebook.
    Returns ``[(written path, number of solution regions), ...]``.
    """
    import nbformat

    src, out = Path(src), Path(out)
    _check_dirs(src, out)
    paths = _notebooks(src)
    if not paths:
        raise ExerciseError(f"{src}: no notebooks (*.ipynb) in this folder")
    students = []
    for path in paths:
        nb, regions = student_notebook(_read(path), path.name)
        nbformat.validate(nb)
        students.append((out / path.name, nb, regions))
    existing = [str(target) for target, _, _ in students if target.exists()]
    if existing and not force:
        raise ExerciseError(f"{existing[0]} exists" + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
                            + ": refusing to overwrite; use --force to replace")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for target, nb, regions in students:
        handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                nbformat.write(nb, file)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append((target, regions))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m d2lstyle.course.exercises",
                                     description="Student versions of notebooks with nbgrader-style solution markers.")
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write student versions: solutions and outputs removed")
    student.add_argument("src", type=Path, metavar="SRC_DIR", help="folder of solution notebooks")
    student.add_argument("out", type=Path, metavar="OUT_DIR", help="folder for the student notebooks")
    student.add_argument("--force", action="store_true", help="overwrite notebooks already in OUT_DIR")
    listing = commands.add_parser("list", help="list the exercises: notebook, cell, function, check, points")
    listing.add_argument("src", type=Path, metavar="SRC_DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            written = write_student(args.src, args.out, force=args.force)
            total = sum(regions for _, regions in written)
            for target, regions in written:
                print(f"{target}: {regions} solution region{'s' if regions != 1 else ''} replaced")
            print(f"wrote {len(written)} student notebooks with {total} exercises to {args.out}")
        else:
            if not args.src.is_dir():
                raise ExerciseError(f"{args.src}: no such folder")
            rows = [row for path in _notebooks(args.src) for row in exercises(_read(path), path.name)]
            for row in rows:
                points = (f"{row['points']:g} point{'s' if row['points'] != 1 else ''}" if row["points"] is not None
                          else "no test cell")
                print(f"{row['notebook']}  cell {row['cell']:>2}  {row['function'] or '-'}  "
                      f"{row['check'] or '(no check)'}  {points}")
            total = sum(row["points"] or 0 for row in rows)
            print(f"{len(rows)} exercises, {total:g} points")
    except ExerciseError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
