# Waypoint: `make run` starts the fleet on this machine, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
# A uv on PATH is used as is; otherwise one is installed into .tools/ with the system Python.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen --no-sync

.PHONY: help setup redis-server chromium run test lint typecheck compose-check pytest compose-fleet bench bench-trips chaos clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

setup: $(UV) ## Create the environment (.venv) from uv.lock
	$(UV) sync --frozen

redis-server: ## Make sure redis-server is installed (apt-get, dnf or brew when it is not)
	@command -v redis-server >/dev/null && exit 0; \
	echo "redis-server not found; installing it"; \
	SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
	if command -v apt-get >/dev/null; then $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server; \
	elif command -v dnf >/dev/null; then $$SUDO dnf install -y -q redis; \
	elif command -v brew >/dev/null; then brew install redis; \
	else echo "install redis-server, or set REDIS_URL for make run" >&2; exit 1; fi; \
	command -v redis-server >/dev/null

chromium: ## Make sure Debian's chromium is installed for the browser test (apt-get when it is not)
	@command -v chromium >/dev/null && exit 0; \
	echo "chromium not found; installing it"; \
	SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
	if command -v apt-get >/dev/null; then $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	else echo "install chromium (the browser test drives /usr/bin/chromium, or CHROMIUM=<path>)" >&2; exit 1; fi; \
	command -v chromium >/dev/null

run: setup ## Start Redis, the four tool servers and the orchestrator on 127.0.0.1 (Ctrl-C stops all)
	@if [ -z "$$REDIS_URL" ]; then $(MAKE) --no-print-directory redis-server; fi
	$(RUN) waypoint-fleet

lint: setup ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup ## mypy --strict over every package and the tests
	$(RUN) mypy

compose-check: setup ## Validate compose.yaml against the compose spec
	$(RUN) check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

pytest: setup redis-server chromium ## The test suite (starts its own redis-server, services and a headless chromium)
	$(RUN) pytest

compose-fleet: setup ## The compose fleet built and run in a Docker engine (skipped without one, fails under CI=true)
	$(RUN) pytest -m engine

test: lint typecheck compose-check pytest compose-fleet ## Everything CI runs: lint, type check, compose check, tests, the compose fleet

bench: setup redis-server ## MCP latency against a FastAPI floor, extraction worst case, /healthz under a flood, 1 vs 2 replicas, then bench-trips (127.0.0.1 only)
	$(RUN) python -m bench.mcp_latency
	$(RUN) python -m bench.extraction
	$(RUN) python -m bench.edge_flood
	$(RUN) python -m bench.replicas --json .run/bench/replicas.json
	$(MAKE) --no-print-directory bench-trips

bench-trips: setup redis-server ## Trips through one orchestrator: critical path, trips/s, CPU per trip, hardening on/off (JSON + PNG in .run/bench/)
	$(RUN) python -m bench.trips

TRIPS ?= 1000
chaos: setup redis-server ## Booked trips under injected faults and a killed orchestrator, then an audit (TRIPS=1000)
	$(RUN) python -m bench.chaos --trips $(TRIPS) $(if $(MODEL),--model)

clean: ## Remove the environment and caches
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache
