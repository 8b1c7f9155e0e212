"""d2lstyle.course.exercises: student versions strip every solution and output; bad input fails cleanly;
the series has its checked exercises (solution cell, then a read-only test cell with points) and model
answers to its open ones; nbgrader's own generate_assignment makes the same student versions.
scripts/grade_check.py runs nbgrader's autograde on the whole series (not part of the suite)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from d2lstyle.course import checks, exercises  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SERIES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


class Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args):
    """``python -m d2lstyle.course.exercises ARGS``, in this process (a subprocess costs seconds to import
    torch); test_command_line runs the real command once."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = exercises.main([str(a) for a in args])
        except SystemExit as exit:
            code = exit.code
    return Done(code, out.getvalue(), err.getvalue())


def test_command_line(tmp_path):
    """The real command: a bad folder gives one line on stderr, exit status 1, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "d2lstyle.course.exercises", "student", str(tmp_path / "nope"),
                           str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert done.stderr == f"python -m d2lstyle.course.exercises: error: {tmp_path / 'nope'}: no such folder\n"


def tiny_notebook(*sources, outputs=True):
    nb = nbformat.v4.new_notebook()
    for source in sources:
        cell = nbformat.v4.new_code_cell(source)
        if outputs:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
            cell.execution_count = 1
        nb.cells.append(cell)
    return nb


def write(folder, name, nb):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)


# --------------------------------------------------------------------------- stripping

def test_region_replaced_at_the_markers_indentation():
    source = ("def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n"
              "    ### END SOLUTION\n\n\ncheck(f)")
    stripped, regions = exercises.strip_solutions(source)
    assert regions == 1
    assert stripped == ("def f(x):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
                        "\n\ncheck(f)")


def test_two_regions_and_markdown():
    stripped, regions = exercises.strip_solutions(
        "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n  ### BEGIN SOLUTION\n  c = 3\n  ### END SOLUTION")
    assert regions == 2
    assert stripped == ("# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\n"
                        "  # YOUR CODE HERE\n  raise NotImplementedError()")
    text, n = exercises.strip_solutions("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
                                        exercises.MARKDOWN_STUB)
    assert (text, n) == ("Why?\nYOUR ANSWER HERE", 1)


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", r"nb, cell 3, line 1: '### BEGIN SOLUTION' without a matching '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", r"nb, cell 3, line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", r"line 2: '### BEGIN SOLUTION' inside the "
                                                                 r"region opened at line 1"),
    ("x = 1  ### BEGIN SOLUTION", r"line 1: a solution marker must be alone on its line"),
])
def test_unbalanced_markers(source, message):
    with pytest.raises(exercises.ExerciseError, match=message):
        exercises.strip_solutions(source, where="nb, cell 3")


def test_student_version_of_the_series(tmp_path):
    """Every solution region and every output is gone; test cells are locked as nbgrader locks
    them; every other cell is unchanged."""
    out = tmp_path / "student"
    done = run("student", NOTEBOOKS, out)
    assert done.returncode == 0, done.stderr
    total = 0
    for path in SERIES:
        original = nbformat.read(path, as_version=4)
        student = nbformat.read(out / path.name, as_version=4)
        nbformat.validate(student)
        assert len(student.cells) == len(original.cells)
        for before, after in zip(original.cells, student.cells):
            assert after.cell_type == before.cell_type
            locks = {key: after.metadata.pop(key) for key in ("deletable", "editable") if key in after.metadata}
            assert after.metadata == before.metadata
            if exercises.is_test(before):
                assert locks == {"deletable": False, "editable": False}
            elif exercises.is_solution(before):
                assert locks == {"deletable": False}
            else:
                assert locks == {}
            if exercises.BEGIN in before.source:
                assert "SOLUTION" not in after.source
                stub = "raise NotImplementedError()" if before.cell_type == "code" else "YOUR ANSWER HERE"
                assert after.source.count(stub) == before.source.count(exercises.BEGIN)
                total += before.source.count(exercises.BEGIN)
            else:
                assert after.source == before.source
            if after.cell_type == "code":
                assert after.outputs == [] and after.execution_count is None
    assert f"wrote {len(SERIES)} student notebooks with {total} exercises" in done.stdout
    # The solution notebooks themselves were not touched.
    assert all(nbformat.read(path, as_version=4) for path in SERIES)


def test_solution_cell_without_markers_is_replaced_whole():
    nb = tiny_notebook("x = 42", "print(x)")
    nb.cells[0].metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "a",
                                        "schema_version": 3, "task": False}
    student, regions = exercises.student_notebook(nb)
    assert regions == 1 and student.cells[0].source == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert student.cells[1].source == "print(x)" and student.cells[0].metadata["deletable"] is False


def test_at_least_ten_checked_exercises_across_the_series():
    """Each coding exercise: a solution cell (solution, not graded, not locked), then a read-only
    test cell with points that calls its check on the function the solution cell defines."""
    found = [row for path in SERIES for row in exercises.exercises(nbformat.read(path, as_version=4), path.name)]
    assert len(found) >= 10, found
    for row in found:
        where = f"{row['notebook']} cell {row['cell']}"
        assert row["check"] and row["function"], f"{where} is not followed by a test cell that calls a check"
        assert row["regions"] == 1
        assert hasattr(checks, row["check"]), row["check"]
        cells = nbformat.read(NOTEBOOKS / row["notebook"], as_version=4).cells
        solution, test = cells[row["cell"]].metadata["nbgrader"], cells[row["test_cell"]].metadata["nbgrader"]
        assert (solution["solution"], solution["grade"], solution["locked"]) == (True, False, False), where
        assert (test["solution"], test["grade"], test["locked"]) == (False, True, True), where
        assert test["points"] > 0 and test["grade_id"] != solution["grade_id"], where
        assert f"def {row['function']}(" in cells[row["cell"]].source, where
    assert {row["notebook"][:2] for row in found} == {"01", "02", "03", "04", "05"}
    assert any(row["check"] == "check_train_loop" for row in found), "notebook 05's loop exercise"
    done = run("list", NOTEBOOKS)
    points = sum(row["points"] for row in found)
    assert done.returncode == 0 and done.stdout.strip().endswith(f"{len(found)} exercises, {points:g} points")


def test_every_check_call_is_in_a_test_cell():
    """No check is called from a cell the learner edits: the autograder counts test cells only."""
    for path in SERIES:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if exercises.is_solution(cell):
                assert "checks.check_" not in cell.source, f"{path.name} cell {index}"


@pytest.mark.parametrize("path", SERIES, ids=[path.stem for path in SERIES])
def test_open_exercises_have_model_answers(path):
    """Right after the Exercises list: one markdown answer cell, its model answers between solution
    markers, numbered as the exercises are, marked as nbgrader's manually graded answer (0 points,
    so that the autograded points are the coding exercises')."""
    cells = nbformat.read(path, as_version=4).cells
    index = next(i for i, cell in enumerate(cells) if cell.cell_type == "markdown"
                 and cell.source.startswith("## Exercises"))
    asked = re.findall(r"^(\d+)\. ", cells[index].source, re.M)
    answers = cells[index + 1]
    assert answers.cell_type == "markdown" and exercises.BEGIN in answers.source
    meta = answers.metadata["nbgrader"]
    assert (meta["solution"], meta["grade"], meta["points"]) == (True, True, 0)
    region = answers.source.split(exercises.BEGIN)[1].split(exercises.END)[0]
    answered = re.findall(r"^(\d+)\. ", region, re.M)
    assert answered == asked and len(asked) >= 5, (asked, answered)


