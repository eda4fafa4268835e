# `make help` lists the targets. Every target works from a clean clone: it builds .venv first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# The venv's own pip, not upgraded: users install with the pip their python ships (23.x on Debian 12),
	# and a newer pip here would hide what only it resolves (make install-check tests a plain install).
	# The CPU build of torch first: left to the resolver, sentence-transformers would pull the newest torch
	# with gigabytes of CUDA packages. On a machine without this pin's wheel at hand, pick your torch build
	# first (https://pytorch.org), then run this target again.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,ocr]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install ingestq with its dev tools

test: $(STAMP) ## run the whole test suite (starts its own PostgreSQL)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check), mypy --strict and the layer contract (imports flow down, no cycles)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/mypy tests/contract/*.py
	$(BIN)/mypy tests/pipeline/*.py
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_layers.py

deploy-check: $(STAMP) ## deploy/: kustomize renders, Kubernetes schemas, Dockerfile/compose lint, the manifests' commands and probes run locally
	$(BIN)/pytest -q -p no:cacheprovider tests/deploy

install-check: ## build the wheel, install it with the stock pip into a fresh venv, parse every media type
	$(PY) scripts/install_check.py

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

demo: $(STAMP) ## ingest docs/ plus a generated PDF and DOCX with the local model, then search
	$(BIN)/python -m ingestq.cli.demo

bench: $(STAMP) ## run the benchmarks side by side with peers; writes BENCHMARKS.md (BENCH_ARGS="--quick", SERVICE_BENCH_ARGS)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.service $(SERVICE_BENCH_ARGS)

bench-install: $(STAMP) ## create .bench-venv with the peers (pgqueuer, procrastinate, huey, LlamaIndex); make bench does it too
	$(BIN)/python -c "from bench.peers import ensure_venv; ensure_venv()"

chaos: $(STAMP) ## the fault suite (kills, restarts, outages, full disk) on SQLite and PostgreSQL; rewrites docs/reliability.md's table (CHAOS_ARGS="--minutes 60")
	$(BIN)/python -m bench.chaos all --report $(CHAOS_ARGS)

soak: $(STAMP) ## the one-hour soak (steady load, no faults) on SQLite and PostgreSQL side by side; rewrites docs/reliability.md's Soak section (SOAK_ARGS="--minutes 60")
	$(BIN)/python -m bench.soak --backend sqlite --report $(SOAK_ARGS) & sqlite=$$!; \
	$(BIN)/python -m bench.soak --backend pg --report $(SOAK_ARGS); pg=$$?; wait $$sqlite && exit $$pg

corpus: $(STAMP) ## ingest all of ../shared/corpora and write the per-file report into docs/
	$(BIN)/python -m bench.corpus

clean: ## remove .venv, caches and the demo database
	rm -rf $(VENV) .ingestq .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install install-check deploy-check test lint fmt demo bench bench-install chaos soak corpus clean
