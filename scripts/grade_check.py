"""Check the series' grading with nbgrader itself: full marks for the solutions, zero for the
untouched student versions, counted in points.

nbgrader brings its own Jupyter extensions, so it lives in a virtual environment of its own, which
must also hold what the notebooks import (README, "For instructors"). This script is not part of
``.ci/run``. It builds a throw-away course folder, then runs the instructor's commands:

    nbgrader generate_assignment style_transfer     # source/ -> release/ (student versions)
    nbgrader release_assignment style_transfer      # release/ -> the exchange
    (a student fetches and submits: "solutions" hands in the solution notebooks through the
     exchange; "untouched" hands in the released student versions as they are)
    nbgrader collect style_transfer                 # the exchange -> submitted/
    nbgrader autograde style_transfer               # run every notebook, grade the test cells
    nbgrader export                                 # grades.csv

Autograding executes every notebook, here with ``D2LSTYLE_SMOKE=1`` (tiny images, a few steps;
the checks are the same), and prints each student's points from the gradebook and grades.csv.

    python scripts/grade_check.py --nbgrader /path/to/venv/bin/nbgrader [--keep DIR]

Exit status 0 when the solutions get every point and the student versions none.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT, COURSE = "style_transfer", "d2lstyle"
CONFIG = """c = get_config()
c.CourseDirectory.root = r"{root}"
c.CourseDirectory.course_id = "{course}"
c.Exchange.root = r"{exchange}"
# Autograding runs every notebook; each cell may take minutes on a slow machine.
c.ExecutePreprocessor.timeout = 1800
c.Execute.timeout = 1800
"""


def run(command: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"grade_check: `{' '.join(command)}` failed (exit {done.returncode}):\n"
                 f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nbgrader", default=os.environ.get("D2LSTYLE_NBGRADER") or shutil.which("nbgrader"),
                        help="the nbgrader command (default: $D2LSTYLE_NBGRADER, else nbgrader on PATH)")
    parser.add_argument("--keep", type=Path, help="build the course here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not args.nbgrader:
        parser.error("nbgrader not found: pass --nbgrader PATH or set D2LSTYLE_NBGRADER")
    nbgrader = str(Path(args.nbgrader).absolute())
    base = args.keep or Path(tempfile.mkdtemp(prefix="d2lstyle-grading-"))
    base.mkdir(parents=True, exist_ok=True)
    course, exchange = base / "course", base / "exchange"
    if course.exists() or exchange.exists():
        parser.error(f"{base} already holds a course or an exchange; give an empty folder")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    exchange.mkdir()
    os.chmod(exchange, 0o777)
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        shutil.copy(path, course / "source" / ASSIGNMENT / path.name)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=course, course=COURSE, exchange=exchange))
    # nbgrader runs `alembic` from its environment's bin folder; the kernels inherit this env.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(nbgrader).parent), os.environ["PATH"]]),
               D2LSTYLE_SMOKE="1", MPLBACKEND="module://matplotlib_inline.backend_inline",
               D2LSTYLE_CACHE=str(base / "cache"))
    students = {"solutions": course / "source" / ASSIGNMENT, "untouched": course / "release" / ASSIGNMENT}

    print(run([nbgrader, "generate_assignment", ASSIGNMENT, "--force"], course, env).strip().splitlines()[-1])
    run([nbgrader, "release_assignment", ASSIGNMENT], course, env)
    # A student's side of the exchange: fetch the released notebooks, hand them in. nbgrader names
    # a submission after the operating-system user, so one machine user can play one student:
    # "solutions" goes through the exchange (fetch, submit, collect) and hands in the solution
    # notebooks; "untouched" hands in the released student versions as they are, copied straight
    # into submitted/ as `collect` would.
    home = base / "student"
    home.mkdir()
    (home / "nbgrader_config.py").write_text(
        f'c = get_config()\nc.Exchange.root = r"{exchange}"\nc.CourseDirectory.course_id = "{COURSE}"\n')
    run([nbgrader, "fetch_assignment", ASSIGNMENT], home, env)
    for path in students["solutions"].glob("*.ipynb"):
        shutil.copy(path, home / ASSIGNMENT / path.name)
    run([nbgrader, "submit", ASSIGNMENT], home, env)
    run([nbgrader, "collect", ASSIGNMENT], course, env)
    (collected,) = (course / "submitted").iterdir()  # the machine user's submission
    collected.rename(course / "submitted" / "solutions")
    shutil.copytree(course / "release" / ASSIGNMENT, course / "submitted" / "untouched" / ASSIGNMENT)
    for student in students:
        run([nbgrader, "db", "student", "add", student], course, env)
    print(run([nbgrader, "autograde", ASSIGNMENT, "--force"], course, env).strip().splitlines()[-1])
    run([nbgrader, "export"], course, env)

    with open(course / "grades.csv", newline="") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    ok = True
    print(f"{'student':<10} {'score':>6} {'max':>6}")
    for student in students:
        score, maximum = float(rows[student]["raw_score"]), float(rows[student]["max_score"])
        print(f"{student:<10} {score:>6g} {maximum:>6g}")
        ok &= score == (maximum if student == "solutions" else 0) and maximum > 0
    print(by_notebook(nbgrader, course, env))
    print(f"course folder: {course}")
    return 0 if ok else 1


def by_notebook(nbgrader: str, course: Path, env: dict) -> str:
    """Points per notebook and student, from the gradebook (nbgrader's Python API)."""
    python = Path(nbgrader).parent / "python"
    script = (
        "from nbgrader.api import Gradebook\n"
        f"with Gradebook('sqlite:///{course}/gradebook.db') as gb:\n"
        f"    for nb in gb.find_assignment('{ASSIGNMENT}').notebooks:\n"
        "        cells = ', '.join(f'{c.name} {c.max_score:g}' for c in nb.grade_cells if c.max_score)\n"
        "        scores = []\n"
        "        for student in ('solutions', 'untouched'):\n"
        f"            s = gb.find_submission_notebook(nb.name, '{ASSIGNMENT}', student)\n"
        "            scores.append(f'{student} {s.score:g}/{s.max_score:g}')\n"
        "        print(f'{nb.name:<24} {\"; \".join(scores):<36} ({cells})')\n")
    return run([str(python), "-c", script], course, env).rstrip()


if __name__ == "__main__":
    sys.exit(main())
