# Two commands set everything up on a fresh machine: `make train` and `make test`.
# Both create or update the local virtual environment in .venv first (idempotent: it is
# rebuilt only when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# oneDNN convolutions (jaxcnn/_native): rebuilt when the source or the environment changes; a
# failed build says why and leaves jaxcnn on XLA's convolutions.
NATIVE := jaxcnn/_native/libjaxcnn_onednn.so

.PHONY: install train test test-slow lint clean

install: $(STAMP) $(NATIVE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

$(NATIVE): jaxcnn/_native/onednn_conv.cc $(STAMP)
	$(BIN)/python -m jaxcnn._native.build

train: $(STAMP) $(NATIVE)
	$(BIN)/python -m experiments.train --config experiments/configs/default.py --workdir workdir/default

test: $(STAMP) $(NATIVE)
	$(BIN)/python -m pytest -n 2 -m "not slow" --durations=15

test-slow: $(STAMP) $(NATIVE)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP) $(NATIVE)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
