# Two commands for a newcomer: `make run` (the whole DAG, default scale) and `make test`.
# Everything installs into .venv; torch first, because an unpinned torch pulled in by a
# dependency would be the multi-GB CUDA build. GPU users: create .venv and install the
# CUDA build of torch into it before `make`; an importable torch is left as it is.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
CORES ?= $(shell nproc 2>/dev/null || echo 2)
# The GPUs this machine has (0 without nvidia-smi): Snakemake runs at most that many training jobs at once.
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
BIN := $(VENV)/bin
STAMP := $(VENV)/.offrl-installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run report test clean-test

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[workflow,dev]"
	touch $@

run: setup
	snakemake all --cores $(CORES) --resources gpu=$(GPUS)

# snakemake --report with a summary: Snakemake warns "Missing metadata" once per file not built yet
# (253 lines on a run with one file built); those lines become one count.
report: setup
	@log=$$(mktemp); snakemake --report report.html > $$log 2>&1; status=$$?; \
	grep -v '^Missing metadata for file' $$log; \
	echo "$$(grep -c '^Missing metadata for file' $$log) files not built yet (the report's front page lists them)"; \
	rm -f $$log; exit $$status

test: setup
	ruff check lib tests benchmarks
	ruff format --check lib tests benchmarks
	snakefmt --check Snakefile workflow
	python -m pytest

clean-test:
	rm -rf .test/resources .test/results .test/logs .test/.snakemake