def test_student_notebook_stops_at_its_first_exercise(tmp_path, monkeypatch):
    """The student 02 runs in smoke mode up to its first test cell and stops there: the solution
    cell defines a function that is not written yet, and its test cell says so."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    name = "02_content_loss.ipynb"
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(NOTEBOOKS / name, src / name)
    assert run("student", src, tmp_path / "out").returncode == 0
    nb = nbformat.read(tmp_path / "out" / name, as_version=4)
    first = next(i for i, cell in enumerate(nb.cells) if exercises.is_test(cell))
    assert "raise NotImplementedError()" in nb.cells[first - 1].source
    monkeypatch.setenv("D2LSTYLE_SMOKE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    with pytest.raises(CellExecutionError):
        client.execute()
    ran = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.execution_count]
    assert ran and ran[-1] == first
    error = nb.cells[first].outputs[-1]
    assert error["ename"] == "NotImplementedError"
    assert error["evalue"].startswith("book_content_loss is not written yet")


# --------------------------------------------------------------------------- bad input

def test_bad_input_one_line_errors(tmp_path):
    src = tmp_path / "src"
    write(src, "a.ipynb", tiny_notebook("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    cases = [
        (("student", tmp_path / "missing", tmp_path / "o"), r"missing: no such folder"),
        (("student", src / "a.ipynb", tmp_path / "o"), r"a.ipynb: not a folder"),
        (("student", src, src), r"must lie outside the source folder"),
        (("student", src, src / "student"), r"must lie outside the source folder"),
    ]
    (tmp_path / "empty2").mkdir()
    cases.append((("student", tmp_path / "empty2", tmp_path / "o"), r"no notebooks \(\*.ipynb\)"))
    for args, message in cases:
        done = run(*args)
        assert done.returncode == 1, (args, done.stdout)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert __import__("re").search(message, done.stderr), (message, done.stderr)
    assert not (tmp_path / "o").exists() and not (src / "student").exists()


def test_unbalanced_notebook_writes_nothing(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "a_good.ipynb", tiny_notebook("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    write(src, "b_bad.ipynb", tiny_notebook("print(1)", "def f():\n    ### BEGIN SOLUTION\n    return 1"))
    done = run("student", src, out)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "b_bad.ipynb, cell 1" in done.stderr and "line 2: '### BEGIN SOLUTION' without a matching" in done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_invalid_notebook_named(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.ipynb").write_text("{not json")
    done = run("student", src, tmp_path / "out")
    assert done.returncode == 1 and "broken.ipynb: not a valid notebook" in done.stderr
    assert "Traceback" not in done.stderr


def test_refuses_to_overwrite_without_force(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "a.ipynb", tiny_notebook("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    out.mkdir()
    (out / "a.ipynb").write_text("mine")
    done = run("student", src, out)
    assert done.returncode == 1 and "a.ipynb exists: refusing to overwrite; use --force" in done.stderr
    assert (out / "a.ipynb").read_text() == "mine"
    assert [p.name for p in out.iterdir()] == ["a.ipynb"]  # no temporary file left behind
    done = run("student", src, out, "--force")
    assert done.returncode == 0, done.stderr
    assert "".join(json.loads((out / "a.ipynb").read_text())["cells"][0]["source"]) == (
        "# YOUR CODE HERE\nraise NotImplementedError()")


def test_usage_error_exits_non_zero():
    done = run("student")
    assert done.returncode == 2 and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- nbgrader

def nbgrader_command():
    """How to run nbgrader here: this Python's, else $D2LSTYLE_NBGRADER or `nbgrader` on PATH (it
    may live in a virtual environment of its own, since it brings its own Jupyter extensions)."""
    try:
        import nbgrader  # noqa: F401
        return [sys.executable, "-m", "nbgrader"]
    except ImportError:
        pass
    found = os.environ.get("D2LSTYLE_NBGRADER") or shutil.which("nbgrader")
    if not found:
        pytest.skip("nbgrader is not installed (pip install nbgrader, or set D2LSTYLE_NBGRADER)")
    return [found]


def test_nbgrader_generate_assignment_reads_the_same_markers(tmp_path):
    """Where nbgrader is installed, its own generate_assignment accepts every notebook of the series
    (its metadata validator included) and makes the same student versions as ours: the same sources
    (code and markdown solution regions), no outputs, the same lock flags."""
    command = nbgrader_command()
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    for path in SERIES:
        shutil.copy(path, course / "source" / "ps1" / path.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = r'%s'\nc.CourseDirectory.course_id = 'd2lstyle'\n" % course)
    # nbgrader runs `alembic` from its own environment's bin folder: put that first on PATH.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(command[0]).parent), os.environ["PATH"]]))
    done = subprocess.run(command + ["generate_assignment", "ps1", "--force",
                                     "--CourseDirectory.db_url=sqlite:///" + str(tmp_path / "gradebook.db")],
                          capture_output=True, text=True, cwd=course, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in SERIES:
        theirs = nbformat.read(course / "release" / "ps1" / path.name, as_version=4)
        ours, regions = exercises.student_notebook(nbformat.read(path, as_version=4))
        assert regions >= 1 and len(theirs.cells) == len(ours.cells)
        for mine, other in zip(ours.cells, theirs.cells):
            assert other.source == mine.source, path.name
            for key in ("deletable", "editable"):
                assert other.metadata.get(key) == mine.metadata.get(key), (path.name, key, mine.source[:60])
            if other.cell_type == "code":
                assert other.outputs == []


def test_old_names_still_work_for_one_release():
    import importlib
    import warnings

    for old, new in (("d2lstyle.checks", checks), ("d2lstyle.exercises", exercises)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.reload(importlib.import_module(old))
        assert any(issubclass(w.category, DeprecationWarning) and old in str(w.message) for w in caught)
        assert module.__dict__.keys() >= {name for name in vars(new) if name.startswith(("check_", "write_student"))}
    done = subprocess.run([sys.executable, "-m", "d2lstyle.exercises", "list", str(ROOT / "notebooks")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "check_gram" in done.stdout, done.stderr
