# genlab: `make train` and `make test` work as the first command on a fresh clone (they install first).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKERS ?= auto  # pytest processes for `make test` (pytest-xdist, a module per worker: its fixtures train once); one torch thread each

.PHONY: install train test test-slow test-gpu test-all lint tensorboard bench bench-gpu clean clean-runs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)  ## the default experiment: DCGAN on the built-in shapes dataset (offline, CPU ok)
	$(BIN)/genlab train experiment=quickstart $(ARGS)

test: $(STAMP)  ## the fast test suite
	$(BIN)/python -m pytest -q -m "not slow" -n $(WORKERS) --dist loadscope $(ARGS)

test-slow: $(STAMP)  ## long and multi-process tests (CI runs these too)
	$(BIN)/python -m pytest -q -m slow $(ARGS) || [ $$? -eq 5 ]  # exit 5: no slow tests selected

test-gpu: $(STAMP)  ## the GPU tier: skips (with the reason) where torch sees no CUDA GPU
	$(BIN)/python -m pytest -q -m gpu $(ARGS)

test-all: test test-slow

lint: $(STAMP)
	$(BIN)/ruff check genlab tests scripts
	$(BIN)/ruff format --check genlab tests scripts
	$(BIN)/lint-imports --no-cache

tensorboard: $(STAMP)  ## serve every run under outputs/
	$(BIN)/tensorboard --logdir outputs --bind_all

bench: $(STAMP)  ## throughput benchmark: genlab vs plain PyTorch vs a PIL DataLoader pipeline (GPU table on CUDA)
	if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/python scripts/bench_gpu.py $(ARGS); else $(BIN)/python scripts/bench.py $(ARGS); fi

bench-gpu: $(STAMP)  ## the GPU table alone: models x speed switches, fraction of the dense peak
	$(BIN)/python scripts/bench_gpu.py $(ARGS)

clean-runs: $(STAMP)  ## list runs under outputs/ (status, size, age) and what would be deleted; ARGS=--yes deletes
	$(BIN)/genlab clean $(ARGS)

clean:  ## caches only; runs are deleted with make clean-runs (it never deletes a live run)
	rm -rf .pytest_cache build *.egg-info
