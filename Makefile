# Everything the project needs is installed from here: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned and installed first, alone: any looser request pulls the multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: run test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

## The main job: the CLI and the converters it knows about.
run: install
	$(BIN)/voiceclone --help
	$(BIN)/voiceclone models list

## The test suite (no network, no downloads).
test: install
	$(BIN)/python -m pytest -q

## Speed figures (medians) for the notes.
bench: install
	$(BIN)/python benchmarks/converter.py
	$(BIN)/python benchmarks/enroll.py

clean:
	rm -rf $(VENV) .pytest_cache
