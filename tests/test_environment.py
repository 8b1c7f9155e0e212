"""The environment files agree with each other, and d2lstyle never needs the book's ``d2l``.

* pyproject.toml and environment.yml list the same packages with the same lower bounds;
* pyproject.toml has lower bounds only (no ``==`` pins, no upper caps) and never lists ``d2l``;
* the Makefile and environment.yml install the same ``d2l`` version, with ``--no-deps``;
* ``import d2lstyle`` (every submodule) works, and computes, with ``d2l`` unimportable;
* where ``d2l`` is installed (``make venv``), the book's ``from d2l import torch as d2l`` works.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"
MAKEFILE = ROOT / "Makefile"

# conda-forge package name -> the pip (PyPI) distribution it provides. Names that are the same on
# both sides (after PEP 503 normalisation, so "IPython" == "ipython") need no entry.
CONDA_TO_PIP = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "matplotlib-base": "matplotlib",
}

# Entries of environment.yml with no counterpart in pyproject.toml, on purpose:
CONDA_ONLY = {
    "python",  # the interpreter: pyproject says it with requires-python, not as a dependency
    "pip",     # needed by conda to run the pip: section
}
PIP_SECTION_ONLY = {
    "-e .",    # this repository itself, editable
}

# Operators that keep a requirement a lower bound (or an exclusion); anything else pins or caps.
LOWER_BOUND_OPERATORS = {">=", ">", "!="}


# --------------------------------------------------------------------------------------------
# Parsing


def _pyproject() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def _pyproject_requirements() -> dict[str, list[Requirement]]:
    """Requirements by group: "runtime", each extra, and "build-system"."""
    data = _pyproject()
    groups = {"runtime": data["project"].get("dependencies", [])}
    for extra, reqs in data["project"].get("optional-dependencies", {}).items():
        groups[f"extra '{extra}'"] = reqs
    groups["build-system"] = data.get("build-system", {}).get("requires", [])
    parsed = {}
    for group, reqs in groups.items():
        parsed[group] = []
        for line in reqs:
            try:
                parsed[group].append(Requirement(line))
            except InvalidRequirement as e:  # pragma: no cover - a broken pyproject
                pytest.fail(f"pyproject.toml, {group}: cannot parse {line!r}: {e}")
    return parsed


def _strip_comment(line: str) -> str:
    # YAML comments start with '#' at the line start or after whitespace.
    return re.sub(r"(^|\s)#.*$", "", line).rstrip()


def _environment_yml() -> dict:
    """Parse environment.yml's simple layout by hand (PyYAML is not a dependency).

    Returns {"name": str, "channels": [...], "conda": [...], "pip": [...]}. Anything outside the
    layout this parser knows makes the test fail rather than be silently skipped.
    """
    result: dict = {"name": None, "channels": [], "conda": [], "pip": []}
    section = None      # "channels" / "dependencies"
    in_pip = False
    pip_indent = None
    for lineno, raw in enumerate(ENVIRONMENT.read_text().splitlines(), 1):
        line = _strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = line.strip()
        where = f"environment.yml:{lineno}: {raw.strip()!r}"
        if indent == 0:
            in_pip = False
            key, sep, value = text.partition(":")
            assert sep, f"{where}: expected a top-level 'key:'"
            value = value.strip()
            if key == "name":
                result["name"] = value
                section = None
            elif key in ("channels", "dependencies"):
                assert not value, f"{where}: expected a block list under {key}"
                section = key
            else:
                pytest.fail(f"{where}: unknown top-level key {key!r}; teach this test about it")
            continue
        assert text.startswith("- "), f"{where}: expected a list item '- ...'"
        item = text[2:].strip()
        if section == "channels":
            result["channels"].append(item)
        elif section == "dependencies":
            if in_pip and indent > pip_indent:
                result["pip"].append(item)
                continue
            in_pip = False
            if item == "pip:":
                in_pip, pip_indent = True, indent
            else:
                assert not item.endswith(":"), f"{where}: unknown nested section {item!r}"
                result["conda"].append(item)
        else:
            pytest.fail(f"{where}: list item outside 'channels'/'dependencies'")
    return result


def _conda_spec(spec: str) -> tuple[str, SpecifierSet]:
    """'pytorch>=2.1' -> ('torch', SpecifierSet('>=2.1')); channel prefixes are dropped."""
    spec = spec.split("::")[-1]
    m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)", spec)
    assert m, f"environment.yml: cannot parse conda spec {spec!r}"
    name, version = m.group(1), m.group(2).replace(" ", "")
    try:
        specifier = SpecifierSet(version)
    except Exception:
        pytest.fail(f"environment.yml: conda spec {spec!r} uses a version syntax this test "
                    f"cannot compare with pyproject.toml; write it as NAME>=X")
    name = canonicalize_name(name)
    return canonicalize_name(CONDA_TO_PIP.get(name, name)), specifier


def _lower_bounds(specifier: SpecifierSet) -> set[str]:
    return {s.version for s in specifier if s.operator in (">=", ">")}


def _pyproject_packages() -> dict[str, tuple[str, set[str]]]:
    """{pip name: (group it first appears in, lower bounds)} for runtime + all extras."""
    packages: dict[str, tuple[str, set[str]]] = {}
    for group, reqs in _pyproject_requirements().items():
        if group == "build-system":
            continue
        for req in reqs:
            name = canonicalize_name(req.name)
            if name == "d2lstyle":  # the dev extra pulls in d2lstyle[notebooks]: not a package
                continue
            group0, bounds = packages.get(name, (group, set()))
            packages[name] = (group0, bounds | _lower_bounds(req.specifier))
    return packages


def _environment_packages() -> dict[str, tuple[str, set[str]]]:
    """{pip name: (where, lower bounds)} for environment.yml, allow-listed entries left out."""
    env = _environment_yml()
    packages: dict[str, tuple[str, set[str]]] = {}
    for spec in env["conda"]:
        name, specifier = _conda_spec(spec)
        if name in CONDA_ONLY:
            continue
        assert name not in packages, f"environment.yml lists {name!r} twice"
        packages[name] = ("conda", _lower_bounds(specifier))
    for line in env["pip"]:
        if line in PIP_SECTION_ONLY:
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in packages, f"environment.yml lists {name!r} twice (conda and pip?)"
        packages[name] = ("pip", _lower_bounds(req.specifier))
    return packages


# --------------------------------------------------------------------------------------------
# environment.yml <-> pyproject.toml


def test_environment_yml_layout():
    env = _environment_yml()
    assert env["name"] == "d2lstyle", f"environment.yml name is {env['name']!r}, not 'd2lstyle'"
    assert env["channels"] == ["conda-forge"], f"channels are {env['channels']}"
    conda_names = {_conda_spec(s)[0] for s in env["conda"]}
    assert {"python", "pip"} <= conda_names, "environment.yml must list python and pip"
    python = next(s for s in env["conda"] if _conda_spec(s)[0] == "python")
    requires_python = _pyproject()["project"]["requires-python"]
    assert _conda_spec(python)[1] == SpecifierSet(requires_python), (
        f"environment.yml has {python!r} but pyproject.toml has requires-python "
        f"{requires_python!r}")
    assert "-e ." in env["pip"], "environment.yml's pip: section must install this repo (-e .)"


def test_every_pyproject_dependency_is_in_environment_yml():
    env = _environment_packages()
    missing = {name: group for name, (group, _) in _pyproject_packages().items()
               if name not in env}
    assert not missing, (
        "in pyproject.toml but not environment.yml (add them there, mapping pip names to "
        f"conda-forge names via CONDA_TO_PIP in this test if they differ): {missing}")


def test_every_environment_yml_package_is_in_pyproject():
    pyproject = _pyproject_packages()
    extra = {name: where for name, (where, _) in _environment_packages().items()
             if name not in pyproject}
    assert not extra, (
        "in environment.yml but not pyproject.toml (add them to pyproject's dependencies or "
        f"an extra, or to this test's commented allow-list if conda-only): {extra}")


def test_lower_bounds_agree():
    env = _environment_packages()
    differ = {}
    for name, (group, bounds) in _pyproject_packages().items():
        if name in env and env[name][1] != bounds:
            differ[name] = {"pyproject.toml": sorted(bounds), "environment.yml": sorted(env[name][1])}
    assert not differ, f"lower bounds differ between pyproject.toml and environment.yml: {differ}"


# --------------------------------------------------------------------------------------------
# pyproject.toml: lower bounds only, and never d2l


def test_pyproject_has_lower_bounds_only():
    bad = []
    for group, reqs in _pyproject_requirements().items():
        for req in reqs:
            if req.url:
                bad.append(f"{group}: {req} (a direct URL pins a build)")
            for spec in req.specifier:
                if spec.operator not in LOWER_BOUND_OPERATORS:
                    bad.append(f"{group}: {req} (operator {spec.operator!r})")
    assert not bad, ("pyproject.toml must give lower bounds only (>=, >, !=), no exact pins "
                     "(==, ===), compatible-release (~=) or upper caps (<, <=): " + "; ".join(bad))


def test_pyproject_never_depends_on_d2l():
    # `pip install d2l` brings d2l 1.0.3's exact pins (numpy==1.23.5, matplotlib==3.7.2, ...);
    # it is installed on top with --no-deps instead (Makefile, environment.yml comment).
    offenders = [f"{group}: {req}" for group, reqs in _pyproject_requirements().items()
                 for req in reqs if canonicalize_name(req.name) == "d2l"]
    assert not offenders, f"d2l must not be a pip dependency: {offenders}"


def test_d2l_installed_with_no_deps_and_same_version_everywhere():
    makefile = MAKEFILE.read_text()
    m = re.search(r"^D2L_VERSION\s*\?=\s*(\S+)\s*$", makefile, re.M)
    assert m, "Makefile must set D2L_VERSION ?= X"
    make_version = m.group(1)
    assert re.search(r'pip install --no-deps "d2l==\$\(D2L_VERSION\)"', makefile), (
        "Makefile must install d2l with: pip install --no-deps \"d2l==$(D2L_VERSION)\"")
    env_versions = set(re.findall(r"pip install --no-deps \"?d2l==([\w.]+)", ENVIRONMENT.read_text()))
    assert env_versions == {make_version}, (
        f"environment.yml's instructions install d2l {sorted(env_versions) or 'nowhere'}, the "
        f"Makefile installs {make_version}")


# --------------------------------------------------------------------------------------------
# d2lstyle without d2l; d2l in the notebook environment


def _run_python(code: str, **env_extra) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


BLOCK_D2L_AND_IMPORT = textwrap.dedent(r'''
    import importlib, importlib.abc, json, pkgutil, sys

    class BlockD2L(importlib.abc.MetaPathFinder):
        """Make `d2l` unimportable, as on a machine where it is not installed."""
        attempts = []
        def find_spec(self, name, path=None, target=None):
            if name == "d2l" or name.startswith("d2l."):
                self.attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by test)", name=name)
            return None

    sys.meta_path.insert(0, BlockD2L())
    try:
        import d2l
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the blocker failed: d2l is still importable")
    BlockD2L.attempts.clear()

    import torch
    import d2lstyle
    modules = sorted(m.name for m in pkgutil.walk_packages(d2lstyle.__path__, "d2lstyle.")
                     if not m.name.endswith(".__main__"))  # __main__ would run the CLI
    for name in modules:
        importlib.import_module(name)
    G = d2lstyle.gram(torch.ones(1, 2, 2, 2))
    print(json.dumps({
        "file": d2lstyle.__file__,
        "modules": modules,
        "gram": G.tolist(),
        "d2l_attempts": BlockD2L.attempts,
        "d2l_loaded": sorted(m for m in sys.modules if m == "d2l" or m.startswith("d2l.")),
    }))
''')


def test_d2lstyle_imports_and_runs_without_d2l():
    proc = _run_python(BLOCK_D2L_AND_IMPORT)
    assert proc.returncode == 0, (
        f"with d2l unimportable, importing d2lstyle (or one of its modules) failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve().is_relative_to(ROOT / "d2lstyle"), (
        f"the subprocess imported another d2lstyle: {out['file']}")
    assert "d2lstyle.losses" in out["modules"], f"walked modules: {out['modules']}"
    assert out["d2l_loaded"] == [], f"d2l modules loaded despite the block: {out['d2l_loaded']}"
    # ones of shape (1, c=2, h=2, w=2): every channel product sums to h*w = 4, over c*h*w = 8.
    assert out["gram"] == [[[0.5, 0.5], [0.5, 0.5]]], f"gram(ones) = {out['gram']}"


BOOK_IMPORT = textwrap.dedent(r'''
    import importlib.metadata as md, json
    import matplotlib
    matplotlib.use("Agg")
    from d2l import torch as d2l
    device = d2l.try_gpu()
    d2l.set_figsize()
    fig = d2l.plt.figure()
    d2l.plot(d2l.arange(4), [d2l.arange(4) ** 2], "x", "y")
    print(json.dumps({"device": str(device), "plt": d2l.plt.__name__,
                      "versions": {p: md.version(p) for p in ("d2l", "numpy", "matplotlib")}}))
''')


@pytest.mark.skipif(importlib.util.find_spec("d2l") is None,
                    reason="d2l not installed (make venv installs it with --no-deps)")
def test_book_d2l_works_in_notebook_environment():
    proc = _run_python(BOOK_IMPORT)
    assert proc.returncode == 0, (
        "`from d2l import torch as d2l` failed in this environment; one of its imports is "
        f"missing from the notebooks extra?\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["plt"] == "matplotlib.pyplot"
    assert out["device"].startswith(("cpu", "cuda")), out
