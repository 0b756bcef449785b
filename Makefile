# The two commands of the README: `make demo` (main job) and `make test` (test suite).
VENV := .venv/bin
OUT ?= demo_out

.PHONY: setup setup-dev demo test lint bench

setup:
	@bash scripts/bootstrap.sh

setup-dev:
	@bash scripts/bootstrap.sh dev

demo: setup
	$(VENV)/ri2fl demo -o $(OUT)

test: setup-dev
	RI2FL_NO_PROGRESS=1 $(VENV)/python -m pytest -q -n 2 --dist loadfile

lint: setup-dev
	$(VENV)/ruff check src tests benchmarks scripts experiments

bench: setup-dev
	$(VENV)/python benchmarks/run_all.py
