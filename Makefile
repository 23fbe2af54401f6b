# genlab: `make train` and `make test` work as the first command on a fresh clone (they install first).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install train test test-slow test-all lint tensorboard bench clean clean-runs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)  ## the default experiment: DCGAN on the built-in shapes dataset (offline, CPU ok)
	$(BIN)/genlab train experiment=quickstart $(ARGS)

test: $(STAMP)  ## the fast test suite
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

test-slow: $(STAMP)  ## long and multi-process tests (CI runs these too)
	$(BIN)/python -m pytest -q -m slow $(ARGS) || [ $$? -eq 5 ]  # exit 5: no slow tests selected

test-all: test test-slow

lint: $(STAMP)
	$(BIN)/ruff check genlab tests scripts
	$(BIN)/ruff format --check genlab tests scripts

tensorboard: $(STAMP)  ## serve every run under outputs/
	$(BIN)/tensorboard --logdir outputs --bind_all

bench: $(STAMP)  ## throughput benchmark: genlab vs plain PyTorch vs a PIL DataLoader pipeline
	$(BIN)/python scripts/bench.py $(ARGS)

clean-runs: $(STAMP)  ## list runs under outputs/ (status, size, age) and what would be deleted; ARGS=--yes deletes
	$(BIN)/genlab clean $(ARGS)

clean:
	rm -rf outputs/runs outputs/multirun .pytest_cache
