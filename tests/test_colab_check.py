"""scripts/colab_check.py's pieces that run without building the mirror (``make colab-check`` does)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def colab_check():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import colab_check
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return colab_check


def test_constraints_pin_colabs_versions_and_say_where_they_come_from(colab_check):
    text = colab_check.CONSTRAINTS.read_text()
    assert "googlecolab/backend-info" in text
    assert "commit\n# a72407924822ea377410b69f0a290150bcb5c9c2 (2026-08-19)" in text
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line) for line in lines), \
        "one name==version a line, no local versions such as +cu128"
    assert not [line for line in lines if re.match(r"(nvidia-|cuda-|jedi=)", line)]
    pins = colab_check.colab_versions()
    assert len(pins) == len(lines) == 109
    assert {name: pins[name] for name in ("ipython", "ipykernel", "ipywidgets", "jupyter-server",
                                          "tornado", "numpy", "torch", "torchvision", "pip")} == {
        "ipython": "7.34.0", "ipykernel": "6.17.1", "ipywidgets": "7.7.1", "jupyter-server": "2.20.0",
        "tornado": "6.5.7", "numpy": "2.1.3", "torch": "2.11.0", "torchvision": "0.26.0",
        "pip": "24.1.2"}


def test_changes_tells_an_upgrade_a_removal_and_an_addition_apart(colab_check):
    before = {"numpy": "2.1.3", "tornado": "6.5.7", "jupyter-server": "2.20.0"}
    after = {"numpy": "2.1.3", "tornado": "6.5.8", "d2l": "1.0.3", "jedi": "0.20.1"}
    assert colab_check.changes(before, after) == (
        ["jupyter-server 2.20.0 -> removed", "tornado 6.5.7 -> 6.5.8"], ["d2l 1.0.3", "jedi 0.20.1"])
    assert colab_check.changes(before, dict(before)) == ([], [])
    assert colab_check.normalise("Jupyter_Server") == colab_check.normalise("jupyter.server") == \
        "jupyter-server"


def test_the_google_colab_stand_in_uploads_nothing(colab_check):
    code = ("import google.colab; from google.colab import files, output; "
            "print(google.colab.STANDIN, repr(files.upload()), output.enable_custom_widget_manager())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(colab_check.STANDIN.parent)})
    assert done.stdout == "google.colab stand-in: no browser, nothing uploaded\nTrue {} None\n", \
        done.stderr
