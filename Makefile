# The two commands of the README. Each sets up .venv on first use (Python 3.11,
# the exact pins of pyproject.toml) and is safe to rerun.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,teacher,serving,beam]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/prectr demo --overwrite

# -n auto: one pytest worker per core (pytest-xdist); --dist loadfile keeps a
# file on one worker, so its module-scoped fixtures (built datasets, trained
# models, the distribute tests' single-process reference) are made once;
# --durations: CI's log names the slowest tests.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25
