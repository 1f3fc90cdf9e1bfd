# Everything the project needs is installed from here: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned and installed first, alone: any looser request pulls the multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: run test bench install install-local clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The main job: get the converter (first time, online), enroll a voice, speak in it.
# `make run SAMPLE=me.wav TEXT="..."`; without SAMPLE a demo recording is made from the bundled voice.
SAMPLE ?= out/demo-voice.wav
NAME   ?= demo
TEXT   ?= Hello! This is my cloned voice, speaking through voiceclone. It streams, so the first words play long before the last are ready.

run: install
	@mkdir -p out
	@if [ "$(SAMPLE)" = "out/demo-voice.wav" ] && [ ! -f out/demo-voice.wav ]; then $(BIN)/python scripts/make_demo_sample.py out/demo-voice.wav; fi
	$(BIN)/voiceclone models download
	$(BIN)/voiceclone enroll "$(SAMPLE)" --name "$(NAME)" --force
	$(BIN)/voiceclone speak "$(TEXT)" --voice "$(NAME)" -o out/$(NAME).wav
	@echo "listen: out/$(NAME).wav  (and out/$(NAME)-base.wav for the base voice)"
	$(BIN)/voiceclone speak "$(TEXT)" --no-clone -o out/$(NAME)-base.wav

# The sound-card extras: PortAudio for `speak --play` and the local bot transport (pyaudio builds against it).
install-local: install
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -qq libportaudio2 portaudio19-dev >/dev/null; \
	else \
		echo "install PortAudio yourself (Debian/Ubuntu: sudo apt-get install libportaudio2 portaudio19-dev; macOS: brew install portaudio)"; \
	fi
	$(BIN)/pip install --quiet -e ".[local]"

## The test suite (no network, no downloads).
test: install
	$(BIN)/python -m pytest -q

## Speed figures (medians) for the notes.
bench: install
	$(BIN)/python benchmarks/converter.py
	$(BIN)/python benchmarks/enroll.py
	$(BIN)/python benchmarks/speak.py
	$(BIN)/python benchmarks/bot.py

clean:
	rm -rf $(VENV) .pytest_cache
