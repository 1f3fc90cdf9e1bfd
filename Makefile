# Everything the project needs is installed from here: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned and installed first, alone: any looser request pulls the multi-GB CUDA build.
TORCH  := torch==2.13.0
# System tools the tests use to make and edit audio (espeak-ng speaks, sox converts to MP3), and the browser the
# browser test drives (Debian's chromium: Playwright's own browser download is not used).
APT_PACKAGES := espeak-ng sox libsox-fmt-mp3 chromium
# llama-cpp-python compiles llama.cpp. Not for this machine's CPU (-march=native): pip caches the wheel it builds,
# and one built on an AVX-512 machine dies of an illegal instruction on an AVX2-only one. AVX2, FMA and F16C keep
# the fast CPU kernels and run on both.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: run test lint bench install install-local system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed system-packages

# apt when running as root (CI, fresh machines); otherwise one line that says what to install.
system-packages:
	@missing=""; for tool in espeak-ng sox chromium; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			(apt-get install -y -qq $(APT_PACKAGES) >/dev/null 2>&1 || \
			 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(APT_PACKAGES) >/dev/null)) && \
			echo "installed$$missing (apt)"; \
		else \
			echo "note: install$$missing for the full test suite (Debian/Ubuntu: sudo apt-get install $(APT_PACKAGES)); tests that need them are skipped"; \
		fi; \
	fi

# The main job: get the OpenVoice converter if the hub can be reached (else the built-in voice matcher is used),
# enroll a voice, speak in it, and measure how close the clone is.
# `make run SAMPLE=me.wav TEXT="..."`; without SAMPLE a demo recording is made from the bundled voice.
SAMPLE ?= out/demo-voice.wav
NAME   ?= demo
TEXT   ?= Hello! This is my cloned voice, speaking through voiceclone. It streams, so the first words play long before the last are ready.

run: install
	@mkdir -p out
	@if [ "$(SAMPLE)" = "out/demo-voice.wav" ] && [ ! -f out/demo-voice.wav ]; then $(BIN)/python scripts/make_demo_sample.py out/demo-voice.wav; fi
	@$(BIN)/voiceclone models download || echo "(continuing without OpenVoice: the built-in voice matcher needs no download)"
	$(BIN)/voiceclone enroll "$(SAMPLE)" --name "$(NAME)" --force
	$(BIN)/voiceclone speak "$(TEXT)" --voice "$(NAME)" -o out/$(NAME).wav
	$(BIN)/voiceclone speak "$(TEXT)" --no-clone -o out/$(NAME)-base.wav
	$(BIN)/voiceclone eval "$(NAME)" -o out/eval
	@echo "listen: out/$(NAME).wav (the clone), out/$(NAME)-base.wav (the base voice), out/eval/ (what eval measured)"
	$(BIN)/python scripts/scripted_call.py --voice "$(NAME)" --out out

# The sound-card extras: PortAudio for `speak --play` and the local bot transport (pyaudio builds against it).
install-local: install
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -qq libportaudio2 portaudio19-dev >/dev/null; \
	else \
		echo "install PortAudio yourself (Debian/Ubuntu: sudo apt-get install libportaudio2 portaudio19-dev; macOS: brew install portaudio)"; \
	fi
	$(BIN)/pip install --quiet -e ".[local]"

## Lint (ruff: errors, import order, formatting), then the test suite (no network, no downloads).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## Speed figures (medians) for the notes.
bench: install
	$(BIN)/python benchmarks/converter.py
	$(BIN)/python benchmarks/matcher.py
	$(BIN)/python benchmarks/enroll.py
	$(BIN)/python benchmarks/speak.py
	$(BIN)/python benchmarks/bot.py

clean:
	rm -rf $(VENV) .pytest_cache
