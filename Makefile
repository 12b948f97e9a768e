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

# -n auto: one pytest worker per core (pytest-xdist).
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n auto
