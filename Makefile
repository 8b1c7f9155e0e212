# Set-up and everyday commands. The README's two commands are `make demo` and `make test`.
#
#   make venv      create .venv (python3 -m venv), install this package with the `dev` extra
#                  (which includes the notebook environment), then the book's `d2l` package
#                  with --no-deps (see the README: d2l 1.0.3 pins old numpy/matplotlib/pandas).
#                  Re-runs only when pyproject.toml changes (stamp file .venv/.installed).
#   make demo      stylise the demo pair into out/stylised.png
#   make test      run the test suite
#   make figures   regenerate the figures (scripts/make_figures.py)
#   make colab-check  run every notebook's set-up cell and a smoke run in a mirror of Colab's
#                  runtime (.colab-venv, Python 3.13; scripts/colab_check.py). Not part of .ci/run.
#   make grade-check  nbgrader in a venv of its own (.nbgrader-venv): generate the student
#                  versions, autograde the solutions and the untouched student versions, print
#                  the points (scripts/grade_check.py; about 15 minutes on 2 cores). Not part of .ci/run.
#
# Overridable: PYTHON (default python3), VENV (default .venv), PYTEST_ARGS, DEMO_ARGS,
# COLAB_PYTHON (default python3.13, the Python Colab runs).

PYTHON      ?= python3
VENV        ?= .venv
D2L_VERSION ?= 1.0.3
PYTEST_ARGS ?=
DEMO_ARGS   ?=
COLAB_PYTHON ?= python3.13
NBGRADER_VENV ?= .nbgrader-venv

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test figures colab-check grade-check clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m pip install --no-deps "d2l==$(D2L_VERSION)"
	touch $@

demo: venv
	mkdir -p out
	$(BIN)/d2lstyle -o out/stylised.png $(DEMO_ARGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

figures: venv
	$(BIN)/python scripts/make_figures.py

colab-check:
	$(COLAB_PYTHON) scripts/colab_check.py

grade-check:
	test -x $(NBGRADER_VENV)/bin/nbgrader || ($(PYTHON) -m venv $(NBGRADER_VENV) && \
	  $(NBGRADER_VENV)/bin/pip install nbgrader -e ".[notebooks]" && \
	  $(NBGRADER_VENV)/bin/pip install --no-deps "d2l==$(D2L_VERSION)")
	$(PYTHON) scripts/grade_check.py --nbgrader $(NBGRADER_VENV)/bin/nbgrader

clean-venv:
	rm -rf $(VENV)
