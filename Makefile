# Two commands set everything up on a fresh machine: `make train` and `make test`.
# Both create or update the local virtual environment in .venv first (idempotent: jaxcnn is
# reinstalled only when pyproject.toml, setup.py or the native sources change). Installing is
# plain pip: `pip install -e ".[test]"` also compiles the oneDNN convolutions
# (jaxcnn/_native/libjaxcnn_onednn.so) on Linux x86-64; where they cannot be built it still
# succeeds, jaxcnn uses XLA's convolutions, and jaxcnn._native.onednn.status() says why.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `.[test]` is everything: all extras (data, train, weights, viz) and the test tools.
EXTRAS ?= test
STAMP := $(VENV)/.installed
BUILD_INPUTS := pyproject.toml setup.py jaxcnn/_native/onednn_conv.cc jaxcnn/_native/build.py

.PHONY: install native train test test-slow lint clean

install: $(STAMP)

$(STAMP): $(BUILD_INPUTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Rebuild the oneDNN library now: a reinstall of jaxcnn alone (`pip install -v` shows the build).
native: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -c "from jaxcnn._native import onednn; print(onednn.status())"

train: $(STAMP)
	$(BIN)/python -m experiments.train --config experiments/configs/default.py --workdir workdir/default

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" --durations=15

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
