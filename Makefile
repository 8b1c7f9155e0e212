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
#
# Overridable: PYTHON (default python3), VENV (default .venv), PYTEST_ARGS, DEMO_ARGS,
# COLAB_PYTHON (default python3.13, the Python Colab runs).

PYTHON      ?= python3
VENV        ?= .venv
D2L_VERSION ?= 1.0.3
PYTEST_ARGS ?=
DEMO_ARGS   ?=
COLAB_PYTHON ?= python3.13

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test figures colab-check clean-venv

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

clean-venv:
	rm -rf $(VENV)
